//! The archive's media files in S3: one object per file, its content type kept, deleted on
//! unsend. The bucket's lifecycle rule expires objects after the retention period (see
//! `template.yaml`); encryption and blocked public access are the bucket's too.

use crate::ports::{ArchiveError, MediaStore};
use async_trait::async_trait;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;

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
