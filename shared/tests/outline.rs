//! The outline of a request body (`shared::ingress::outline`) against the careful reading it
//! stands in for (`Callback::parse`, `Notification::parse` and their splits): wherever the
//! outline's split gives messages, the careful reading accepts the body and gives the same
//! messages and claims, byte for byte, on generated bodies, on every byte edit of them, and on
//! the peer corpus; and bodies of the platforms' shape are outlined (the fast path is taken).

mod common;

use common::edited;
use proptest::prelude::*;
use serde_json::value::RawValue;
use shared::ingress::{
    LineOutline, MetaOutline, Split, SplitOptions, line_messages, line_outline_messages,
    meta_messages, meta_outline_messages,
};
use shared::line::{Callback, EventHead};
use shared::meta::{ItemHead, MetaObject, Notification};
use shared::tenants::scoped;
use std::path::PathBuf;

/// Small enough that the larger events go to the claim-check store.
fn options(body: &[u8]) -> SplitOptions<'static> {
    SplitOptions::for_body(body, 1_763_715_600_000, 700)
}

fn same_split(outlined: &Split, careful: &Split) -> Result<(), TestCaseError> {
    prop_assert_eq!(&outlined.messages, &careful.messages);
    prop_assert_eq!(&outlined.claims, &careful.claims);
    Ok(())
}

/// Whether the body was outlined; where it was, the careful reading agrees.
fn line_agrees(body: &[u8]) -> Result<bool, TestCaseError> {
    let Some(outline) = LineOutline::read(body) else {
        return Ok(false);
    };
    let Ok(split) = line_outline_messages(&outline, &options(body)) else {
        return Ok(false);
    };
    let callback = Callback::parse(body);
    prop_assert!(
        callback.is_ok(),
        "outlined, but parse refuses: {:?}",
        callback.err()
    );
    let Ok(callback) = callback else {
        return Ok(false);
    };
    prop_assert_eq!(&callback.destination, &outline.destination);
    let careful = line_messages(&callback, &options(body));
    prop_assert!(careful.is_ok(), "outlined, but the careful split fails");
    let Ok(careful) = careful else {
        return Ok(false);
    };
    same_split(&split, &careful)?;
    Ok(true)
}

/// With a tenant, each message's key and conversation are the tenant's scoping
/// ([`scoped`]) of the event's own, as serde reads its head.
fn line_tenant_agrees(body: &[u8], tenant: &str) -> Result<(), TestCaseError> {
    let Some(outline) = LineOutline::read(body) else {
        return Ok(());
    };
    let options = SplitOptions {
        tenant: Some(tenant),
        ..options(body)
    };
    let Ok(split) = line_outline_messages(&outline, &options) else {
        return Ok(());
    };
    let destination = outline.destination.as_deref().unwrap_or_default();
    prop_assert_eq!(split.messages.len(), outline.events.len());
    for (message, event) in split.messages.iter().zip(&outline.events) {
        let event = event.text;
        let raw = RawValue::from_string(event.to_owned());
        prop_assert!(raw.is_ok(), "outlined, but not JSON: {event}");
        let Ok(raw) = raw else {
            return Ok(());
        };
        let head = EventHead::of_serde(&raw);
        let key = scoped(Some(tenant), head.dedup_key(destination, event));
        let conversation = scoped(Some(tenant), head.conversation_id(destination));
        prop_assert_eq!(message.key(), key.as_str());
        prop_assert_eq!(message.conversation(), conversation.as_str());
    }
    Ok(())
}

