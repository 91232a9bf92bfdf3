//! The ingress core against the in-memory queue: every route and outcome, and what lands in the
//! queue. (The same flows against SQS on moto, through the Lambda function and the sample events,
//! are in `functions/ingress/tests`.)

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use serde_json::Value;
use shared::Platform;
use shared::adapters::memory::{MemoryClaims, MemoryQueue};
use shared::envelope::Envelope;
use shared::ingress::{Ingress, IngressConfig, Outcome};
use shared::meta::ItemList;
use shared::ports::{ClaimError, ClaimStore};
use shared::signature::{sign_line, sign_meta};
use std::sync::Arc;

const LINE_SECRET: &str = "test-line-channel-secret";
const META_SECRET: &str = "test-meta-app-secret";
const TOKEN: &str = "test-meta-verify-token";
const BOT: &str = "Uf00000000000000000000000000000b0";

fn config(vars: &[(&str, &str)]) -> IngressConfig {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    IngressConfig::from_vars(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
        .expect("config")
}

fn gateway() -> (Ingress, Arc<MemoryQueue>) {
    gateway_with(
        &[
            (
                "LINE_CHANNEL_SECRET",
                "rotated-out-secret, test-line-channel-secret",
            ),
            ("META_APP_SECRET", META_SECRET),
            ("META_VERIFY_TOKEN", TOKEN),
        ],
        MemoryQueue::with_max_message_bytes(262_000),
    )
}

fn gateway_with(vars: &[(&str, &str)], queue: MemoryQueue) -> (Ingress, Arc<MemoryQueue>) {
    let queue = Arc::new(queue);
    (Ingress::new(config(vars), queue.clone()), queue)
}

fn post(path: &str, headers: &[(&str, &str)], body: &[u8]) -> Request<Bytes> {
    let mut builder = Request::builder().method(Method::POST).uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Bytes::copy_from_slice(body)).expect("request")
}

fn line_post(body: &[u8]) -> Request<Bytes> {
    let signature = sign_line(LINE_SECRET, body);
    post("/line", &[("X-Line-Signature", &signature)], body)
}

fn meta_post(body: &[u8]) -> Request<Bytes> {
    let signature = sign_meta(META_SECRET, body);
    post("/meta", &[("x-hub-signature-256", &signature)], body)
}

fn get(uri: &str) -> Request<Bytes> {
    Request::builder()
        .uri(uri)
        .body(Bytes::new())
        .expect("request")
}

fn line_event(id: &str, user: &str, timestamp: i64, extra: &str) -> String {
    format!(
        r#"{{"type":"message","message":{{"type":"text","id":"{id}","text":"h\u00e4llo \/ \uD83E\uDD28","quoteToken":"q"}},"webhookEventId":"01J{id}","deliveryContext":{{"isRedelivery":false}},"timestamp":{timestamp},"source":{{"type":"user","userId":"{user}"}},"replyToken":"r{id}","mode":"active"{extra}}}"#
    )
}

fn line_body(events: &[String]) -> String {
    format!(
        r#"{{"destination":"{BOT}","events":[{}]}}"#,
        events.join(",")
    )
}

fn envelopes(queue: &MemoryQueue) -> Vec<Envelope> {
    queue
        .messages()
        .iter()
        .map(|m| Envelope::decode(m.body()).expect("envelope"))
        .collect()
}

