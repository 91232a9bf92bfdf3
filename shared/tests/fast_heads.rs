//! The ingress reads each event's head (key, conversation, time) without building values
//! (`shared::scan`); its definition is serde's reading. The two must agree on every input: on
//! generated events that mix the shapes the heads read with everything serde reads differently
//! (repeated fields, escapes, unpaired surrogates, numbers beyond `f64`, arrays where objects
//! belong, deep nesting), and on every real body of the fixture corpora. The readings that
//! validate as they read (`checked`) must also refuse, as serde does, every edited event that is
//! not JSON.

mod common;

use proptest::prelude::*;
use serde_json::value::RawValue;
use shared::line::{Callback, EventHead};
use shared::meta::{ItemHead, ItemList, Notification};

/// A JSON scalar as text, with the spellings serde reads differently.
fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        Just("\"true\"".to_owned()),
        Just("\"TRUE\"".to_owned()),
        Just("1763715600000".to_owned()),
        Just("-12".to_owned()),
        Just("-0".to_owned()),
        Just("12.75".to_owned()),
        Just("1e3".to_owned()),
        Just("1e400".to_owned()),
        Just("18446744073709551616".to_owned()),
        Just("9300000000000000000".to_owned()),
        Just("\" 42 \"".to_owned()),
        Just("\"1.5e3\"".to_owned()),
        Just("\"\"".to_owned()),
        Just("\"user\"".to_owned()),
        Just("\"group\"".to_owned()),
        Just("\"room\"".to_owned()),
        Just("\"U1\"".to_owned()),
        Just("\"P1\"".to_owned()),
        Just("\"m_1\"".to_owned()),
        Just("\"read\"".to_owned()),
        Just("\"\\u00e4\\n\\/x\"".to_owned()),
        Just("\"\\ud83d\\ude00\"".to_owned()),
        Just("\"\\ud800\"".to_owned()),
        Just("\"\\udc00x\"".to_owned()),
        Just("\"a\\\"b\"".to_owned()),
        Just("\"äöå 🤨\"".to_owned()),
        (0u32..5).prop_map(|n| format!("\"id{n}\"")),
        (0i64..3).prop_map(|n| n.to_string()),
    ]
}

/// Names the heads read, at any level, and a few they do not.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "webhookEventId",
            "timestamp",
            "source",
            "type",
            "userId",
            "groupId",
            "roomId",
            "sender",
            "recipient",
            "id",
            "user_ref",
            "message",
            "postback",
            "message_edit",
            "mid",
            "is_deleted",
            "num_edit",
            "value",
            "metadata",
            "phone_number_id",
            "display_phone_number",
            "contacts",
            "wa_id",
            "user_id",
            "messages",
            "statuses",
            "message_echoes",
            "status",
            "from",
            "from_user_id",
            "recipient_id",
            "recipient_user_id",
            "to",
            "to_user_id",
            "text",
            "x",
        ])
        .prop_map(str::to_owned),
        Just("web\\u0068ookEventId".to_owned()),
        Just("m\\u0069d".to_owned()),
    ]
}

/// A JSON value as text, with white space here and there.
fn value() -> impl Strategy<Value = String> {
    scalar().prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec((name(), inner.clone(), prop::bool::ANY), 0..6).prop_map(
                |members| {
                    let members: Vec<String> = members
                        .into_iter()
                        .map(|(k, v, spaced)| {
                            if spaced {
                                format!(" \"{k}\" : {v} ")
                            } else {
                                format!("\"{k}\":{v}")
                            }
                        })
                        .collect();
                    format!("{{{}}}", members.join(","))
                }
            ),
            // Compact too: the canonical key copies compact input a span at a time.
            (prop::collection::vec(inner, 0..4), prop::bool::ANY).prop_map(
                |(items, spaced)| format!("[{}]", items.join(if spaced { ", " } else { "," }))
            ),
        ]
    })
}

fn raw(text: &str) -> Option<Box<RawValue>> {
    RawValue::from_string(text.to_owned()).ok()
}