/// With a tenant, each Meta message's key and conversation are the tenant's scoping of the
/// item's own, as serde reads its head.
fn meta_tenant_agrees(body: &[u8], tenant: &str) -> Result<(), TestCaseError> {
    let Some(outline) = MetaOutline::read(body) else {
        return Ok(());
    };
    let options = SplitOptions {
        tenant: Some(tenant),
        ..options(body)
    };
    let Ok(split) = meta_outline_messages(&outline, &options) else {
        return Ok(());
    };
    prop_assert_eq!(split.messages.len(), outline.item_count());
    for (message, item) in split.messages.iter().zip(outline.items()) {
        let raw = RawValue::from_string(item.raw.to_owned());
        prop_assert!(raw.is_ok(), "outlined, but not JSON: {}", item.raw);
        let Ok(raw) = raw else {
            return Ok(());
        };
        let head =
            ItemHead::of_entry_serde(item.object, item.entry_id, item.entry_time, item.list, &raw);
        let key = scoped(Some(tenant), head.key);
        let conversation = scoped(Some(tenant), head.conversation);
        prop_assert_eq!(message.key(), key.as_str());
        prop_assert_eq!(message.conversation(), conversation.as_str());
    }
    Ok(())
}

fn meta_agrees(body: &[u8]) -> Result<bool, TestCaseError> {
    let Some(outline) = MetaOutline::read(body) else {
        return Ok(false);
    };
    let Ok(split) = meta_outline_messages(&outline, &options(body)) else {
        return Ok(false);
    };
    let notification = Notification::parse(body);
    prop_assert!(
        notification.is_ok(),
        "outlined, but parse refuses: {:?}",
        notification.err()
    );
    let Ok(notification) = notification else {
        return Ok(false);
    };
    prop_assert_eq!(&notification.object, &outline.object);
    prop_assert_eq!(notification.item_count(), outline.item_count());
    let careful = meta_messages(&notification, &options(body));
    prop_assert!(careful.is_ok(), "outlined, but the careful split fails");
    let Ok(careful) = careful else {
        return Ok(false);
    };
    same_split(&split, &careful)?;
    Ok(true)
}

const LINE_EVENTS: &[&str] = &[
    r#"{"type":"message","message":{"type":"text","id":"1","text":"hi \u00e4 \"q\" 😀 \ud83d\ude00"},"webhookEventId":"01A","deliveryContext":{"isRedelivery":false},"timestamp":1,"source":{"type":"user","userId":"U1"},"replyToken":"r","mode":"active"}"#,
    r#"{"type":"follow","timestamp":2,"source":{"type":"group","groupId":"G1","userId":"U2"},"mode":"active"}"#,
    r#"{ "type" : "somethingNew", "x" : [1, 2.5, {"y": null}], "timestamp" : "12" }"#,
    r#"{"webhookEventId":"a","webhookEventId":"b"}"#,
    r#"{"source":{"type":"room","roomId":"R","x":"\ud800"},"timestamp":1e3}"#,
    r#"{"webhook\u0045ventId":"e","timestamp":-5,"source":[1]}"#,
    r#"{"type":"unsend","source":{"type":"user","userId":"U\"1"},"timestamp":12345678901234567890}"#,
    r#"[1,2]"#,
    r#""text""#,
    r#"null"#,
    r#"1e400"#,
    r#"{"deep":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}"#,
];

