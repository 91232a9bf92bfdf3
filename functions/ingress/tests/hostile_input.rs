//! Hostile input: a table of crafted requests, each with the answer it must get, sent through the
//! whole Lambda handler (event conversion included) to an in-memory queue. The logs written while
//! they run are captured and must contain no secret, no token and no body.

use base64::Engine as _;
use ingress::apigw::{HttpEvent, HttpResponse};
use serde_json::{Value, json};
use shared::adapters::memory::MemoryQueue;
use shared::ingress::{Ingress, IngressConfig};
use shared::signature::{sign_line, sign_meta};
use std::sync::Arc;

const LINE_SECRET: &str = "hostile-line-secret-5f1c";
const META_SECRET: &str = "hostile-meta-secret-9a7e";
const TOKEN: &str = "hostile-verify-token-33b0";
/// Put in every body: it must never appear in a log line.
const MARKER: &str = "BODY-MARKER-7d41";

fn ingress(queue: Arc<MemoryQueue>) -> Ingress {
    let config = IngressConfig::from_vars(|name| {
        Some(match name {
            "LINE_CHANNEL_SECRET" => LINE_SECRET.to_owned(),
            "META_APP_SECRET" => META_SECRET.to_owned(),
            "META_VERIFY_TOKEN" => TOKEN.to_owned(),
            "MAX_BODY_BYTES" => "65536".to_owned(),
            _ => return None,
        })
    })
    .expect("config");
    Ingress::new(config, queue)
}

fn line_body() -> String {
    format!(
        r#"{{"destination":"U0","events":[{{"type":"message","message":{{"type":"text","id":"1","text":"{MARKER} \u00e4","quoteToken":"q"}},"webhookEventId":"01H","deliveryContext":{{"isRedelivery":false}},"timestamp":1,"source":{{"type":"user","userId":"U1"}},"replyToken":"reply-token-secret","mode":"active"}}]}}"#
    )
}

fn meta_body() -> String {
    format!(
        r#"{{"object":"page","entry":[{{"id":"P","time":1,"messaging":[{{"sender":{{"id":"U"}},"recipient":{{"id":"P"}},"timestamp":1,"message":{{"mid":"m_1","text":"{MARKER}"}}}}]}}]}}"#
    )
}

/// One crafted request.
struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    base64: bool,
    /// Flag the body as base64 without encoding it (a broken event).
    flag_only: bool,
    status: i64,
    /// Messages queued by this request.
    queued: usize,
}

fn case(name: &'static str, method: &'static str, path: &str, status: i64) -> Case {
    Case {
        name,
        method,
        path: path.to_owned(),
        query: String::new(),
        headers: Vec::new(),
        body: None,
        base64: false,
        flag_only: false,
        status,
        queued: 0,
    }
}

