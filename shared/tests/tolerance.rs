//! The models are as tolerant as the platforms are inventive (issue 14). The rule: a field the
//! spec calls required but that is missing never makes an event unreadable; what is present is
//! typed, what is absent is `None`; only an event that is not an object, or a LINE event without
//! a `type`, is unreadable, and never at the cost of the other events of its request.
//!
//! The project's own fixtures, one case per class found in the official SDKs' bodies, and a body
//! for every WhatsApp message type and status of the Cloud API's webhook reference; then the
//! rule as a property: every field of every event of every fixture deleted, one at a time (and
//! at random, several at a time), never fails the request nor changes another event's outcome.

use bytes::Bytes;
use proptest::prelude::*;
use serde_json::Value;
use shared::adapters::memory::MemoryQueue;
use shared::bot::{BotEvent, BotEventKind};
use shared::envelope::Envelope;
use shared::ingress::{Ingress, IngressConfig};
use shared::line::{self, EventKind, MessageContent};
use shared::meta::{
    ChangeValue, Interactive, Item, MessagingKind, PricingModel, StatusKind, SystemKind,
    WhatsAppContent,
};
use shared::signature::{sign_line, sign_meta};
use std::sync::Arc;

const LINE_SECRET: &str = "tolerance-line";
const META_SECRET: &str = "tolerance-meta";
const BOT: &str = "Uf00000000000000000000000000000b0";
const LINE_TOLERANCE: &[u8] = include_bytes!("fixtures/line-tolerance.json");
const LINE_EVERY_EVENT: &[u8] = include_bytes!("fixtures/line-every-event.json");
const WHATSAPP: &[u8] = include_bytes!("fixtures/whatsapp-every-type.json");
const MESSENGER: &[u8] = include_bytes!("fixtures/meta-messenger.json");
const INSTAGRAM: &[u8] = include_bytes!("fixtures/meta-instagram.json");
const META_WHATSAPP: &[u8] = include_bytes!("fixtures/meta-whatsapp.json");

fn ingress() -> (Ingress, Arc<MemoryQueue>) {
    let config = IngressConfig::from_vars(|name| match name {
        "LINE_CHANNEL_SECRET" => Some(LINE_SECRET.into()),
        "META_APP_SECRET" => Some(META_SECRET.into()),
        _ => None,
    })
    .expect("config");
    let queue = Arc::new(MemoryQueue::like_sqs());
    (Ingress::new(config, queue.clone()), queue)
}

/// What became of one event: everything but the time it was received.
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    key: String,
    conversation: String,
    timestamp: Option<i64>,
    bytes: String,
    typed: String,
    unreadable: bool,
}

/// Sends `body` to `route` and returns the status and every event's outcome.
async fn send(route: &str, body: &[u8]) -> (u16, Vec<Outcome>) {
    let (ingress, queue) = ingress();
    let (header, signature) = if route == "/line" {
        ("x-line-signature", sign_line(LINE_SECRET, body))
    } else {
        ("x-hub-signature-256", sign_meta(META_SECRET, body))
    };
    let request = http::Request::builder()
        .method("POST")
        .uri(route)
        .header(header, signature)
        .body(Bytes::copy_from_slice(body))
        .expect("request");
    let handled = ingress.handle_request(request).await;
    let outcomes = queue
        .messages()
        .iter()
        .map(|m| {
            let envelope = Envelope::decode(m.body()).expect("our envelope");
            let event = BotEvent::from_envelope(envelope.clone(), tokio::time::Instant::now());
            Outcome {
                key: envelope.key,
                conversation: envelope.conversation,
                timestamp: envelope.timestamp,
                bytes: envelope.event.get().to_owned(),
                unreadable: matches!(event.kind, BotEventKind::Unreadable { .. }),
                typed: format!("{:?}", event.kind),
            }
        })
        .collect();
    (handled.response.status().as_u16(), outcomes)
}

fn typed(outcome: &[Outcome], index: usize) -> &Outcome {
    &outcome[index]
}

