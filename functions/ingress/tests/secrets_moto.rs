//! Secrets from Secrets Manager (on moto): the ingress verifies with the secret's values, and a
//! rotated secret takes effect on the next reload without a restart.
//!
//! Needs moto (see `testkit::aws_endpoint`).

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use shared::adapters::memory::MemoryQueue;
use shared::adapters::secrets_manager::SecretsManagerSource;
use shared::ingress::{Ingress, IngressConfig};
use shared::settings::{DEFAULT_REFRESH, Reloading, SecretSource};
use shared::signature::sign_line;
use std::sync::Arc;

fn line_request(secret: &str) -> Request<Bytes> {
    let body = br#"{"destination":"U0","events":[{"type":"unfollow","webhookEventId":"01X","timestamp":1,"mode":"active","deliveryContext":{"isRedelivery":false}}]}"#;
    Request::builder()
        .method(Method::POST)
        .uri("/line")
        .header("x-line-signature", sign_line(secret, body))
        .body(Bytes::from_static(body))
        .expect("request")
}

#[ignore = "needs moto: scripts/test.sh runs it; or set GATEWAY_TEST_AWS_ENDPOINT and pass --include-ignored"]
#[tokio::test]
async fn the_ingress_reads_and_reloads_its_secrets_from_secrets_manager() {
    let Some(endpoint) = testkit::aws_endpoint() else {
        return;
    };
    let admin = testkit::secrets_client(&endpoint);
    let name = testkit::unique_name("gateway-secret");
    admin
        .create_secret()
        .name(&name)
        .secret_string(r#"{"LINE_CHANNEL_SECRET":"first-secret","META_APP_SECRET":"","META_VERIFY_TOKEN":"generated"}"#)
        .send()
        .await
        .expect("create secret");

    let source = Arc::new(SecretsManagerSource::new(
        &testkit::sdk_config(&endpoint),
        &name,
    ));
    let values = source.fetch().await.expect("fetch");
    assert_eq!(values["LINE_CHANNEL_SECRET"], "first-secret");
    assert_eq!(values["META_APP_SECRET"], "");

    let config = Reloading::start(source, DEFAULT_REFRESH, |var| IngressConfig::from_vars(var))
        .await
        .expect("settings");
    assert!(
        config.current().meta_secrets.is_none(),
        "an empty secret switches Meta off"
    );
    let ingress = Ingress::reloading(config.clone(), Arc::new(MemoryQueue::new()));
    let status = |secret: &'static str| {
        let request = line_request(secret);
        let ingress = &ingress;
        async move { ingress.handle_request(request).await.response.status() }
    };
    assert_eq!(status("first-secret").await, StatusCode::OK);

    // Rotation: both secrets during the change, then only the new one.
    admin
        .put_secret_value()
        .secret_id(&name)
        .secret_string(r#"{"LINE_CHANNEL_SECRET":"first-secret,second-secret"}"#)
        .send()
        .await
        .expect("rotate");
    assert_eq!(
        status("second-secret").await,
        StatusCode::UNAUTHORIZED,
        "not before the reload"
    );
    config.reload().await;
    assert_eq!(status("second-secret").await, StatusCode::OK);
    assert_eq!(status("first-secret").await, StatusCode::OK);
    admin
        .put_secret_value()
        .secret_id(&name)
        .secret_string(r#"{"LINE_CHANNEL_SECRET":"second-secret"}"#)
        .send()
        .await
        .expect("finish rotation");
    config.reload().await;
    assert_eq!(status("first-secret").await, StatusCode::UNAUTHORIZED);
    assert_eq!(status("second-secret").await, StatusCode::OK);

    // A secret that is not JSON fails the fetch without quoting it; the last good settings stay.
    admin
        .put_secret_value()
        .secret_id(&name)
        .secret_string("not json: s3cr3t")
        .send()
        .await
        .expect("break it");
    let error = SecretsManagerSource::new(&testkit::sdk_config(&endpoint), &name)
        .fetch()
        .await
        .expect_err("not an object");
    assert!(!error.to_string().contains("s3cr3t"), "{error}");
    config.reload().await;
    assert_eq!(status("second-secret").await, StatusCode::OK);
}