#[tokio::test]
async fn line_events_are_queued_one_message_each_byte_for_byte() {
    let (ingress, queue) = gateway();
    let events = [
        line_event("1", "Ua", 1_000, ""),
        line_event("2", "Ub", 2_000, r#","unknownField":{"x":[1,2]}"#),
        r#"{"type":"brandNewEvent","webhookEventId":"01Jnew","timestamp":3000,"mode":"active","deliveryContext":{"isRedelivery":true}}"#.to_owned(),
    ];
    let body = line_body(&events);
    let handled = ingress.handle_request(line_post(body.as_bytes())).await;
    assert_eq!(handled.response.status(), StatusCode::OK);
    assert_eq!(handled.outcome, Outcome::Accepted { events: 3 });
    assert_eq!(handled.platform, Some(Platform::Line));

    let messages = queue.messages();
    assert_eq!(messages.len(), 3);
    let envelopes = envelopes(&queue);
    for (i, envelope) in envelopes.iter().enumerate() {
        assert_eq!(
            envelope.event.get(),
            events[i],
            "event {i} kept byte for byte"
        );
        assert_eq!(envelope.platform, Platform::Line);
        assert_eq!(
            envelope
                .line
                .as_ref()
                .and_then(|c| c.destination.as_deref()),
            Some(BOT)
        );
        assert!(envelope.meta.is_none());
        assert!(envelope.received_at > 1_700_000_000_000);
        assert_eq!(messages[i].key(), envelope.key);
        assert_eq!(messages[i].conversation(), envelope.conversation);
        assert_eq!(messages[i].platform, Platform::Line);
    }
    assert_eq!(envelopes[0].key, "line:01J1");
    assert_eq!(envelopes[0].conversation, format!("line:{BOT}:user:Ua"));
    assert_eq!(envelopes[0].timestamp, Some(1_000));
    assert_eq!(envelopes[1].conversation, format!("line:{BOT}:user:Ub"));
    assert_eq!(envelopes[2].key, "line:01Jnew");
    assert_eq!(envelopes[2].conversation, format!("line:{BOT}"));
}

#[tokio::test]
async fn line_signature_failures_answer_401_and_queue_nothing() {
    let (ingress, queue) = gateway();
    let body = line_body(&[line_event("1", "Ua", 1, "")]);
    let good = sign_line(LINE_SECRET, body.as_bytes());
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, &'a str);
    let cases: Vec<Case> = vec![
        ("missing header", vec![], "signature_missing"),
        (
            "wrong secret",
            vec![("x-line-signature", sign_line("wrong", body.as_bytes()))],
            "signature_mismatch",
        ),
        (
            "meta header instead",
            vec![(
                "x-hub-signature-256",
                sign_meta(LINE_SECRET, body.as_bytes()),
            )],
            "signature_missing",
        ),
        (
            "truncated",
            vec![("x-line-signature", good[..20].to_owned())],
            "signature_malformed",
        ),
        (
            "not base64",
            vec![("x-line-signature", "****".to_owned())],
            "signature_malformed",
        ),
        (
            "empty",
            vec![("x-line-signature", String::new())],
            "signature_malformed",
        ),
    ];
    for (name, headers, reason) in cases {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let handled = ingress
            .handle_request(post("/line", &headers, body.as_bytes()))
            .await;
        assert_eq!(
            handled.response.status(),
            StatusCode::UNAUTHORIZED,
            "{name}"
        );
        assert_eq!(handled.outcome, Outcome::Rejected { reason }, "{name}");
    }
    // A valid signature over other bytes: the body was changed on the way.
    let tampered = body.replace("h\\u00e4llo", "hello");
    let handled = ingress
        .handle_request(post(
            "/line",
            &[("x-line-signature", &good)],
            tampered.as_bytes(),
        ))
        .await;
    assert_eq!(handled.response.status(), StatusCode::UNAUTHORIZED);
    assert!(queue.messages().is_empty());
}

#[tokio::test]
async fn any_configured_secret_is_accepted() {
    let (ingress, queue) = gateway();
    let body = line_body(&[line_event("1", "Ua", 1, "")]);
    let signature = sign_line("rotated-out-secret", body.as_bytes());
    let handled = ingress
        .handle_request(post(
            "/line",
            &[("x-line-signature", &signature)],
            body.as_bytes(),
        ))
        .await;
    assert_eq!(handled.response.status(), StatusCode::OK);
    assert_eq!(queue.messages().len(), 1);
}

#[tokio::test]
async fn verify_button_and_malformed_bodies() {
    let (ingress, queue) = gateway();
    let empty = format!(r#"{{"destination":"{BOT}","events":[]}}"#);
    let handled = ingress.handle_request(line_post(empty.as_bytes())).await;
    assert_eq!(handled.response.status(), StatusCode::OK);
    assert_eq!(handled.outcome, Outcome::Accepted { events: 0 });
    // No destination: the Python SDK parses it, and so does the gateway (Meta's needs `object`).
    let handled = ingress.handle_request(line_post(b"{\"events\":[]}")).await;
    assert_eq!(handled.response.status(), StatusCode::OK);
    let handled = ingress.handle_request(meta_post(b"{\"events\":[]}")).await;
    assert_eq!(handled.response.status(), StatusCode::BAD_REQUEST);
    for body in [
        &b"not json"[..],
        b"[]",
        b"{\"destination\":\"U\",\"events\":7}",
        b"\xff",
    ] {
        let handled = ingress.handle_request(line_post(body)).await;
        assert_eq!(
            handled.response.status(),
            StatusCode::BAD_REQUEST,
            "{body:?}"
        );
        assert_eq!(
            handled.outcome,
            Outcome::Rejected {
                reason: "malformed_body"
            }
        );
        let handled = ingress.handle_request(meta_post(body)).await;
        assert_eq!(
            handled.response.status(),
            StatusCode::BAD_REQUEST,
            "{body:?}"
        );
    }
    assert!(queue.messages().is_empty());
}

#[tokio::test]
async fn bodies_over_the_limit_answer_413_before_anything_else() {
    let (ingress, queue) = gateway_with(
        &[
            ("LINE_CHANNEL_SECRET", LINE_SECRET),
            ("META_APP_SECRET", META_SECRET),
            ("MAX_BODY_BYTES", "1000"),
        ],
        MemoryQueue::new(),
    );
    let body = line_body(&[line_event(
        "1",
        "Ua",
        1,
        &format!(r#","pad":"{}""#, "x".repeat(1000)),
    )]);
    let handled = ingress.handle_request(line_post(body.as_bytes())).await;
    assert_eq!(handled.response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Even unsigned: the size is checked before spending an HMAC on it.
    let handled = ingress
        .handle_request(post("/meta", &[], body.as_bytes()))
        .await;
    assert_eq!(handled.response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let small = line_body(&[line_event("1", "Ua", 1, "")]);
    assert!(small.len() < 1000);
    assert_eq!(
        ingress
            .handle_request(line_post(small.as_bytes()))
            .await
            .response
            .status(),
        StatusCode::OK
    );
    assert_eq!(queue.messages().len(), 1);
}

#[tokio::test]
async fn routes_methods_and_switched_off_platforms() {
    let (ingress, _) = gateway();
    let status = |request| async { ingress.handle_request(request).await.response.status() };
    assert_eq!(status(get("/")).await, StatusCode::NOT_FOUND);
    assert_eq!(status(get("/webhook")).await, StatusCode::NOT_FOUND);
    assert_eq!(
        status(post("/line/extra", &[], b"{}")).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        status(post("/LINE", &[], b"{}")).await,
        StatusCode::NOT_FOUND
    );
    let line_get = ingress.handle_request(get("/line")).await;
    assert_eq!(line_get.response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(line_get.response.headers()["allow"], "POST");
    let meta_put = Request::builder()
        .method(Method::PUT)
        .uri("/meta")
        .body(Bytes::new())
        .expect("request");
    let meta_put = ingress.handle_request(meta_put).await;
    assert_eq!(meta_put.response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(meta_put.response.headers()["allow"], "GET, POST");
    // A trailing slash is the same route.
    let body = line_body(&[line_event("1", "Ua", 1, "")]);
    let signature = sign_line(LINE_SECRET, body.as_bytes());
    assert_eq!(
        status(post(
            "/line/",
            &[("x-line-signature", &signature)],
            body.as_bytes()
        ))
        .await,
        StatusCode::OK
    );

    let (line_only, _) = gateway_with(&[("LINE_CHANNEL_SECRET", LINE_SECRET)], MemoryQueue::new());
    let meta_body = br#"{"object":"page","entry":[]}"#;
    assert_eq!(
        line_only
            .handle_request(meta_post(meta_body))
            .await
            .response
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        line_only
            .handle_request(get(
                "/meta?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1"
            ))
            .await
            .response
            .status(),
        StatusCode::NOT_FOUND
    );
    let (meta_only, _) = gateway_with(
        &[
            ("META_APP_SECRET", META_SECRET),
            ("LINE_CHANNEL_SECRET", " , "),
        ],
        MemoryQueue::new(),
    );
    assert_eq!(
        meta_only
            .handle_request(line_post(body.as_bytes()))
            .await
            .response
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn meta_verification_request() {
    let (ingress, _) = gateway();
    let challenge = |query: &str| {
        let request = get(&format!("/meta?{query}"));
        async { ingress.handle_request(request).await }
    };
    let accepted = challenge(&format!(
        "hub.mode=subscribe&hub.verify_token={TOKEN}&hub.challenge=1158201444"
    ))
    .await;
    assert_eq!(accepted.response.status(), StatusCode::OK);
    assert_eq!(accepted.response.body(), "1158201444");
    assert_eq!(
        accepted.response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
    // Issue 15: the challenge is echoed; without `nosniff` a browser could sniff markup in it as
    // HTML, and no cache may keep it.
    assert_eq!(
        accepted.response.headers()["x-content-type-options"],
        "nosniff"
    );
    assert_eq!(accepted.response.headers()["cache-control"], "no-store");
    assert_eq!(accepted.outcome, Outcome::Verified);
    // Percent-encoding is decoded, in any parameter order.
    let encoded = challenge(&format!(
        "hub.challenge=a%20b&hub.verify_token={TOKEN}&hub.mode=subscribe"
    ))
    .await;
    assert_eq!(encoded.response.body(), "a b");
    for query in [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1".to_owned(),
        format!("hub.mode=unsubscribe&hub.verify_token={TOKEN}&hub.challenge=1"),
        format!("hub.verify_token={TOKEN}&hub.challenge=1"),
        "hub.mode=subscribe&hub.challenge=1".to_owned(),
        format!("hub.mode=subscribe&hub.verify_token={TOKEN}"),
        format!("hub_mode=subscribe&hub_verify_token={TOKEN}&hub_challenge=1"),
        format!(
            "hub.mode=subscribe&hub.verify_token={TOKEN}&hub.verify_token=wrong&hub.challenge=1"
        ),
        format!("hub.mode=subscribe&hub.verify_token={TOKEN}&hub.challenge=1&hub.challenge=2"),
        String::new(),
    ] {
        let refused = challenge(&query).await;
        assert_eq!(refused.response.status(), StatusCode::FORBIDDEN, "{query}");
        assert_eq!(
            refused.outcome,
            Outcome::Rejected {
                reason: "verification_refused"
            }
        );
    }
    let (no_token, _) = gateway_with(&[("META_APP_SECRET", META_SECRET)], MemoryQueue::new());
    let refused = no_token
        .handle_request(get(
            "/meta?hub.mode=subscribe&hub.verify_token=&hub.challenge=1",
        ))
        .await;
    assert_eq!(refused.response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn meta_items_of_every_list_are_queued_with_their_context() {
    let (ingress, queue) = gateway();
    let m1 = r#"{"sender":{"id":"U1"},"recipient":{"id":"P1"},"timestamp":10,"message":{"mid":"m_1","text":"\u00e4\u00f6\u00e5 https:\/\/x"}}"#;
    let m2 =
        r#"{"sender":{"id":"U2"},"recipient":{"id":"P1"},"timestamp":11,"read":{"watermark":9}}"#;
    let s1 = r#"{"sender":{"id":"U3"},"recipient":{"id":"P1"},"timestamp":12,"message":{"mid":"m_s","text":"x"}}"#;
    let c1 = r#"{"field":"feed","value":{"verb":"add"}}"#;
    let body = format!(
        r#"{{"object":"page","entry":[{{"id":"P1","time":100,"messaging":[{m1},{m2}]}},{{"id":"P1","time":101,"standby":[{s1}],"changes":[{c1}]}}]}}"#
    );
    let handled = ingress.handle_request(meta_post(body.as_bytes())).await;
    assert_eq!(handled.response.status(), StatusCode::OK);
    assert_eq!(handled.outcome, Outcome::Accepted { events: 4 });
    assert_eq!(handled.platform, Some(Platform::Meta));
    let envelopes = envelopes(&queue);
    let raw: Vec<&str> = envelopes.iter().map(|e| e.event.get()).collect();
    assert_eq!(raw, [m1, m2, s1, c1]);
    let context: Vec<(String, Option<i64>, ItemList)> = envelopes
        .iter()
        .map(|e| {
            let meta = e.meta.as_ref().expect("meta context");
            assert_eq!(meta.object, "page");
            assert_eq!(e.platform, Platform::Meta);
            (meta.entry_id.clone(), meta.entry_time, meta.list)
        })
        .collect();
    assert_eq!(
        context,
        [
            ("P1".to_owned(), Some(100), ItemList::Messaging),
            ("P1".to_owned(), Some(100), ItemList::Messaging),
            ("P1".to_owned(), Some(101), ItemList::Standby),
            ("P1".to_owned(), Some(101), ItemList::Changes),
        ]
    );
    assert_eq!(envelopes[0].key, "meta:m_1");
    assert!(envelopes[1].key.starts_with("meta:h:"));
    assert_eq!(envelopes[0].conversation, "meta:P1:U1");
    assert_eq!(envelopes[3].conversation, "meta:P1");
}

#[tokio::test]
async fn meta_objects_the_gateway_does_not_handle_answer_404() {
    let (ingress, queue) = gateway();
    let handled = ingress
        .handle_request(meta_post(
            br#"{"object":"user","entry":[{"id":"1","changes":[{"field":"email"}]}]}"#,
        ))
        .await;
    assert_eq!(handled.response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        handled.outcome,
        Outcome::Rejected {
            reason: "unknown_object"
        }
    );
    assert!(queue.messages().is_empty());
    // A missing signature is refused before the object is looked at.
    let handled = ingress
        .handle_request(post("/meta", &[], br#"{"object":"user","entry":[]}"#))
        .await;
    assert_eq!(handled.response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_failed_enqueue_answers_503_so_that_the_platform_retries() {
    let (ingress, queue) = gateway();
    queue.fail_next(1);
    let body = line_body(&[line_event("1", "Ua", 1, "")]);
    let handled = ingress.handle_request(line_post(body.as_bytes())).await;
    assert_eq!(handled.response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(handled.outcome, Outcome::EnqueueFailed { events: 1 });
    // The platform's retry goes through.
    let handled = ingress.handle_request(line_post(body.as_bytes())).await;
    assert_eq!(handled.response.status(), StatusCode::OK);
    assert_eq!(queue.messages().len(), 1);
}

/// A claim-check store that refuses every write.
struct Unwritable;

#[async_trait::async_trait]
impl ClaimStore for Unwritable {
    async fn put(&self, object: &str, _bytes: Bytes) -> Result<(), ClaimError> {
        Err(ClaimError {
            operation: "put",
            object: object.into(),
            reason: "service unavailable".into(),
        })
    }
    async fn get(&self, _object: &str) -> Result<Option<Bytes>, ClaimError> {
        Ok(None)
    }
    async fn delete(&self, _object: &str) -> Result<(), ClaimError> {
        Ok(())
    }
}

/// Issue 13, defect 4: an event too large for a queue message used to travel as a marker with
/// only its key, size and hash, after the platform got its `200`: the content was lost for good.
#[tokio::test]
async fn an_event_too_large_for_a_message_is_stored_by_claim_check_before_the_200() {
    let claims = Arc::new(MemoryClaims::new());
    let queue = Arc::new(MemoryQueue::like_sqs());
    let ingress = Ingress::new(
        config(&[("LINE_CHANNEL_SECRET", LINE_SECRET)]),
        queue.clone(),
    )
    .with_claims(claims.clone());
    // Over SQS's 1 MiB message limit, well under the 4 MiB body limit.
    let big = line_event(
        "1",
        "Ua",
        1,
        &format!(r#","pad":"{}""#, "x".repeat(1_100_000)),
    );
    let small = line_event("2", "Ua", 2, "");
    let body = line_body(&[big.clone(), small.clone()]);
    let handled = ingress.handle_request(line_post(body.as_bytes())).await;
    assert_eq!(handled.response.status(), StatusCode::OK);
    let envelopes = envelopes(&queue);
    assert_eq!(envelopes.len(), 2);
    let claim = envelopes[0].claim.as_ref().expect("claim check");
    assert_eq!(claim.bytes, big.len());
    assert_eq!(envelopes[0].event.get(), "null");
    assert_eq!(envelopes[0].key, "line:01J1");
    assert!(queue.messages()[0].body().len() < 1_000);
    let stored = claims
        .get(&claim.object)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(stored.as_ref(), big.as_bytes(), "the event's exact bytes");
    let mut envelope = envelopes[0].clone();
    envelope.restore_claimed(claim, &stored).expect("checked");
    assert_eq!(envelope.event.get(), big);
    assert!(envelopes[1].claim.is_none());
    assert_eq!(envelopes[1].event.get(), small);
    // The platform's retry writes the same object again.
    ingress.handle_request(line_post(body.as_bytes())).await;
    assert_eq!(claims.objects().len(), 1);
}

#[tokio::test]
async fn without_a_claim_store_an_event_too_large_is_refused_rather_than_lost() {
    let (ingress, queue) = gateway_with(
        &[("LINE_CHANNEL_SECRET", LINE_SECRET)],
        MemoryQueue::with_max_message_bytes(2_000),
    );
    let big = line_event("1", "Ua", 1, &format!(r#","pad":"{}""#, "x".repeat(3_000)));
    let handled = ingress
        .handle_request(line_post(line_body(&[big]).as_bytes()))
        .await;
    assert_eq!(handled.response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        handled.outcome,
        Outcome::Rejected {
            reason: "event_too_large"
        }
    );
    assert!(queue.messages().is_empty());
}

#[tokio::test]
async fn a_claim_check_that_cannot_be_written_answers_503_and_queues_nothing() {
    let queue = Arc::new(MemoryQueue::with_max_message_bytes(2_000));
    let ingress = Ingress::new(
        config(&[("LINE_CHANNEL_SECRET", LINE_SECRET)]),
        queue.clone(),
    )
    .with_claims(Arc::new(Unwritable));
    let big = line_event("1", "Ua", 1, &format!(r#","pad":"{}""#, "x".repeat(3_000)));
    let handled = ingress
        .handle_request(line_post(line_body(&[big]).as_bytes()))
        .await;
    assert_eq!(handled.response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(queue.messages().is_empty());
}

/// Issue 13, defect 5: U+FFFE and U+FFFF are valid JSON and valid UTF-8, but SQS refuses them in
/// a message body; they were copied verbatim, so the request got `503` forever and its other
/// events were sent again and again.
#[tokio::test]
async fn characters_sqs_refuses_are_queued_in_a_form_it_takes_and_read_back_exactly() {
    let queue = Arc::new(MemoryQueue::like_sqs());
    let ingress = Ingress::new(
        config(&[("LINE_CHANNEL_SECRET", LINE_SECRET)]),
        queue.clone(),
    );
    let odd = line_event("1\u{FFFF}", "Ua", 1, ",\"note\":\"a\u{FFFE}b \\ufffe\"");
    let plain = line_event("2", "Ua", 2, "");
    let body = line_body(&[odd.clone(), plain.clone()]);
    let handled = ingress.handle_request(line_post(body.as_bytes())).await;
    assert_eq!(
        handled.response.status(),
        StatusCode::OK,
        "{:?}",
        handled.outcome
    );
    for message in queue.messages() {
        assert!(
            shared::adapters::memory::sqs_accepts(message.body()),
            "{:?}",
            message.body()
        );
    }
    let envelopes = envelopes(&queue);
    assert_eq!(envelopes[0].event.get(), odd, "the event's exact bytes");
    assert_eq!(envelopes[0].key, "line:01J1\u{FFFF}");
    assert_eq!(envelopes[1].event.get(), plain);
}

/// Issue 13, defect 7: a 4 MiB LINE body of `{}` events became 1.4 million queue messages in a
/// 128 MB ingress.
#[tokio::test]
async fn a_body_of_more_events_than_any_platform_sends_is_refused_413() {
    let (ingress, queue) = gateway();
    let events = vec!["{}"; 1_390_000].join(",");
    let body = format!(r#"{{"destination":"{BOT}","events":[{events}]}}"#);
    assert!(body.len() < 4 * 1024 * 1024);
    let handled = ingress.handle_request(line_post(body.as_bytes())).await;
    assert_eq!(handled.response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        handled.outcome,
        Outcome::Rejected {
            reason: "too_many_events"
        }
    );
    assert!(queue.messages().is_empty());
    let items = vec![
        r#"{"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":1,"read":{"watermark":1}}"#;
        2_001
    ]
    .join(",");
    let body =
        format!(r#"{{"object":"page","entry":[{{"id":"P","time":1,"messaging":[{items}]}}]}}"#);
    let handled = ingress.handle_request(meta_post(body.as_bytes())).await;
    assert_eq!(handled.response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // Meta's documented most, 1000 updates, is well inside (see the 1000-item test below).
}

#[tokio::test]
async fn the_envelope_is_plain_json_a_consumer_can_read() {
    let (ingress, queue) = gateway();
    let body = line_body(&[line_event("1", "Ua", 5, "")]);
    ingress.handle_request(line_post(body.as_bytes())).await;
    let message: Value = serde_json::from_str(queue.messages()[0].body()).expect("json");
    assert_eq!(message["version"], 1);
    assert_eq!(message["platform"], "line");
    assert_eq!(message["key"], "line:01J1");
    assert_eq!(message["line"]["destination"], BOT);
    assert_eq!(message["event"]["message"]["text"], "hällo / 🤨");
    assert_eq!(message["timestamp"], 5);
}

#[test]
fn configuration_errors_name_the_variable() {
    let error =
        IngressConfig::from_vars(|name| (name == "ENQUEUE_BUDGET_MS").then(|| "soon".to_owned()))
            .expect_err("not a number");
    assert!(error.to_string().contains("ENQUEUE_BUDGET_MS"), "{error}");
    let config = IngressConfig::from_vars(|_| None).expect("defaults");
    assert!(config.line_secrets.is_none() && config.meta_secrets.is_none());
    assert_eq!(config.max_body_bytes, 4 * 1024 * 1024);
    assert_eq!(config.enqueue_budget.as_millis(), 1500);
}

#[tokio::test]
async fn a_thousand_item_meta_batch_becomes_a_thousand_messages() {
    let (ingress, queue) = gateway();
    let items: Vec<String> = (0..1000)
        .map(|i| {
            format!(
                r#"{{"sender":{{"id":"U{}"}},"recipient":{{"id":"P"}},"timestamp":{i},"message":{{"mid":"m_{i}","text":"t{i}"}}}}"#,
                i % 37
            )
        })
        .collect();
    let body = format!(
        r#"{{"object":"page","entry":[{{"id":"P","time":1,"messaging":[{}]}}]}}"#,
        items.join(",")
    );
    let handled = ingress.handle_request(meta_post(body.as_bytes())).await;
    assert_eq!(handled.outcome, Outcome::Accepted { events: 1000 });
    let envelopes = envelopes(&queue);
    assert_eq!(envelopes.len(), 1000);
    for (i, envelope) in envelopes.iter().enumerate() {
        assert_eq!(envelope.event.get(), items[i]);
        assert_eq!(envelope.key, format!("meta:m_{i}"));
        assert_eq!(envelope.conversation, format!("meta:P:U{}", i % 37));
    }
}

/// Issue 15: with several LINE channels on one URL, any channel's secret verified a request that
/// claimed to be for another channel (`destination`), so a leaked secret of one channel let its
/// holder post events as every channel. A secret written `DESTINATION:SECRET` now verifies
/// requests for that bot only; unbound secrets (rotation of one channel) still verify any.
#[tokio::test]
async fn a_line_secret_bound_to_a_destination_speaks_for_that_bot_only() {
    const BOT_A: &str = "U0000000000000000000000000000000a";
    const BOT_B: &str = "U0000000000000000000000000000000b";
    let (ingress, queue) = gateway_with(
        &[(
            "LINE_CHANNEL_SECRET",
            &format!("{BOT_A}:secret-of-a, {BOT_B}:secret-of-b, {BOT_B}:rotated-out-b"),
        )],
        MemoryQueue::new(),
    );
    let send = |destination: &str, secret: &str| {
        let body = format!(
            r#"{{"destination":"{destination}","events":[{}]}}"#,
            line_event("1", "U1", 1, "")
        );
        let signature = sign_line(secret, body.as_bytes());
        post(
            "/line",
            &[("x-line-signature", &signature)],
            body.as_bytes(),
        )
    };
    for (destination, secret, status) in [
        (BOT_A, "secret-of-a", StatusCode::OK),
        (BOT_B, "secret-of-b", StatusCode::OK),
        (BOT_B, "rotated-out-b", StatusCode::OK),
        (BOT_B, "secret-of-a", StatusCode::UNAUTHORIZED),
        (BOT_A, "secret-of-b", StatusCode::UNAUTHORIZED),
        (
            BOT_A,
            &format!("{BOT_A}:secret-of-a"),
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        let before = queue.messages().len();
        let handled = ingress.handle_request(send(destination, secret)).await;
        assert_eq!(
            handled.response.status(),
            status,
            "{destination} signed with {secret}"
        );
        let queued = queue.messages().len() - before;
        assert_eq!(
            queued,
            usize::from(status == StatusCode::OK),
            "{destination}, {secret}"
        );
        if status == StatusCode::UNAUTHORIZED {
            assert!(matches!(handled.outcome, Outcome::Rejected { .. }));
        }
    }
    // An unbound secret (one channel, or several channels that trust each other) still verifies
    // every destination.
    let (unbound, _) = gateway_with(
        &[("LINE_CHANNEL_SECRET", "secret-of-a")],
        MemoryQueue::new(),
    );
    let handled = unbound.handle_request(send(BOT_B, "secret-of-a")).await;
    assert_eq!(handled.response.status(), StatusCode::OK);
}

/// The messages of a request are written into shared buffers, a run of events each, the runs on
/// several cores: every message's deduplication id, group and body must still be its own
/// event's, in order, with claim-checked events (written, then taken back and replaced by a
/// pointer) among them.
#[test]
fn every_message_holds_its_own_events_strings_across_runs_and_claims() {
    let items: Vec<String> = (0..700)
        .map(|i| {
            let text = if i % 97 == 5 {
                "x".repeat(3000)
            } else {
                format!("t{i}")
            };
            format!(
                r#"{{"sender":{{"id":"U{}"}},"recipient":{{"id":"P"}},"timestamp":{i},"message":{{"mid":"m_{i}","text":"{text}"}}}}"#,
                i % 37
            )
        })
        .collect();
    let body = format!(
        r#"{{"object":"page","entry":[{{"id":"P","time":1,"messaging":[{}]}}]}}"#,
        items.join(",")
    );
    let notification = shared::meta::Notification::parse(body.as_bytes()).expect("notification");
    let options = shared::ingress::SplitOptions {
        max_message_bytes: 2048,
        tenant: Some("acme"),
        ..shared::ingress::SplitOptions::for_body(body.as_bytes(), 7, 2048)
    };
    let split = shared::ingress::meta_messages(&notification, &options).expect("split");
    assert_eq!(split.messages.len(), items.len());
    let mut claims = split.claims.iter();
    for (i, (message, item)) in split.messages.iter().zip(&items).enumerate() {
        let envelope = Envelope::decode(message.body()).expect("envelope");
        assert_eq!(message.key(), format!("acme/meta:m_{i}"));
        assert_eq!(message.key(), envelope.key);
        assert_eq!(message.conversation(), format!("acme/meta:P:U{}", i % 37));
        assert_eq!(message.conversation(), envelope.conversation);
        assert_eq!(message.platform, Platform::Meta);
        match &envelope.claim {
            Some(claim) => {
                assert_eq!(i % 97, 5, "only the large events are claim-checked");
                let (object, bytes) = claims.next().expect("a claim per claim-checked event");
                assert_eq!(object, &claim.object);
                assert_eq!(bytes.as_ref(), item.as_bytes());
            }
            None => assert_eq!(envelope.event.get(), item),
        }
    }
    assert!(claims.next().is_none());
}

/// The signature is checked one of three ways by body size: first, the body read only once it
/// verified; from 128 KiB, on a pool thread while the caller reads, the request's messages
/// written meanwhile; from 1 MiB, first on the pool, the reading beside it. In each (and just
/// under the first line), a forged body is refused without a message queued and before any
/// other answer (too many events, an object not handled), and a signed one is queued whole, on
/// both platforms.
#[tokio::test]
async fn every_verification_lane_refuses_forgeries_and_queues_signed_bodies_whole() {
    let padding = |bytes: usize| format!(r#","pad":"{}""#, "p".repeat(bytes));
    // About 1 KB an event: 1 KB, 90 KB, 200 KB and 1.2 MB bodies.
    for events in [1usize, 90, 200, 1200] {
        for (name, max_events) in [("fits", 2000), ("too_many", events - 1)] {
            if max_events == 0 {
                continue;
            }
            let (ingress, queue) = gateway_with(
                &[
                    ("LINE_CHANNEL_SECRET", LINE_SECRET),
                    ("META_APP_SECRET", META_SECRET),
                    ("MAX_EVENTS_PER_REQUEST", &max_events.to_string()),
                ],
                MemoryQueue::with_max_message_bytes(262_000),
            );
            let line: Vec<String> = (0..events)
                .map(|i| line_event(&format!("E{i}"), "U1", i as i64, &padding(800)))
                .collect();
            let line_body = format!(r#"{{"destination":"{BOT}","events":[{}]}}"#, line.join(","));
            let items: Vec<String> = (0..events)
                .map(|i| {
                    format!(
                        r#"{{"sender":{{"id":"U1"}},"recipient":{{"id":"P"}},"timestamp":{i},"message":{{"mid":"m_{i}","text":"t"}}{}}}"#,
                        padding(800)
                    )
                })
                .collect();
            let meta_body = format!(
                r#"{{"object":"page","entry":[{{"id":"P","time":1,"messaging":[{}]}}]}}"#,
                items.join(",")
            );
            let lanes = [
                (
                    "/line",
                    "x-line-signature",
                    sign_line(LINE_SECRET, line_body.as_bytes()),
                    &line_body,
                ),
                (
                    "/meta",
                    "x-hub-signature-256",
                    sign_meta(META_SECRET, meta_body.as_bytes()),
                    &meta_body,
                ),
            ];
            for (path, header, good, body) in lanes {
                let case = format!("{path} {events} events ({} bytes), {name}", body.len());
                if events == 1200 {
                    assert!(body.len() >= shared::ingress::JOIN_MIN_BYTES, "{case}");
                }
                let forged = if path == "/meta" {
                    sign_meta("another secret", body.as_bytes())
                } else {
                    sign_line("another secret", body.as_bytes())
                };
                let refused = ingress
                    .handle_request(post(path, &[(header, &forged)], body.as_bytes()))
                    .await;
                assert_eq!(
                    refused.response.status(),
                    StatusCode::UNAUTHORIZED,
                    "{case}"
                );
                assert!(queue.messages().is_empty(), "{case}");
                let handled = ingress
                    .handle_request(post(path, &[(header, &good)], body.as_bytes()))
                    .await;
                if max_events >= events {
                    assert_eq!(handled.outcome, Outcome::Accepted { events }, "{case}");
                    let envelopes = envelopes(&queue);
                    assert_eq!(envelopes.len(), events, "{case}");
                    let sent = if path == "/line" { &line } else { &items };
                    for (envelope, event) in envelopes.iter().zip(sent) {
                        assert_eq!(envelope.event.get(), event, "{case}");
                    }
                    queue.drain();
                } else {
                    assert_eq!(
                        handled.outcome,
                        Outcome::Rejected {
                            reason: "too_many_events"
                        },
                        "{case}"
                    );
                    assert!(queue.messages().is_empty(), "{case}");
                }
            }
        }
    }
}