impl Case {
    fn body(mut self, body: impl Into<Vec<u8>>) -> Case {
        self.body = Some(body.into());
        self
    }
    fn header(mut self, name: &str, value: impl Into<String>) -> Case {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
    fn line_signed(self) -> Case {
        let signature = sign_line(LINE_SECRET, self.body.as_deref().unwrap_or_default());
        self.header("x-line-signature", signature)
    }
    fn meta_signed(self) -> Case {
        let signature = sign_meta(META_SECRET, self.body.as_deref().unwrap_or_default());
        self.header("x-hub-signature-256", signature)
    }
    fn query(mut self, query: &str) -> Case {
        self.query = query.to_owned();
        self
    }
    fn queued(mut self, n: usize) -> Case {
        self.queued = n;
        self
    }
    fn base64(mut self) -> Case {
        self.base64 = true;
        self
    }
    fn base64_flag_only(mut self) -> Case {
        self.base64 = true;
        self.flag_only = true;
        self
    }

    fn event(&self) -> Value {
        let mut headers = serde_json::Map::new();
        for (name, value) in &self.headers {
            headers.insert(name.clone(), Value::String(value.clone()));
        }
        let body = self.body.as_ref().map(|bytes| {
            if self.base64 && !self.flag_only {
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                Value::String(String::from_utf8_lossy(bytes).into_owned())
            }
        });
        json!({
            "version": "2.0", "rawPath": self.path, "rawQueryString": self.query,
            "headers": headers,
            "requestContext": {"http": {"method": self.method, "path": self.path}, "stage": "$default"},
            "body": body, "isBase64Encoded": self.base64
        })
    }
}

fn cases() -> Vec<Case> {
    let line = line_body();
    let meta = meta_body();
    let valid_line_signature = sign_line(LINE_SECRET, line.as_bytes());
    let valid_meta_signature = sign_meta(META_SECRET, meta.as_bytes());
    let deep_event = format!(
        r#"{{"destination":"U0","events":[{}1{}]}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let deep_envelope = format!(
        r#"{{"destination":{}"U0"{},"events":[]}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let frame = r#"{"destination":"U0","events":[],"pad":""}"#.len();
    let at_limit = format!(
        r#"{{"destination":"U0","events":[],"pad":"{}"}}"#,
        "x".repeat(65_536 - frame)
    );
    assert_eq!(at_limit.len(), 65_536);
    let over_limit = format!(
        r#"{{"destination":"U0","events":[],"pad":"{}"}}"#,
        "x".repeat(65_536)
    );
    let mut invalid_utf8 = br#"{"destination":"U0","events":[{"type":"x","text":""#.to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe, 0x80]);
    invalid_utf8.extend_from_slice(br#""}]}"#);
    let mut bom = vec![0xef, 0xbb, 0xbf];
    bom.extend_from_slice(line.as_bytes());
    let verify = |query: &str| case("meta verification", "GET", "/meta", 0).query(query);
    vec![
        // LINE signatures.
        case("valid LINE request", "POST", "/line", 200).body(line.clone()).line_signed().queued(1),
        case("missing signature", "POST", "/line", 401).body(line.clone()),
        case("empty signature", "POST", "/line", 401).body(line.clone()).header("x-line-signature", ""),
        case("signature of another body", "POST", "/line", 401)
            .body(line.clone())
            .header("x-line-signature", sign_line(LINE_SECRET, b"{}")),
        case("signed with another secret", "POST", "/line", 401)
            .body(line.clone())
            .header("x-line-signature", sign_line("guess", line.as_bytes())),
        case("header name in capitals", "POST", "/line", 200)
            .body(line.clone())
            .header("X-LINE-SIGNATURE", valid_line_signature.clone())
            .queued(1),
        case("hex instead of base64", "POST", "/line", 401)
            .body(line.clone())
            .header("x-line-signature", sign_meta(LINE_SECRET, line.as_bytes()).replace("sha256=", "")),
        case("Meta's header on the LINE route", "POST", "/line", 401)
            .body(line.clone())
            .header("x-hub-signature-256", sign_meta(LINE_SECRET, line.as_bytes())),
        case("truncated signature", "POST", "/line", 401)
            .body(line.clone())
            .header("x-line-signature", valid_line_signature[..30].to_owned()),
        case("signature with an extra byte", "POST", "/line", 401)
            .body(line.clone())
            .header("x-line-signature", format!("{valid_line_signature}A")),
        case("100 KB signature", "POST", "/line", 401)
            .body(line.clone())
            .header("x-line-signature", "A".repeat(100_000)),
        case("body truncated after signing", "POST", "/line", 401)
            .body(line[..line.len() - 10].to_owned())
            .header("x-line-signature", valid_line_signature.clone()),
        case("replayed request (deduplicated by the worker)", "POST", "/line", 200)
            .body(line.clone())
            .header("x-line-signature", valid_line_signature.clone())
            .queued(1),
        // LINE bodies, correctly signed.
        case("truncated body, signed as sent", "POST", "/line", 400).body(line[..line.len() - 10].to_owned()).line_signed(),
        case("empty body", "POST", "/line", 400).body("").line_signed(),
        case("no body at all", "POST", "/line", 400).line_signed(),
        case("null", "POST", "/line", 400).body("null").line_signed(),
        case("a JSON array", "POST", "/line", 400).body("[]").line_signed(),
        case("events not an array", "POST", "/line", 400).body(r#"{"destination":"U0","events":{}}"#).line_signed(),
        case("no destination (the Python SDK parses it)", "POST", "/line", 200).body(r#"{"events":[]}"#).line_signed(),
        case("duplicate envelope keys", "POST", "/line", 400)
            .body(r#"{"destination":"U0","destination":"U1","events":[]}"#)
            .line_signed(),
        case("duplicate keys inside an event are its own business", "POST", "/line", 200)
            .body(r#"{"destination":"U0","events":[{"type":"a","type":"b","webhookEventId":"01D"}]}"#)
            .line_signed()
            .queued(1),
        case("byte order mark", "POST", "/line", 400).body(bom).line_signed(),
        // API Gateway sends a body that is not UTF-8 base64-encoded.
        case("invalid UTF-8 in an event", "POST", "/line", 400).body(invalid_utf8).line_signed().base64(),
        case("10,000-deep event, kept verbatim", "POST", "/line", 200).body(deep_event).line_signed().queued(1),
        case("10,000-deep envelope", "POST", "/line", 400).body(deep_envelope).line_signed(),
        case("huge numbers", "POST", "/line", 200)
            .body(r#"{"destination":"U0","events":[{"type":"x","webhookEventId":"01N","timestamp":123456789012345678901234567890,"n":1e308}]}"#)
            .line_signed()
            .queued(1),
        case("number out of range, kept verbatim", "POST", "/line", 200)
            .body(r#"{"destination":"U0","events":[{"n":1e400}]}"#)
            .line_signed()
            .queued(1),
        case("events that are not objects", "POST", "/line", 200)
            .body(r#"{"destination":"U0","events":[1,"two",null,[]]}"#)
            .line_signed()
            .queued(4),
        case("the Verify button's empty list", "POST", "/line", 200).body(r#"{"destination":"U0","events":[]}"#).line_signed(),
        case("wrong content type: the signature is what counts", "POST", "/line", 200)
            .body(line.clone())
            .line_signed()
            .header("content-type", "text/plain")
            .queued(1),
        case("form content type", "POST", "/line", 200)
            .body(line.clone())
            .line_signed()
            .header("content-type", "application/x-www-form-urlencoded")
            .queued(1),
        case("body at the size limit", "POST", "/line", 200).body(at_limit).line_signed(),
        case("body one byte over the limit", "POST", "/line", 413).body(over_limit.clone()).line_signed(),
        case("oversized and unsigned", "POST", "/line", 413).body(over_limit),
        case("base64 body", "POST", "/line", 200).body(line.clone()).line_signed().base64().queued(1),
        case("base64 flag with a body that is not base64", "POST", "/line", 400)
            .body("%%% not base64 %%%")
            .base64_flag_only()
            .header("x-line-signature", valid_line_signature.clone()),
        // Paths and methods.
        case("GET on the LINE route", "GET", "/line", 405),
        case("PUT on the LINE route", "PUT", "/line", 405).body(line.clone()).line_signed(),
        case("HEAD on the LINE route", "HEAD", "/line", 405),
        case("trailing slash", "POST", "/line/", 200).body(line.clone()).line_signed().queued(1),
        case("query string on a webhook", "POST", "/line", 200).body(line.clone()).line_signed().query("x=1&x=2").queued(1),
        case("upper-case path", "POST", "/LINE", 404).body(line.clone()).line_signed(),
        case("double slash", "POST", "//line", 404).body(line.clone()).line_signed(),
        case("dot segments", "POST", "/line/../meta", 404).body(meta.clone()).meta_signed(),
        case("encoded NUL", "POST", "/line%00", 404).body(line.clone()).line_signed(),
        case("full-width letters", "POST", "/ｌｉｎｅ", 404).body(line.clone()).line_signed(),
        case("root", "GET", "/", 404),
        case("unknown path", "POST", "/webhook", 404).body(line.clone()).line_signed(),
        // Meta notifications.
        case("valid Meta request", "POST", "/meta", 200).body(meta.clone()).meta_signed().queued(1),
        case("Meta: missing signature", "POST", "/meta", 401).body(meta.clone()),
        case("Meta: only the legacy sha1 header", "POST", "/meta", 401)
            .body(meta.clone())
            .header("x-hub-signature", "sha1=0000000000000000000000000000000000000000"),
        case("Meta: upper-case hex", "POST", "/meta", 200)
            .body(meta.clone())
            .header("x-hub-signature-256", format!("sha256={}", valid_meta_signature[7..].to_uppercase()))
            .queued(1),
        case("Meta: upper-case prefix", "POST", "/meta", 401)
            .body(meta.clone())
            .header("x-hub-signature-256", valid_meta_signature.replace("sha256=", "SHA256=")),
        case("Meta: LINE's header", "POST", "/meta", 401)
            .body(meta.clone())
            .header("x-line-signature", sign_line(META_SECRET, meta.as_bytes())),
        case("Meta: object it does not handle", "POST", "/meta", 404)
            .body(r#"{"object":"user","entry":[{"id":"1","changes":[]}]}"#)
            .meta_signed(),
        case("Meta: entry not an array", "POST", "/meta", 400).body(r#"{"object":"page","entry":{}}"#).meta_signed(),
        case("Meta: no entries", "POST", "/meta", 200).body(r#"{"object":"page","entry":[]}"#).meta_signed(),
        case("Meta: the seed's test payload", "POST", "/meta", 200)
            .body(r#"{"object": "page", "entry": [{"messaging": [{"message": "TEST_MESSAGE"}]}]}"#)
            .meta_signed()
            .queued(1),
        case("Meta: hub.* query on a POST", "POST", "/meta", 401)
            .body(meta.clone())
            .query(&format!("hub.mode=subscribe&hub.verify_token={TOKEN}&hub.challenge=1")),
        case("DELETE on the Meta route", "DELETE", "/meta", 405),
        case("OPTIONS on the Meta route", "OPTIONS", "/meta", 405),
        // Meta verification requests.
        Case { status: 200, ..verify(&format!("hub.mode=subscribe&hub.verify_token={TOKEN}&hub.challenge=1158201444")) },
        Case { status: 403, name: "wrong token", ..verify("hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1") },
        Case { status: 403, name: "token repeated", ..verify(&format!("hub.mode=subscribe&hub.verify_token=guess&hub.verify_token={TOKEN}&hub.challenge=1")) },
        Case { status: 403, name: "challenge repeated", ..verify(&format!("hub.mode=subscribe&hub.verify_token={TOKEN}&hub.challenge=1&hub.challenge=2")) },
        Case { status: 403, name: "mode repeated", ..verify(&format!("hub.mode=subscribe&hub.mode=unsubscribe&hub.verify_token={TOKEN}&hub.challenge=1")) },
        Case { status: 403, name: "no challenge", ..verify(&format!("hub.mode=subscribe&hub.verify_token={TOKEN}")) },
        Case { status: 403, name: "no token", ..verify("hub.mode=subscribe&hub.challenge=1") },
        Case { status: 403, name: "no mode", ..verify(&format!("hub.verify_token={TOKEN}&hub.challenge=1")) },
        Case { status: 403, name: "no query", ..verify("") },
        Case { status: 403, name: "mode in capitals", ..verify(&format!("hub.mode=SUBSCRIBE&hub.verify_token={TOKEN}&hub.challenge=1")) },
        Case { status: 403, name: "PHP-style names", ..verify(&format!("hub_mode=subscribe&hub_verify_token={TOKEN}&hub_challenge=1")) },
        Case { status: 403, name: "token with a trailing space", ..verify(&format!("hub.mode=subscribe&hub.verify_token={TOKEN}%20&hub.challenge=1")) },
        Case { status: 200, name: "markup in the challenge is echoed as plain text", ..verify(&format!("hub.mode=subscribe&hub.verify_token={TOKEN}&hub.challenge=%3Cscript%3E")) },
        Case { status: 403, name: "broken percent-encoding", ..verify("hub.mode=subscribe&hub.verify_token=%ZZ&hub.challenge=1") },
    ]
}

#[tokio::test(flavor = "current_thread")]
async fn every_crafted_request_gets_its_answer_and_logs_leak_nothing() {
    let (captured, _logs) = testkit::capture_json_logs();

    let cases = cases();
    assert!(cases.len() >= 50, "the table has {} requests", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let queue = Arc::new(MemoryQueue::with_max_message_bytes(262_000));
        let ingress = ingress(queue.clone());
        let event: HttpEvent = match serde_json::from_value(case.event()) {
            Ok(event) => event,
            Err(error) => {
                failures.push(format!("{}: not a Lambda event: {error}", case.name));
                continue;
            }
        };
        let HttpResponse::HttpApi(response) = ingress::handle(&ingress, event).await else {
            failures.push(format!("{}: not an HTTP API response", case.name));
            continue;
        };
        if response.status_code != case.status {
            failures.push(format!(
                "{}: {} instead of {}",
                case.name, response.status_code, case.status
            ));
        }
        // Issue 15: every answer, refusals included, is plain text no browser may sniff.
        let header = |name: &str| {
            response
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        if header("x-content-type-options") != "nosniff"
            || !header("content-type").starts_with("text/plain")
            || header("cache-control") != "no-store"
        {
            failures.push(format!("{}: headers {:?}", case.name, response.headers));
        }
        if queue.messages().len() != case.queued {
            failures.push(format!(
                "{}: {} queued instead of {}",
                case.name,
                queue.messages().len(),
                case.queued
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    let logs = captured.text();
    assert!(
        logs.lines().count() >= cases.len(),
        "one log line per request at least"
    );
    for secret in [
        LINE_SECRET,
        META_SECRET,
        TOKEN,
        MARKER,
        "reply-token-secret",
        "TEST_MESSAGE",
    ] {
        assert!(!logs.contains(secret), "the logs contain {secret:?}");
    }
}

#[test]
fn a_header_with_a_line_break_never_becomes_a_request() {
    // API Gateway never sends one; if it did, the event does not deserialise (the runtime reports
    // an error) rather than smuggling a second header in.
    let event = json!({
        "version": "2.0", "rawPath": "/line", "rawQueryString": "",
        "headers": {"x-line-signature": "abc\r\nx-evil: 1"},
        "requestContext": {"http": {"method": "POST", "path": "/line"}},
        "body": "{}", "isBase64Encoded": false
    });
    match serde_json::from_value::<HttpEvent>(event) {
        Err(_) => {}
        Ok(event) => {
            let (_, request) = ingress::apigw::into_request(event);
            let request = request.expect("request");
            assert!(request.headers().get("x-evil").is_none());
        }
    }
}
