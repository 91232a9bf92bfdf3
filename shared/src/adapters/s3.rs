//! S3: the archive's media files ([`S3Media`]: one object per file, its content type kept, deleted
//! on unsend, expired by the bucket's lifecycle rule) and claim-check objects ([`S3Claims`]).
//! Encryption, blocked public access and TLS-only policies are the buckets' (`template.yaml`).

use crate::ports::{ArchiveError, ClaimError, ClaimStore, MediaStore};
use async_trait::async_trait;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use std::time::Duration;

/// A bucket for archived media.
#[derive(Debug, Clone)]
pub struct S3Media {
    client: aws_sdk_s3::Client,
    bucket: String,
}

fn failed<E: std::error::Error + 'static>(
    operation: &'static str,
    key: &str,
    error: &SdkError<E>,
) -> ArchiveError {
    ArchiveError {
        operation,
        key: key.to_owned(),
        reason: DisplayErrorContext(error).to_string(),
    }
}

impl S3Media {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> S3Media {
        S3Media {
            client,
            bucket: bucket.into(),
        }
    }

    /// An S3 client from the shared configuration; path-style addressing when an endpoint is
    /// configured (`AWS_ENDPOINT_URL`: moto and other local servers have no bucket subdomains).
    pub fn client(config: &aws_config::SdkConfig) -> aws_sdk_s3::Client {
        let local = config.endpoint_url().is_some();
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(config)
                .force_path_style(local)
                .build(),
        )
    }
}

#[async_trait]
impl MediaStore for S3Media {
    async fn put(&self, key: &str, content_type: &str, bytes: Bytes) -> Result<(), ArchiveError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failed("put media", key, &e))
    }

    async fn get(&self, key: &str) -> Result<Option<(String, Bytes)>, ArchiveError> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(output) => {
                let content_type = output
                    .content_type()
                    .unwrap_or("application/octet-stream")
                    .to_owned();
                let body = output.body.collect().await.map_err(|e| ArchiveError {
                    operation: "get media",
                    key: key.to_owned(),
                    reason: e.to_string(),
                })?;
                Ok(Some((content_type, body.into_bytes())))
            }
            Err(SdkError::ServiceError(context))
                if matches!(context.err(), GetObjectError::NoSuchKey(_)) =>
            {
                Ok(None)
            }
            Err(error) => Err(failed("get media", key, &error)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), ArchiveError> {
        // S3 answers a delete of a missing key with success.
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failed("delete media", key, &e))
    }
}

/// Claim-check objects in S3: events too large for a queue message, under `claims/` in the
/// claim-check bucket (whose lifecycle rule removes what the worker has not).
#[derive(Debug, Clone)]
pub struct S3Claims {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Claims {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> S3Claims {
        S3Claims {
            client,
            bucket: bucket.into(),
        }
    }

    /// A client whose calls each get one attempt within `attempt_timeout`: the callers retry
    /// inside their own deadlines (the ingress answers within LINE's 2 seconds).
    pub fn client(config: &aws_config::SdkConfig, attempt_timeout: Duration) -> aws_sdk_s3::Client {
        let local = config.endpoint_url().is_some();
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(config)
                .force_path_style(local)
                .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
                .timeout_config(
                    aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                        .connect_timeout(Duration::from_millis(300))
                        .operation_attempt_timeout(attempt_timeout)
                        .build(),
                )
                .build(),
        )
    }
}

fn claim_failed<E: std::error::Error + 'static>(
    operation: &'static str,
    object: &str,
    error: &SdkError<E>,
) -> ClaimError {
    ClaimError {
        operation,
        object: object.to_owned(),
        reason: DisplayErrorContext(error).to_string(),
    }
}

#[async_trait]
impl ClaimStore for S3Claims {
    async fn put(&self, object: &str, bytes: Bytes) -> Result<(), ClaimError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(object)
            .content_type("application/json")
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| claim_failed("put", object, &e))
    }

    async fn get(&self, object: &str) -> Result<Option<Bytes>, ClaimError> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(object)
            .send()
            .await
        {
            Ok(output) => {
                let body = output.body.collect().await.map_err(|e| ClaimError {
                    operation: "get",
                    object: object.to_owned(),
                    reason: e.to_string(),
                })?;
                Ok(Some(body.into_bytes()))
            }
            Err(SdkError::ServiceError(context))
                if matches!(context.err(), GetObjectError::NoSuchKey(_)) =>
            {
                Ok(None)
            }
            Err(error) => Err(claim_failed("get", object, &error)),
        }
    }

    async fn delete(&self, object: &str) -> Result<(), ClaimError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(object)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| claim_failed("delete", object, &e))
    }
}