fn assert_heads_agree(text: &str) {
    // Valid text is read as the ingress reads an event: without white space around it (a key
    // hashed over the raw text would count it).
    let Some(raw) = raw(text) else {
        // Not JSON: the validating readings refuse it, as serde does.
        assert!(EventHead::checked(text).is_err(), "LINE head of {text}");
        for list in [ItemList::Messaging, ItemList::Changes] {
            assert!(
                ItemHead::checked("page", "P1", None, list, text).is_err(),
                "Meta {list:?} head of {text}"
            );
        }
        return;
    };
    assert_eq!(
        EventHead::of(&raw),
        EventHead::of_serde(&raw),
        "LINE head of {text}"
    );
    assert_eq!(
        EventHead::checked(raw.get()).ok(),
        Some(EventHead::of_serde(&raw)),
        "LINE head of {text}, validated as read"
    );
    for destination in ["", "Ub0"] {
        let head = EventHead::of(&raw);
        assert_eq!(
            head.dedup_key(destination, raw.get()),
            head_key_serde(&raw, destination),
            "LINE key of {text}"
        );
    }
    for object in ["page", "instagram", "whatsapp_business_account"] {
        for list in [ItemList::Messaging, ItemList::Standby, ItemList::Changes] {
            for time in [None, Some(1_763_715_600_000)] {
                assert_eq!(
                    ItemHead::of_entry(object, "P1", time, list, &raw),
                    ItemHead::of_entry_serde(object, "P1", time, list, &raw),
                    "Meta {object} {list:?} head of {text}"
                );
                assert_eq!(
                    ItemHead::checked(object, "P1", time, list, raw.get()).ok(),
                    Some(ItemHead::of_entry_serde(object, "P1", time, list, &raw)),
                    "Meta {object} {list:?} head of {text}, validated as read"
                );
            }
        }
    }
}

/// The LINE key as serde's reading makes it.
fn head_key_serde(raw: &RawValue, destination: &str) -> String {
    match EventHead::of_serde(raw).webhook_event_id {
        Some(id) if !id.is_empty() => format!("line:{id}"),
        _ => shared::key::hashed_json_serde("line:h:", &[destination], raw.get()),
    }
}