const LINE_DESTINATIONS: &[&str] = &[r#""U0""#, r#""U\u0030""#, "null", "1", r#"{"a":1}"#];

const META_ITEMS: &[&str] = &[
    r#"{"sender":{"id":"U1"},"recipient":{"id":"P1"},"timestamp":5,"message":{"mid":"m_1","text":"hi \u00e4"}}"#,
    r#"{"sender":{"id":"U2"},"recipient":{"id":"P1"},"timestamp":6,"read":{"watermark":5}}"#,
    r#"{"sender":{"id":12},"recipient":{"id":"P1"},"timestamp":"7","postback":{"mid":"m_2","payload":"p"}}"#,
    r#"{"sender":{"id":"U3"},"message":{"mid":"m_3","is_deleted":true},"x":"\udc00"}"#,
    r#"{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1","phone_number_id":"106"},"contacts":[{"profile":{"name":"K"},"wa_id":"16"}],"messages":[{"from":"16","id":"wamid.1","timestamp":"1763715600","type":"text","text":{"body":"xx"}}]}}"#,
    r#"{"field":"messages","value":{"statuses":[{"id":"wamid.2","status":"read","timestamp":1,"recipient_id":"16"}]}}"#,
    r#"{"field":"feed","value":{"item":"status","verb":"add","n":1.5}}"#,
    r#"[{"a":1}]"#,
    r#"7"#,
];

const META_OBJECTS: &[&str] = &[
    r#""page""#,
    r#""instagram""#,
    r#""whatsapp_business_account""#,
    r#""somethingElse""#,
    r#""pa\u0067e""#,
    "1",
];

const ENTRY_IDS: &[&str] = &[r#""P1""#, "123", "null", r#""P\u0031""#, "true"];
const ENTRY_TIMES: &[&str] = &["1763715600000", r#""2""#, "null", "1.5", "1e400", "-3"];

fn line_body() -> impl Strategy<Value = String> {
    (
        prop::option::of(prop::sample::select(LINE_DESTINATIONS)),
        prop::collection::vec(prop::sample::select(LINE_EVENTS), 0..6),
        any::<bool>(),
        prop::sample::select(vec!["", " ", "\n  ", "\t"]),
    )
        .prop_map(|(destination, events, events_first, space)| {
            let events = format!(
                "{space}\"events\"{space}:{space}[{space}{}{space}]",
                events.join(&format!("{space},{space}"))
            );
            let members = match (destination, events_first) {
                (None, _) => vec![events],
                (Some(d), true) => vec![events, format!("\"destination\":{space}{d}")],
                (Some(d), false) => vec![format!("\"destination\":{space}{d}"), events],
            };
            format!("{space}{{{}}}{space}", members.join(","))
        })
}

fn meta_body() -> impl Strategy<Value = String> {
    let entry = (
        prop::option::of(prop::sample::select(ENTRY_IDS)),
        prop::option::of(prop::sample::select(ENTRY_TIMES)),
        prop::collection::vec(
            (
                prop::sample::select(vec!["messaging", "standby", "changes"]),
                prop::collection::vec(prop::sample::select(META_ITEMS), 0..4),
            ),
            0..3,
        ),
    )
        .prop_map(|(id, time, lists)| {
            let mut members: Vec<String> = Vec::new();
            members.extend(id.map(|id| format!("\"id\":{id}")));
            members.extend(time.map(|time| format!("\"time\": {time}")));
            for (name, items) in lists {
                members.push(format!("\"{name}\":[{}]", items.join(",")));
            }
            format!("{{{}}}", members.join(","))
        });
    (
        prop::sample::select(META_OBJECTS),
        prop::collection::vec(entry, 0..3),
    )
        .prop_map(|(object, entries)| {
            format!("{{\"object\":{object},\"entry\":[{}]}}", entries.join(", "))
        })
}

const EDIT_BYTES: &[u8] = b"{}[]\",:\\ 0a-e\xff";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn outlined_line_bodies_split_as_parse_splits_them(
        body in line_body(),
        edit in any::<u8>(),
        at in any::<usize>(),
        byte in prop::sample::select(EDIT_BYTES),
    ) {
        line_agrees(body.as_bytes())?;
        line_agrees(&edited(&body, edit, at, byte))?;
    }

    #[test]
    fn outlined_line_bodies_are_scoped_to_their_tenant(
        body in line_body(),
        // The longest makes every id too long for SQS, so that it is hashed.
        tenant in prop::sample::select(vec!["acme", "a/b", "x".repeat(130).leak()]),
    ) {
        line_tenant_agrees(body.as_bytes(), tenant)?;
    }

    #[test]
    fn outlined_meta_bodies_are_scoped_to_their_tenant(
        body in meta_body(),
        tenant in prop::sample::select(vec!["acme", "a/b", "x".repeat(130).leak()]),
    ) {
        meta_tenant_agrees(body.as_bytes(), tenant)?;
    }

    #[test]
    fn outlined_meta_bodies_split_as_parse_splits_them(
        body in meta_body(),
        edit in any::<u8>(),
        at in any::<usize>(),
        byte in prop::sample::select(EDIT_BYTES),
    ) {
        meta_agrees(body.as_bytes())?;
        meta_agrees(&edited(&body, edit, at, byte))?;
    }
}

proptest! {
    /// Bytes of JSON's alphabet in any order: no panic, and agreement wherever outlined.
    #[test]
    fn any_bytes_are_outlined_only_as_parse_reads_them(
        bytes in prop::collection::vec(prop::sample::select(b"{}[]\":,\\ \ntrufalsn019eE.+-ax\xff\xc3\xa4".to_vec()), 0..120),
        line in any::<bool>(),
    ) {
        let prefix: &[u8] = if line { br#"{"events":["# } else { br#"{"object":"page","entry":[{"messaging":["# };
        for body in [bytes.clone(), [prefix, &bytes].concat()] {
            line_agrees(&body)?;
            meta_agrees(&body)?;
        }
    }
}

/// The platforms' shape is outlined, whatever the events hold; other shapes are left to parse.
#[test]
fn the_platforms_shapes_are_outlined_and_others_are_not() {
    let line = format!(
        r#"{{"destination":"U0","events":[{}]}}"#,
        LINE_EVENTS.join(",")
    );
    assert!(line_agrees(line.as_bytes()).expect("agrees"));
    let meta = format!(
        r#"{{"object":"page","entry":[{{"id":"P1","time":1,"messaging":[{}]}}]}}"#,
        META_ITEMS.join(",")
    );
    assert!(meta_agrees(meta.as_bytes()).expect("agrees"));
    for other in [
        r#"{"destination":"U0","events":[],"extra":1}"#,
        r#"{"destination":"U0","events":[],"events":[]}"#,
        r#"{"destination":{"a":1},"events":[]}"#,
        r#"{"destination":"U0","events":[{"a":}]}"#,
        r#"{"destination":"U0","events":[]} x"#,
        r#"[{"destination":"U0","events":[]}]"#,
    ] {
        assert!(
            LineOutline::read(other.as_bytes()).is_none_or(|o| line_outline_messages(
                &o,
                &options(other.as_bytes())
            )
            .is_err()),
            "{other}"
        );
    }
    for other in [
        r#"{"object":"page","entry":[{"id":"P1","changes":[],"extra":{}}]}"#,
        r#"{"object":"page","entry":[{"id":"P1","id":"P2"}]}"#,
        r#"{"object":"page","entry":[[]]}"#,
        r#"{"object":"page","entry":[{"messaging":null}]}"#,
    ] {
        assert!(MetaOutline::read(other.as_bytes()).is_none(), "{other}");
    }
    let unknown = MetaOutline::read(br#"{"object":"x","entry":[]}"#).expect("outlined");
    assert!(matches!(unknown.object, MetaObject::Unknown(_)));
}

/// Every body of the peer corpus (beside the project) and every single-byte deletion of it.
#[test]
fn peer_bodies_split_as_parse_splits_them() {
    let folder = std::env::var_os("GATEWAY_PEER_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/peers")
        });
    let Ok(platforms) = std::fs::read_dir(&folder) else {
        eprintln!("skipped: no peer corpus at {}", folder.display());
        return;
    };
    let mut outlined = 0;
    for platform in platforms.flatten().filter(|p| p.path().is_dir()) {
        let line = platform.file_name() == "line";
        for file in std::fs::read_dir(platform.path())
            .expect("a folder")
            .flatten()
        {
            let body = std::fs::read(file.path()).expect("a body");
            let agrees = |body: &[u8]| {
                if line {
                    line_agrees(body)
                } else {
                    meta_agrees(body)
                }
            };
            outlined += usize::from(agrees(&body).expect("agrees"));
            for at in (0..body.len()).step_by(7) {
                let mut cut = body.clone();
                cut.remove(at);
                agrees(&cut).expect("agrees");
            }
        }
    }
    assert!(outlined > 100, "only {outlined} peer bodies outlined");
}