fn line_events(body: &[u8]) -> Vec<Result<line::Event, serde_json::Error>> {
    line::Callback::parse(body)
        .expect("envelope")
        .events()
        .map(|p| p.event)
        .collect()
}

#[tokio::test]
async fn line_events_the_sdks_parse_are_typed_and_none_costs_the_others() {
    let (status, outcomes) = send("/line", LINE_TOLERANCE).await;
    assert_eq!(status, 200);
    assert_eq!(outcomes.len(), 11, "every event queued");
    let events = line_events(LINE_TOLERANCE);

    // Before webhookEventId and deliveryContext existed: typed, keyed by its content.
    let old = events[0].as_ref().expect("typed");
    assert_eq!(old.webhook_event_id, None);
    assert!(!old.is_redelivery());
    assert!(typed(&outcomes, 0).key.starts_with("line:h:"));
    assert!(
        matches!(&old.message().map(|m| &m.content), Some(MessageContent::Text(t)) if t.text.as_deref() == Some("an event from before webhookEventId"))
    );
    // Without mode: typed, not standby.
    let follow = events[1].as_ref().expect("typed");
    assert_eq!(follow.mode, None);
    assert!(!follow.is_standby());
    assert!(matches!(follow.kind, EventKind::Follow(_)));
    // An unknown type with only `type` and a new field: Unknown, not unreadable.
    let brand_new = events[2].as_ref().expect("typed");
    assert!(
        matches!(&brand_new.kind, EventKind::Unknown(u) if u.kind == "brandNew" && u.raw["great"] == "new-field")
    );
    assert_eq!(typed(&outcomes, 2).conversation, format!("line:{BOT}"));
    // An image without contentProvider: on LINE's servers, with its markAsReadToken.
    let image = events[3]
        .as_ref()
        .expect("typed")
        .message()
        .expect("message");
    assert!(matches!(&image.content, MessageContent::Image(i) if i.content_provider.is_none()));
    assert!(image.is_on_line());
    assert_eq!(image.mark_as_read_token(), Some("mr-image"));
    // messageEdited in a group, the bot mentioned by isSelf.
    let edited = events[4].as_ref().expect("typed");
    assert!(matches!(edited.kind, EventKind::MessageEdited(_)));
    assert!(edited.mentions_bot(Some(BOT)));
    assert_eq!(
        edited.message().and_then(|m| m.mark_as_read_token()),
        Some("mr-edited")
    );
    // `things` events were retired: kept as Unknown.
    assert!(
        matches!(&events[5].as_ref().expect("typed").kind, EventKind::Unknown(u) if u.kind == "things")
    );
    // Numbers and flags given as strings read the same in the ingress and the typed view.
    let location = events[6].as_ref().expect("typed");
    assert_eq!(location.timestamp, Some(1_700_000_000_007));
    assert_eq!(typed(&outcomes, 6).timestamp, Some(1_700_000_000_007));
    assert!(location.is_redelivery());
    assert!(matches!(&location.message().map(|m| &m.content),
        Some(MessageContent::Location(l)) if l.latitude == Some(35.65910807942215) && l.longitude == Some(139.70372892916203)));
    // A postback without data; a room without roomId keeps the event; standby read.
    let postback = events[7].as_ref().expect("typed");
    assert!(postback.is_standby());
    assert!(
        matches!(&postback.kind, EventKind::Postback(p) if p.data.is_none()
        && p.params.as_ref().and_then(|p| p.date.as_deref()) == Some("2026-11-21"))
    );
    assert_eq!(typed(&outcomes, 7).conversation, format!("line:{BOT}"));
    // An unsend without its object.
    assert!(
        matches!(&events[8].as_ref().expect("typed").kind, EventKind::Unsend(u) if u.message_id.is_none())
    );
    // The only unreadable ones: no type, not an object; queued all the same.
    assert!(events[9].is_err() && events[10].is_err());
    assert!(typed(&outcomes, 9).unreadable && typed(&outcomes, 10).unreadable);
    assert_eq!(outcomes.iter().filter(|o| o.unreadable).count(), 2);
}