/// An event: an object of the fields the heads read first, often repeated, with any values.
fn event() -> impl Strategy<Value = String> {
    let top = prop::sample::select(vec![
        "webhookEventId",
        "timestamp",
        "source",
        "sender",
        "recipient",
        "message",
        "postback",
        "message_edit",
        "value",
        "text",
    ]);
    prop::collection::vec((top, value()), 0..8).prop_map(|members| {
        let members: Vec<String> = members
            .into_iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        format!("{{{}}}", members.join(","))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn fast_heads_equal_serde_heads_on_generated_events(event in prop_oneof![value(), event()]) {
        assert_heads_agree(&event);
    }

    /// One byte of an event deleted, inserted or replaced: mostly text that is not JSON, which
    /// the validating readings must refuse as serde does, or JSON read as serde reads it.
    #[test]
    fn validated_heads_equal_serde_heads_on_edited_events(
        event in prop_oneof![value(), event()],
        edit in any::<u8>(),
        at in any::<usize>(),
        byte in prop::sample::select(b"{}[]\",:\\ 0a-e.\x1f".to_vec()),
    ) {
        if let Ok(text) = String::from_utf8(common::edited(&event, edit, at, byte)) {
            assert_heads_agree(&text);
        }
    }

    #[test]
    fn fast_keys_equal_serde_keys_on_generated_events(event in value()) {
        prop_assume!(raw(&event).is_some());
        prop_assert_eq!(
            shared::key::hashed_json("p:", &["a"], &event),
            shared::key::hashed_json_serde("p:", &["a"], &event)
        );
    }
}

#[test]
fn what_serde_reads_differently_is_read_the_serde_way() {
    for text in [
        r#"{"webhookEventId":"a","webhookEventId":"b","source":{"type":"user","userId":"U1"}}"#,
        r#"{"webhookEventId":"a","source":{"type":"user","userId":"U1","x":1e400}}"#,
        r#"{"webhookEventId":"\ud800","timestamp":1}"#,
        r#"{"source":{"type":"user","userId":"U1","userId":"U2"}}"#,
        r#"{"source":{"type":"group","groupId":"\u0043a","userId":7}}"#,
        r#"{"source":{"type":"bot","x":[1,{"y":null}]}}"#,
        r#"{"sender":{"id":12345678901234567890},"recipient":{"id":"P1"},"message":{"mid":"m","is_deleted":"TRUE"}}"#,
        r#"{"sender":{"id":"U1"},"recipient":{"id":"P1"},"message_edit":{"mid":"m","num_edit":"2"},"timestamp":"5.9"}"#,
        r#"{"value":{"metadata":{"phone_number_id":1065},"contacts":[{"wa_id":"1"},null,3],"messages":[{"id":"w1","from":"1","timestamp":"1763715600"}]}}"#,
        r#"{"value":{"metadata":{"phone_number_id":"1065"},"messages":[["w1","x"]]}}"#,
        r#"{"value":{"statuses":[{"id":"w2","status":"read","recipient_id":"1"},{"id":"w3","status":"sent","recipient_id":"2"}]}}"#,
        r#"{"field":"messages","value":{"messages":[{"id":"w1","text":{"body":"\ud83d\ude00 \u00e4"}}]}}"#,
        // The strict first reading (serde with borrowed strings): what it must leave to the
        // lenient readings, which read nested objects as `Value`s first.
        r#"{"sender":["U1"],"recipient":{"id":"P1"},"message":{"mid":"m"}}"#,
        r#"{"sender":{"id":"U1","x":"\ud800"},"recipient":{"id":"P1"},"message":{"mid":"m"}}"#,
        r#"{"sender":{"id":"U1"},"message":{"mid":"m","text":"a","x":[1e400]}}"#,
        r#"{"sender":{"i\u0064":"U1"},"message":{"m\u0069d":"m\u00e4"},"timestamp":-3}"#,
        r#"{"sender":null,"recipient":{"id":null},"message":{"mid":null,"is_deleted":null}}"#,
        r#"{"sender":{"id":"U1"},"message":{"mid":"a","mid":"b"},"postback":{"mid":"c"}}"#,
        r#"{"message_edit":{"mid":"m","num_edit":2.0},"message":{"mid":"n"}}"#,
        r#"{"webhookEventId":"a","x":1e400,"source":{"type":"room","roomId":"R1"}}"#,
        r#"{"webhookEventId":"a","source":{"type":"user","userId":"U1","x":{"y":"\udc00"}}}"#,
        r#"{"webhookEventId":"a","source":{"type":"bot","userId":"U1"},"timestamp":9223372036854775808}"#,
        r#"{"webhookEventId":"a","source":{"type":"user","userId":"U1","type":"group"}}"#,
        &format!(
            r#"{{"sender":{{"id":"U1"}},"message":{{"mid":"m","x":{}1{}}}}}"#,
            "[".repeat(130),
            "]".repeat(130)
        ),
        // Members the strict reading skips as raw text: accepted only when plainly readable
        // as a `Value` (a surrogate pair, no exponent, no long number, shallow).
        r#"{"sender":{"id":"U1","x":"\ud83d\ude00"},"message":{"mid":"m"}}"#,
        r#"{"sender":{"id":"U1","x":"\ud83d\u0041"},"message":{"mid":"m"}}"#,
        r#"{"sender":{"id":"U1","x":"\ude00\ud83d"},"message":{"mid":"m"}}"#,
        r#"{"sender":{"id":"U1","x":"\ud83d"},"message":{"mid":"m"}}"#,
        r#"{"sender":{"id":"U1","x":"\\ud800"},"message":{"mid":"m"}}"#,
        r#"{"sender":{"id":"U1","x":{"\udbff":1}},"message":{"mid":"m"}}"#,
        r#"{"sender":{"id":"U1","x":[1e3,-2.5E-3]},"message":{"mid":"m"}}"#,
        &format!(
            r#"{{"sender":{{"id":"U1","x":{}}},"message":{{"mid":"m"}}}}"#,
            "9".repeat(301)
        ),
        &format!(
            r#"{{"sender":{{"id":"U1","x":{}}},"message":{{"mid":"m"}}}}"#,
            "9".repeat(310)
        ),
        &format!(
            r#"{{"sender":{{"id":"U1","x":{}1{}}},"message":{{"mid":"m"}}}}"#,
            "[".repeat(40),
            "]".repeat(40)
        ),
        &format!(
            r#"{{"webhookEventId":"a","source":{{"type":"user","userId":"U1","x":{}1{}}}}}"#,
            "[".repeat(124),
            "]".repeat(124)
        ),
        r#"[{"webhookEventId":"a"}]"#,
        r#""text""#,
        &format!(r#"{{"source":{}1{}}}"#, "[".repeat(120), "]".repeat(120)),
        &format!(r#"{{"x":{}1{}}}"#, "[".repeat(200), "]".repeat(200)),
    ] {
        assert_heads_agree(text);
        if raw(text).is_some() {
            assert_eq!(
                shared::key::hashed_json("p:", &[], text),
                shared::key::hashed_json_serde("p:", &[], text),
                "{text}"
            );
        }
    }
}

/// Every body of the peer corpus (`../shared/fixtures/peers`) and of the project's fixtures.
#[test]
fn fast_heads_equal_serde_heads_on_every_real_body() {
    let roots = [
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"),
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures"),
    ];
    let mut bodies = 0;
    let mut stack: Vec<std::path::PathBuf> = roots.into_iter().filter(|r| r.exists()).collect();
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("fixture folder").flatten() {
                stack.push(entry.path());
            }
            continue;
        }
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        if let Ok(callback) = Callback::parse(&bytes) {
            for event in &callback.events {
                assert_heads_agree(event.get());
            }
            bodies += 1;
        }
        if let Ok(notification) = Notification::parse(&bytes) {
            for item in notification.items() {
                assert_eq!(
                    item.head(),
                    ItemHead::of_entry_serde(
                        item.object,
                        item.entry_id,
                        item.entry_time,
                        item.list,
                        item.raw
                    ),
                    "{}",
                    path.display()
                );
            }
            bodies += 1;
        }
    }
    assert!(bodies > 100, "only {bodies} bodies found");
}
