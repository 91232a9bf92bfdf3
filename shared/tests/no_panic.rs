//! Whatever arrives, reading it never panics: arbitrary bytes, and arbitrary JSON built from the
//! platforms' own field names and type values so that it reaches deep into the models.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use shared::line::{Callback, Event, EventHead};
use shared::meta::{Item, ItemHead, ItemList, Notification};
use shared::signature::{Secrets, verify_line, verify_meta};

/// Field names and string values the models look at.
const WORDS: &[&str] = &[
    "type",
    "message",
    "source",
    "userId",
    "groupId",
    "roomId",
    "timestamp",
    "mode",
    "webhookEventId",
    "deliveryContext",
    "isRedelivery",
    "replyToken",
    "id",
    "text",
    "mention",
    "mentionees",
    "isSelf",
    "index",
    "length",
    "emojis",
    "contentProvider",
    "imageSet",
    "postback",
    "params",
    "data",
    "beacon",
    "link",
    "membership",
    "module",
    "chatControl",
    "delivery",
    "follow",
    "unsend",
    "messageId",
    "joined",
    "left",
    "members",
    "active",
    "standby",
    "user",
    "group",
    "room",
    "all",
    "image",
    "video",
    "audio",
    "file",
    "location",
    "sticker",
    "line",
    "external",
    "attached",
    "detached",
    "renewed",
    "sender",
    "recipient",
    "mid",
    "attachments",
    "payload",
    "url",
    "is_echo",
    "message_edit",
    "num_edit",
    "reaction",
    "read",
    "watermark",
    "mids",
    "optin",
    "referral",
    "account_linking",
    "pass_thread_control",
    "app_roles",
    "policy_enforcement",
    "field",
    "value",
    "messages",
    "statuses",
    "metadata",
    "phone_number_id",
    "from",
    "status",
    "interactive",
    "button_reply",
    "list_reply",
    "contacts",
    "is_deleted",
    "messageEdited",
    "memberJoined",
    "stickerResourceType",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(WORDS).prop_map(str::to_owned),
        1 => ".{0,8}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        (u64::MAX / 2..).prop_map(Value::from),
        word().prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((word(), inner), 0..7)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn read_everything(body: &[u8]) {
    if let Ok(callback) = Callback::parse(body) {
        for parsed in callback.events() {
            let head = EventHead::of(parsed.raw);
            let _ = head.dedup_key(
                callback.destination.as_deref().unwrap_or_default(),
                parsed.raw.get(),
            );
            let _ = head.conversation_id(callback.destination.as_deref().unwrap_or_default());
            if let Ok(event) = parsed.event {
                let _ = event.mentions_bot(callback.destination.as_deref());
                let _ = event.conversation_id(callback.destination.as_deref().unwrap_or_default());
                let _ = event.message().map(|m| (m.quote_token(), m.type_name()));
            }
        }
    }
    if let Ok(notification) = Notification::parse(body) {
        let _ = notification.item_count();
        for item in notification.items() {
            let _ = item.head();
            let _ = item.typed();
        }
    }
    let secrets = Secrets::from_list("s").expect("secret");
    let _ = verify_line(&secrets, body, Some(body));
    let _ = verify_meta(&secrets, body, Some(body));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        read_everything(&body);
    }

    #[test]
    fn arbitrary_line_bodies(events in prop::collection::vec(json_value(), 0..6)) {
        let body = json!({"destination": "U0", "events": events}).to_string();
        read_everything(body.as_bytes());
        for event in &events {
            let _ = Event::from_json(&event.to_string());
        }
    }

    #[test]
    fn arbitrary_line_events_with_real_types(
        kind in proptest::sample::select(&["message", "messageEdited", "postback", "membership", "module", "memberJoined", "follow", "beacon", "accountLink", "activated", "delivery", "unsend", "videoPlayComplete"][..]),
        payload in json_value(),
        message_kind in proptest::sample::select(&["text", "image", "video", "audio", "file", "location", "sticker", "poll"][..]),
    ) {
        let event = json!({
            "type": kind, "timestamp": 1, "mode": "active", "webhookEventId": "01X",
            "deliveryContext": {"isRedelivery": false},
            "message": {"type": message_kind, "id": "1", "text": "t", "mention": {"mentionees": [payload.clone()]}},
            "postback": payload.clone(), "membership": payload.clone(), "module": payload.clone(),
            "joined": {"members": [payload.clone()]}, "source": payload,
        });
        let _ = Event::from_json(&event.to_string()).map(|e| e.mentions_bot(Some("U0")));
    }

    #[test]
    fn arbitrary_meta_bodies(
        object in proptest::sample::select(&["page", "instagram", "whatsapp_business_account", "x"][..]),
        items in prop::collection::vec(json_value(), 0..6),
        changes in prop::collection::vec(json_value(), 0..3),
    ) {
        let body = json!({"object": object, "entry": [
            {"id": "P", "time": 1, "messaging": items.clone(), "standby": items},
            {"id": 5, "changes": changes.iter().map(|v| json!({"field": "messages", "value": v})).collect::<Vec<_>>()},
        ]}).to_string();
        read_everything(body.as_bytes());
    }

    #[test]
    fn arbitrary_meta_items_of_every_list(item in json_value()) {
        let raw = serde_json::value::RawValue::from_string(item.to_string()).expect("json");
        for list in [ItemList::Messaging, ItemList::Standby, ItemList::Changes] {
            for object in ["page", "whatsapp_business_account"] {
                let _ = ItemHead::of(object, "P", list, &raw);
                let _ = Item::parse(object, list, raw.get());
            }
        }
    }
}