#[tokio::test]
async fn a_line_body_without_destination_is_accepted() {
    let body = br#"{"events":[{"type":"follow","timestamp":1,"webhookEventId":"01JNODEST","source":{"type":"user","userId":"U1"}}]}"#;
    let (status, outcomes) = send("/line", body).await;
    assert_eq!(status, 200);
    assert_eq!(outcomes[0].key, "line:01JNODEST");
    assert_eq!(outcomes[0].conversation, "line::user:U1");
    assert!(outcomes[0].typed.contains("destination: None"));
}

fn whatsapp_items() -> Vec<(shared::meta::Change, String, String)> {
    let notification = shared::meta::Notification::parse(WHATSAPP).expect("envelope");
    notification
        .items()
        .map(|item| {
            let head = item.head();
            match item.typed() {
                Ok(Item::Change(change)) => (change, head.key, head.conversation),
                other => panic!("{other:?}"),
            }
        })
        .collect()
}

fn message_of(change: &shared::meta::Change) -> &shared::meta::WhatsAppMessage {
    match &change.value {
        ChangeValue::WhatsApp(value) => &value.messages[0],
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn every_whatsapp_message_type_and_status_is_typed() {
    let (status, outcomes) = send("/meta", WHATSAPP).await;
    assert_eq!(status, 200);
    assert_eq!(outcomes.len(), 35);
    assert!(outcomes.iter().all(|o| !o.unreadable));
    let items = whatsapp_items();
    let types: Vec<String> = items
        .iter()
        .take(26)
        .map(|(c, _, _)| message_of(c).content.type_name().to_owned())
        .collect();
    assert_eq!(
        types,
        [
            "text",
            "image",
            "video",
            "audio",
            "document",
            "sticker",
            "location",
            "contacts",
            "interactive",
            "interactive",
            "interactive",
            "interactive",
            "interactive",
            "button",
            "reaction",
            "reaction",
            "order",
            "system",
            "system",
            "revoke",
            "edit",
            "unsupported",
            "request_welcome",
            "text",
            "text",
            "hologram"
        ]
    );
    let phone = "meta:wa:106540352242922:16505551234";
    let text = message_of(&items[0].0);
    assert_eq!(
        text.from_user_id.as_deref(),
        Some("US.13491208655302741918")
    );
    assert_eq!(
        (items[0].1.as_str(), items[0].2.as_str()),
        ("meta:wa:wamid.TEXT", phone)
    );
    assert!(
        matches!(&message_of(&items[3].0).content, WhatsAppContent::Audio(a) if a.voice == Some(true))
    );
    assert!(
        matches!(&message_of(&items[5].0).content, WhatsAppContent::Sticker(s) if s.animated == Some(true))
    );
    assert!(matches!(&message_of(&items[6].0).content,
        WhatsAppContent::Location(l) if l.latitude == Some(37.48380227178572) && l.longitude == Some(-122.14892356546709)));
    let interactive = |i: usize| match &message_of(&items[i].0).content {
        WhatsAppContent::Interactive(interactive) => interactive.clone(),
        other => panic!("{other:?}"),
    };
    assert!(matches!(interactive(8), Interactive::ButtonReply { id: Some(id), .. } if id == "yes"));
    assert!(
        matches!(interactive(9), Interactive::ListReply { description: Some(d), .. } if d == "Next day")
    );
    assert!(
        matches!(interactive(10), Interactive::NfmReply { response_json: Some(j), .. } if j.contains("flow_token"))
    );
    assert!(
        matches!(interactive(11), Interactive::CallPermissionReply { response: Some(r), expiration_timestamp: Some(1_750_021_194), .. } if r == "accept")
    );
    // An interactive message without its object (error 131000): a message carrying its error.
    assert!(matches!(interactive(12), Interactive::Unknown(u) if u.kind.is_empty()));
    let ChangeValue::WhatsApp(with_error) = &items[12].0.value else {
        panic!()
    };
    assert_eq!(with_error.errors[0].code, Some(131000));
    assert_eq!(items[12].1, "meta:wa:wamid.INTERACTIVE_ERR");
    assert!(
        matches!(&message_of(&items[15].0).content, WhatsAppContent::Reaction(r) if r.emoji.is_none())
    );
    assert!(matches!(&message_of(&items[16].0).content,
        WhatsAppContent::Order(o) if o.product_items[0].quantity == Some(2) && o.product_items[0].item_price == Some(30.0)));
    assert!(matches!(&message_of(&items[17].0).content,
        WhatsAppContent::System(s) if s.kind == Some(SystemKind::UserChangedNumber) && s.wa_id.as_deref() == Some("12195555358")));
    assert_eq!(
        items[17].2, phone,
        "a system message without contacts keeps its conversation"
    );
    assert!(matches!(&message_of(&items[18].0).content,
        WhatsAppContent::System(s) if s.kind == Some(SystemKind::CustomerIdentityChanged) && s.identity.is_some()));
    assert!(matches!(&message_of(&items[19].0).content,
        WhatsAppContent::Revoke(r) if r.original_message_id.as_deref() == Some("wamid.TEXT")));
    assert!(matches!(&message_of(&items[20].0).content,
        WhatsAppContent::Edit(e) if e.original_message_id.as_deref() == Some("wamid.TEXT")
            && e.message.as_ref().is_some_and(|m| matches!(&m.content, WhatsAppContent::Text(t) if t.body.as_deref() == Some("Does it come in red?")))));
    let unsupported = message_of(&items[21].0);
    assert!(
        matches!(&unsupported.content, WhatsAppContent::Unsupported(u) if u.kind.as_deref() == Some("poll"))
    );
    assert_eq!(unsupported.errors[0].code, Some(131051));
    assert_eq!(
        message_of(&items[22].0).content,
        WhatsAppContent::RequestWelcome
    );
    assert!(
        message_of(&items[23].0)
            .referral
            .as_ref()
            .is_some_and(|r| r.source_type.as_deref() == Some("ad"))
    );
    // A username user: no phone number anywhere; the conversation is their business-scoped id.
    let username = message_of(&items[24].0);
    assert_eq!(
        (username.from.as_deref(), username.sender()),
        (None, Some("JP.208273645019283"))
    );
    assert_eq!(items[24].2, "meta:wa:106540352242922:JP.208273645019283");
    assert_eq!(
        items[24].1, "meta:wa:wamid.USERNAME",
        "keyed by the message id, phone or not"
    );
    let ChangeValue::WhatsApp(username_value) = &items[24].0.value else {
        panic!()
    };
    let contact = username_value
        .contact_of(None, username.from_user_id.as_deref())
        .expect("contact");
    assert_eq!(
        contact.profile.as_ref().and_then(|p| p.username.as_deref()),
        Some("@jun.travels")
    );
    assert_eq!(contact.parent_user_id.as_deref(), Some("JP.ENT.9182736450"));
    assert!(
        matches!(&message_of(&items[25].0).content, WhatsAppContent::Unknown(u) if u.kind == "hologram")
    );

    let status_of = |i: usize| match &items[i].0.value {
        ChangeValue::WhatsApp(value) => value.statuses[0].clone(),
        other => panic!("{other:?}"),
    };
    let sent = status_of(26);
    assert_eq!(sent.status, Some(StatusKind::Sent));
    assert_eq!(
        sent.pricing.as_ref().and_then(|p| p.pricing_model.clone()),
        Some(PricingModel::PerMessage)
    );
    assert_eq!(
        sent.conversation, None,
        "per-message pricing sends no conversation"
    );
    assert_eq!(items[26].1, "meta:wa:wamid.SENT1:sent");
    assert!(
        status_of(27)
            .conversation
            .is_some_and(|c| c.expiration_timestamp == Some(1_749_502_810))
    );
    assert_eq!(status_of(28).status, Some(StatusKind::Read));
    assert_eq!(status_of(29).status, Some(StatusKind::Played));
    let failed = status_of(30);
    assert_eq!(
        (failed.status, failed.errors[0].code),
        (Some(StatusKind::Failed), Some(131047))
    );
    assert_eq!(
        items[30].2, phone,
        "a failed status without contacts keeps its conversation"
    );
    assert_eq!(status_of(31).recipient(), Some("JP.208273645019283"));
    assert_eq!(items[31].2, "meta:wa:106540352242922:JP.208273645019283");
    assert_eq!(status_of(32).recipient_type.as_deref(), Some("group"));
    assert!(
        matches!(&items[33].0.value, ChangeValue::UserPreferences(p) if p.user_preferences[0].value.as_deref() == Some("stop"))
    );
    assert!(
        matches!(&items[34].0.value, ChangeValue::UserIdUpdate(u) if u.user_id_update.len() == 1)
    );
    // Every message and status is one event with its own key.
    let mut keys: Vec<&String> = items.iter().map(|(_, k, _)| k).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), items.len());
}

#[tokio::test]
async fn meta_items_with_odd_or_missing_fields_are_typed() {
    let body = br#"{"object":"page","entry":[{"id":"P","time":"1700000000000","messaging":[
        {"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":"1700000000001","message":{"mid":"m_1","text":"string timestamp"}},
        {"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":2,"message":"TEST_MESSAGE"},
        {"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":3,"reaction":{"mid":"m_1"}},
        {"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":4,"message_edit":{"mid":"m_1","text":"no number"}},
        {"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":5,"delivery":{}},
        {"sender":{"id":1234},"recipient":{"id":"P"},"timestamp":6.0,"read":{"watermark":"5"}}
    ]}]}"#;
    let (status, outcomes) = send("/meta", body).await;
    assert_eq!(status, 200);
    assert!(outcomes.iter().all(|o| !o.unreadable), "{outcomes:#?}");
    assert_eq!(
        outcomes[0].timestamp,
        Some(1_700_000_000_001),
        "the ingress reads it too"
    );
    let notification = shared::meta::Notification::parse(body).expect("envelope");
    let kinds: Vec<MessagingKind> = notification
        .items()
        .map(|i| match i.typed() {
            Ok(Item::Messaging(e)) => e.kind,
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(matches!(&kinds[2], MessagingKind::Reaction(r) if r.action.is_none()));
    assert!(matches!(&kinds[3], MessagingKind::MessageEdit(e) if e.num_edit.is_none()));
    assert!(matches!(&kinds[4], MessagingKind::Delivery(d) if d.watermark.is_none()));
    assert!(matches!(&kinds[5], MessagingKind::Read(r) if r.watermark == Some(5)));
    assert_eq!(outcomes[5].conversation, "meta:P:1234");
}

/// Every path to a field inside `value`, as object keys and array indices.
fn field_paths(value: &Value, prefix: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    match value {
        Value::Object(map) => {
            for (name, inner) in map {
                prefix.push(PathStep::Key(name.clone()));
                out.push(prefix.clone());
                field_paths(inner, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (index, inner) in items.iter().enumerate() {
                prefix.push(PathStep::Index(index));
                field_paths(inner, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone, PartialEq)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn remove(value: &mut Value, path: &[PathStep]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = value;
    for step in parents {
        at = match (step, at) {
            (PathStep::Key(k), Value::Object(map)) => match map.get_mut(k) {
                Some(v) => v,
                None => return,
            },
            (PathStep::Index(i), Value::Array(items)) => match items.get_mut(*i) {
                Some(v) => v,
                None => return,
            },
            _ => return,
        };
    }
    if let (PathStep::Key(k), Value::Object(map)) = (last, at) {
        map.remove(k);
    }
}

/// The events of a body: their paths from the body's root (LINE `events[i]`; Meta each item of
/// each entry's lists).
fn event_roots(route: &str, body: &Value) -> Vec<Vec<PathStep>> {
    let mut roots = Vec::new();
    if route == "/line" {
        for i in 0..body["events"].as_array().map_or(0, Vec::len) {
            roots.push(vec![PathStep::Key("events".into()), PathStep::Index(i)]);
        }
    } else {
        for (e, entry) in body["entry"].as_array().into_iter().flatten().enumerate() {
            for list in ["messaging", "standby", "changes"] {
                for i in 0..entry[list].as_array().map_or(0, Vec::len) {
                    roots.push(vec![
                        PathStep::Key("entry".into()),
                        PathStep::Index(e),
                        PathStep::Key(list.into()),
                        PathStep::Index(i),
                    ]);
                }
            }
        }
    }
    roots
}

fn get<'v>(value: &'v Value, path: &[PathStep]) -> &'v Value {
    path.iter().fold(value, |at, step| match step {
        PathStep::Key(k) => &at[k.as_str()],
        PathStep::Index(i) => &at[*i],
    })
}

/// The property, for one body and a set of fields of one event removed: the request is still
/// accepted with all its events; every other event's outcome is the same; the event itself is
/// typed, unless its LINE `type` went (or it was never an object).
async fn check_deletions(
    name: &str,
    route: &str,
    base: &Value,
    base_outcomes: &[Outcome],
    event: usize,
    root: &[PathStep],
    paths: &[Vec<PathStep>],
) -> Result<(), String> {
    let mut changed = base.clone();
    for path in paths {
        let full: Vec<PathStep> = root.iter().cloned().chain(path.iter().cloned()).collect();
        remove(&mut changed, &full);
    }
    let body = serde_json::to_vec(&changed).map_err(|e| e.to_string())?;
    let (status, outcomes) = send(route, &body).await;
    let what = || format!("{name}: event {event} without {paths:?}");
    if status != 200 || outcomes.len() != base_outcomes.len() {
        return Err(format!(
            "{}: status {status}, {} events",
            what(),
            outcomes.len()
        ));
    }
    for (i, (before, after)) in base_outcomes.iter().zip(&outcomes).enumerate() {
        if i != event && before != after {
            return Err(format!(
                "{}: event {i} changed: {before:?} -> {after:?}",
                what()
            ));
        }
    }
    let lost_type = route == "/line" && paths.iter().any(|p| p == &[PathStep::Key("type".into())]);
    if outcomes[event].unreadable && !lost_type && !base_outcomes[event].unreadable {
        return Err(format!(
            "{}: became unreadable: {}",
            what(),
            outcomes[event].typed
        ));
    }
    Ok(())
}

/// The project's own bodies (and the peer corpus where it is present), re-serialised so that
/// a body and its variants differ only by what was removed.
fn bodies() -> Vec<(String, &'static str, Value)> {
    let mut bodies: Vec<(String, &'static str, Value)> = [
        ("line-tolerance", "/line", LINE_TOLERANCE),
        ("line-every-event", "/line", LINE_EVERY_EVENT),
        ("whatsapp-every-type", "/meta", WHATSAPP),
        ("meta-messenger", "/meta", MESSENGER),
        ("meta-instagram", "/meta", INSTAGRAM),
        ("meta-whatsapp", "/meta", META_WHATSAPP),
    ]
    .into_iter()
    .map(|(n, r, b)| {
        (
            n.to_owned(),
            r,
            serde_json::from_slice(b).expect("fixture JSON"),
        )
    })
    .collect();
    let peers =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/peers");
    if let Ok(manifest) = std::fs::read(peers.join("manifest.json")) {
        let manifest: Value = serde_json::from_slice(&manifest).expect("manifest");
        for fixture in manifest["fixtures"].as_array().into_iter().flatten() {
            let file = fixture["file"].as_str().unwrap_or_default();
            let route = if fixture["route"] == "/line" {
                "/line"
            } else {
                "/meta"
            };
            if let Ok(bytes) = std::fs::read(peers.join(file))
                && let Ok(value) = serde_json::from_slice(&bytes)
            {
                bodies.push((format!("peer {file}"), route, value));
            }
        }
    } else {
        eprintln!(
            "the peer corpus is absent: deleting fields from the project's own fixtures only"
        );
    }
    bodies
}

#[tokio::test]
async fn deleting_any_field_of_any_event_never_fails_the_request_nor_touches_the_others() {
    let mut cases = 0;
    let mut failures = Vec::new();
    for (name, route, base) in bodies() {
        let body = serde_json::to_vec(&base).expect("JSON");
        let (status, base_outcomes) = send(route, &body).await;
        assert_eq!(status, 200, "{name} itself");
        for (event, root) in event_roots(route, &base).iter().enumerate() {
            let mut paths = Vec::new();
            field_paths(get(&base, root), &mut Vec::new(), &mut paths);
            for path in paths {
                cases += 1;
                if let Err(failure) =
                    check_deletions(&name, route, &base, &base_outcomes, event, root, &[path]).await
                {
                    failures.push(failure);
                }
            }
        }
    }
    println!("{cases} single-field deletions");
    assert!(cases > 1000, "a real sweep: {cases}");
    assert!(
        failures.is_empty(),
        "{} of {cases} deletions broke the rule:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// Several fields of one event at once, at random.
    #[test]
    fn deleting_several_fields_at_once_never_fails_the_request(
        body_pick in any::<prop::sample::Index>(),
        event_pick in any::<prop::sample::Index>(),
        field_picks in prop::collection::vec(any::<prop::sample::Index>(), 1..6),
    ) {
        let bodies = bodies();
        let (name, route, base) = &bodies[body_pick.index(bodies.len().min(6))];
        let roots = event_roots(route, base);
        prop_assume!(!roots.is_empty());
        let event = event_pick.index(roots.len());
        let mut paths = Vec::new();
        field_paths(get(base, &roots[event]), &mut Vec::new(), &mut paths);
        prop_assume!(!paths.is_empty());
        let chosen: Vec<Vec<PathStep>> = field_picks.iter().map(|p| paths[p.index(paths.len())].clone()).collect();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
        let result = runtime.block_on(async {
            let body = serde_json::to_vec(base).expect("JSON");
            let (_, base_outcomes) = send(route, &body).await;
            check_deletions(name, route, base, &base_outcomes, event, &roots[event], &chosen).await
        });
        prop_assert!(result.is_ok(), "{}", result.err().unwrap_or_default());
    }
}

/// Issue 15: serde reads a struct from a JSON array by position, so an event (or item) that was
/// an array took its first element as `webhookEventId` (or `mid`): the content became the
/// deduplication key, was logged with it, and two different arrays with the same first element
/// were deduplicated as one. An event that is not an object has no id, keys by its hash, and is
/// unreadable, like a string or a number.
#[tokio::test]
async fn events_that_are_arrays_have_no_id_and_never_share_a_key() {
    let secret = "4111 1111 1111 1111";
    let line = serde_json::json!({"destination": BOT, "events": [
        [secret, 1], [secret, 2], {"type": "follow", "webhookEventId": secret}
    ]});
    let (status, outcomes) = send("/line", line.to_string().as_bytes()).await;
    assert_eq!(status, 200);
    assert_eq!(outcomes.len(), 3);
    assert!(
        outcomes[0].key.starts_with("line:h:"),
        "{}",
        outcomes[0].key
    );
    assert_ne!(outcomes[0].key, outcomes[1].key);
    assert!(outcomes[0].unreadable && outcomes[1].unreadable);
    assert!(!outcomes[0].key.contains(secret) && !outcomes[1].key.contains(secret));
    assert!(!outcomes[2].unreadable, "an object keeps its id");

    let messaging =
        |n: i64| serde_json::json!([{"id": "p1"}, {"id": "p2"}, n, {"mid": secret, "text": "x"}]);
    let meta = serde_json::json!({"object": "page", "entry": [{"id": "p2", "time": 1,
        "messaging": [messaging(1), messaging(2)]}]});
    let (status, outcomes) = send("/meta", meta.to_string().as_bytes()).await;
    assert_eq!(status, 200);
    assert_eq!(outcomes.len(), 2);
    assert_ne!(outcomes[0].key, outcomes[1].key);
    for outcome in &outcomes {
        assert!(outcome.unreadable, "{}", outcome.typed);
        assert!(!outcome.key.contains(secret), "{}", outcome.key);
    }
}