#[test]
fn deeply_nested_json_never_overflows_and_keeps_distinct_keys() {
    // The envelope skips over events without reading them, so a deep event gets through it;
    // reading the event stops at serde_json's depth limit instead of overflowing the stack, and
    // two different deep events still get different keys.
    let deep = |leaf: &str| format!("{}{leaf}{}", "[".repeat(50_000), "]".repeat(50_000));
    let body = format!(
        r#"{{"destination":"U0","events":[{},{}]}}"#,
        deep("1"),
        deep("2")
    );
    let callback = Callback::parse(body.as_bytes()).expect("envelope");
    let keys: Vec<String> = callback
        .events()
        .map(|parsed| {
            assert!(parsed.event.is_err());
            EventHead::of(parsed.raw).dedup_key("U0", parsed.raw.get())
        })
        .collect();
    assert_ne!(keys[0], keys[1]);

    let deep_object =
        |leaf: &str| format!("{}{leaf}{}", "{\"a\":".repeat(50_000), "}".repeat(50_000));
    let body = format!(
        r#"{{"object":"page","entry":[{{"id":"P","messaging":[{},{}]}}]}}"#,
        deep_object("1"),
        deep_object("2")
    );
    let notification = Notification::parse(body.as_bytes()).expect("envelope");
    let keys: Vec<String> = notification
        .items()
        .map(|item| {
            assert!(item.typed().is_err());
            item.dedup_key()
        })
        .collect();
    assert_ne!(keys[0], keys[1]);
    // Nesting in the envelope itself is refused.
    let deep_envelope = format!(r#"{{"object":"page","entry":[{{"id":{}}}]}}"#, deep("1"));
    assert!(Notification::parse(deep_envelope.as_bytes()).is_err());
}

mod worker_and_verification {
    use super::json_value;
    use bytes::Bytes;
    use proptest::prelude::*;
    use shared::adapters::memory::MemoryQueue;
    use shared::bot::BotEvent;
    use shared::envelope::Envelope;
    use shared::ingress::{Ingress, IngressConfig};
    use std::sync::Arc;

    fn gateway() -> Ingress {
        let config = IngressConfig::from_vars(|name| match name {
            "META_APP_SECRET" => Some("s".to_owned()),
            "META_VERIFY_TOKEN" => Some("the-token".to_owned()),
            _ => None,
        })
        .expect("config");
        Ingress::new(config, Arc::new(MemoryQueue::new()))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// The worker reads any queue message body: an envelope or an error, and the bot's view
        /// of any envelope, whatever its event, without a panic.
        #[test]
        fn queue_bodies(body in ".{0,200}", event in json_value(), platform in "line|meta|x") {
            let _ = Envelope::decode(&body);
            let envelope = serde_json::json!({
                "version": 1, "platform": platform, "key": "k", "conversation": "c", "received_at": 1,
                "line": {"destination": "U0"},
                "meta": {"object": "page", "entry_id": "P", "list": "messaging"},
                "event": event,
            })
            .to_string();
            if let Ok(envelope) = Envelope::decode(&envelope) {
                let view = BotEvent::from_envelope(envelope, tokio::time::Instant::now());
                let _ = (view.type_name(), view.is_redelivery());
            }
        }

        /// Any query on GET /meta: 200 with the challenge only for exactly one
        /// hub.mode=subscribe, the token and a challenge; 403 otherwise.
        #[test]
        fn verification_queries(
            pairs in prop::collection::vec(
                (prop::sample::select(&["hub.mode", "hub.verify_token", "hub.challenge", "hub_mode", "x"][..]),
                 prop::sample::select(&["subscribe", "the-token", "1158201444", "", "SUBSCRIBE", "the-token "][..])),
                0..6,
            )
        ) {
            let query: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs.iter().copied()).finish();
            let request = http::Request::builder().uri(format!("/meta?{query}")).body(Bytes::new()).expect("request");
            let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            let handled = runtime.block_on(gateway().handle_request(request));
            let one = |name: &str| {
                let values: Vec<&str> = pairs.iter().filter(|(k, _)| *k == name).map(|(_, v)| *v).collect();
                (values.len() == 1).then(|| values[0])
            };
            let expected = one("hub.mode") == Some("subscribe") && one("hub.verify_token") == Some("the-token") && one("hub.challenge").is_some();
            prop_assert_eq!(handled.response.status().as_u16(), if expected { 200 } else { 403 });
            if expected {
                prop_assert_eq!(Some(handled.response.body().as_str()), one("hub.challenge"));
            }
        }
    }
}
