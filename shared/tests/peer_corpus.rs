//! The official LINE SDKs' and widely used Meta libraries' own webhook bodies, from their test
//! suites, through the ingress and the typed models: 142 bodies with 247 events in
//! `../shared/fixtures/peers` (beside the project; not copied into it), each checked against the
//! facts its manifest states (status, events queued, and per event the type, ids, text, mentions,
//! postback params, emoji, coordinates exactly, keys and conversations), and what a destination
//! receives for each (the event's bytes in the document, a routing type naming the same type).
//!
//! Where that folder is absent (a user's machine), the test says it is skipped and why.
//! `GATEWAY_PEER_FIXTURES` points at another copy.

use bytes::Bytes;
use serde_json::{Map, Value, json};
use shared::adapters::memory::MemoryQueue;
use shared::bot::{BotEvent, BotEventKind};
use shared::envelope::Envelope;
use shared::ingress::{Ingress, IngressConfig};
use shared::line::{self, EventKind, MentionTarget, MessageContent, Source};
use shared::meta::{self, Attachment, ChangeValue, Item, MessagingKind, WhatsAppContent};
use shared::signature::{sign_line, sign_meta};
use std::path::PathBuf;
use std::sync::Arc;

const LINE_SECRET: &str = "peer-line-secret";
const META_SECRET: &str = "peer-meta-secret";

fn peers() -> Option<PathBuf> {
    let folder = std::env::var_os("GATEWAY_PEER_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/peers")
        });
    if folder.join("manifest.json").is_file() {
        Some(folder)
    } else {
        eprintln!(
            "skipped: the peer corpus is not at {} (it sits beside the project in the \
             development workspace; set GATEWAY_PEER_FIXTURES to a copy)",
            folder.display()
        );
        None
    }
}

/// What the typed view and the envelope say about one LINE event, named as the manifest names it.
fn line_facts(
    envelope: &Envelope,
    destination: Option<&str>,
    event: &line::Event,
) -> Map<String, Value> {
    let mut facts = Map::new();
    let mut put = |name: &str, value: Value| {
        facts.insert(name.to_owned(), value);
    };
    put("type", json!(event.kind.type_name()));
    put(
        "unknown_event",
        json!(matches!(event.kind, EventKind::Unknown(_))),
    );
    put("mode", json!(event.mode.as_ref().map(|m| m.as_str())));
    put("reply_token", json!(event.reply_token()));
    put("webhook_event_id", json!(event.webhook_event_id));
    put("is_redelivery", json!(event.is_redelivery()));
    put("timestamp", json!(event.timestamp));
    put("key", json!(envelope.key));
    put("conversation", json!(envelope.conversation));
    put("mentions_bot", json!(event.mentions_bot(destination)));
    // The SDKs type a source of another type as "unknown"; the model keeps its own type name.
    put(
        "source_type",
        json!(event.source.as_ref().map(|s| match s {
            Source::Unknown(_) => "unknown",
            other => other.type_name(),
        })),
    );
    put(
        "source_user_id",
        json!(event.source.as_ref().and_then(Source::user_id)),
    );
    if let Some(Source::Group { group_id, .. }) = &event.source {
        put("source_group_id", json!(group_id));
    }
    if let Some(Source::Room { room_id, .. }) = &event.source {
        put("source_room_id", json!(room_id));
    }
    if let Some(message) = event.message() {
        put("message_type", json!(message.type_name()));
        put(
            "unknown_message",
            json!(matches!(message.content, MessageContent::Unknown(_))),
        );
        put("message_id", json!(message.id));
        put("quote_token", json!(message.quote_token()));
        put(
            "content_provider",
            json!(
                message
                    .content_provider()
                    .and_then(|p| p.kind.as_ref())
                    .map(|k| k.as_str())
            ),
        );
        match &message.content {
            MessageContent::Text(text) => {
                put("text", json!(text.text));
                put(
                    "emojis",
                    json!(
                        text.emojis
                            .iter()
                            .map(|e| json!([e.index, e.length, e.product_id, e.emoji_id]))
                            .collect::<Vec<_>>()
                    ),
                );
                put(
                    "mentionees",
                    match &text.mention {
                        None => Value::Null,
                        Some(mention) => json!(
                            mention
                                .mentionees
                                .iter()
                                .map(|m| match &m.target {
                                    MentionTarget::User { user_id, is_self } =>
                                        json!(["user", user_id, is_self]),
                                    other => json!([other.type_name(), null, null]),
                                })
                                .collect::<Vec<_>>()
                        ),
                    },
                );
            }
            MessageContent::Image(image) => put(
                "image_set",
                json!(
                    image
                        .image_set
                        .as_ref()
                        .map(|s| json!([s.id, s.index, s.total]))
                ),
            ),
            MessageContent::Video(video) => put("duration", json!(video.duration)),
            MessageContent::Audio(audio) => put("duration", json!(audio.duration)),
            MessageContent::File(file) => {
                put("file_name", json!(file.file_name));
                put("file_size", json!(file.file_size));
            }
            MessageContent::Location(location) => {
                put("latitude", json!(location.latitude));
                put("longitude", json!(location.longitude));
                put("location_title", json!(location.title));
                put("location_address", json!(location.address));
            }
            MessageContent::Sticker(sticker) => {
                put("sticker_id", json!(sticker.sticker_id));
                put("sticker_package_id", json!(sticker.package_id));
                put(
                    "sticker_resource_type",
                    json!(sticker.sticker_resource_type.as_ref().map(|t| t.as_str())),
                );
                put("sticker_keywords", json!(sticker.keywords));
                put("sticker_text", json!(sticker.text));
            }
            MessageContent::Unknown(_) => {}
        }
    }
    match &event.kind {
        EventKind::Unsend(unsend) => put("unsend_message_id", json!(unsend.message_id)),
        EventKind::Follow(follow) => put("follow_is_unblocked", json!(follow.is_unblocked)),
        EventKind::MemberJoined(members) | EventKind::MemberLeft(members) => put(
            "members",
            json!(
                members
                    .members
                    .iter()
                    .map(Source::user_id)
                    .collect::<Vec<_>>()
            ),
        ),
        EventKind::Postback(postback) => {
            put("postback_data", json!(postback.data));
            let mut params = Map::new();
            let present = postback.params.is_some();
            if let Some(p) = &postback.params {
                let named = [
                    ("date", p.date.clone()),
                    ("time", p.time.clone()),
                    ("datetime", p.datetime.clone()),
                    ("newRichMenuAliasId", p.new_rich_menu_alias_id.clone()),
                    ("status", p.status.as_ref().map(|s| s.as_str().to_owned())),
                ];
                for (name, value) in named {
                    if let Some(value) = value {
                        params.insert(name.into(), json!(value));
                    }
                }
                for (name, value) in &p.other {
                    params.insert(name.clone(), value.clone());
                }
            }
            put(
                "postback_params",
                if present {
                    Value::Object(params)
                } else {
                    Value::Null
                },
            );
        }
        EventKind::VideoPlayComplete(video) => put("tracking_id", json!(video.tracking_id)),
        EventKind::Beacon(beacon) => {
            put("beacon_hwid", json!(beacon.hwid));
            put(
                "beacon_type",
                json!(beacon.kind.as_ref().map(|k| k.as_str())),
            );
            put("beacon_dm", json!(beacon.dm));
        }
        EventKind::AccountLink(link) => {
            put(
                "link_result",
                json!(link.result.as_ref().map(|r| r.as_str())),
            );
            put("link_nonce", json!(link.nonce));
        }
        EventKind::Membership(membership) => {
            let (kind, id) = match membership {
                line::Membership::Joined { membership_id } => ("joined", membership_id),
                line::Membership::Left { membership_id } => ("left", membership_id),
                line::Membership::Renewed { membership_id } => ("renewed", membership_id),
                line::Membership::Unknown(_) => ("unknown", &None),
            };
            put("membership_type", json!(kind));
            put("membership_id", json!(id));
        }
        EventKind::Module(module) => {
            let (kind, bot) = match module {
                line::Module::Attached { bot_id, .. } => ("attached", bot_id.clone()),
                line::Module::Detached { bot_id, .. } => ("detached", bot_id.clone()),
                line::Module::Unknown(_) => ("unknown", None),
            };
            put("module_type", json!(kind));
            put("module_bot_id", json!(bot));
        }
        EventKind::Activated(control) => put("expire_at", json!(control.expire_at)),
        EventKind::Delivery(delivery) => put("delivery_data", json!(delivery.data)),
        _ => {}
    }
    facts
}

/// What the typed view and the envelope say about one Meta item.
fn meta_facts(envelope: &Envelope, item: &Item) -> Map<String, Value> {
    let mut facts = Map::new();
    let mut put = |name: &str, value: Value| {
        facts.insert(name.to_owned(), value);
    };
    put("key", json!(envelope.key));
    put("conversation", json!(envelope.conversation));
    if let Some(context) = &envelope.meta {
        put("list", json!(context.list.as_str()));
    }
    match item {
        Item::Messaging(event) => {
            put("kind", json!(event.kind.field_name()));
            put(
                "sender_id",
                json!(event.sender.as_ref().and_then(|p| p.id.as_deref())),
            );
            put(
                "recipient_id",
                json!(event.recipient.as_ref().and_then(|p| p.id.as_deref())),
            );
            put("timestamp", json!(event.timestamp));
            put("incoming_text", json!(event.incoming_text()));
            match &event.kind {
                MessagingKind::Message(message) => {
                    put("mid", json!(message.mid));
                    put("text", json!(message.text));
                    put("is_echo", json!(message.is_echo));
                    put("is_deleted", json!(message.is_deleted));
                    put(
                        "attachments",
                        json!(
                            message
                                .attachments
                                .iter()
                                .map(Attachment::type_name)
                                .collect::<Vec<_>>()
                        ),
                    );
                    put(
                        "attachment_urls",
                        json!(
                            message
                                .attachments
                                .iter()
                                .filter_map(Attachment::url)
                                .collect::<Vec<_>>()
                        ),
                    );
                    let coordinates = message.attachments.iter().find_map(|a| match a {
                        Attachment::Location(l) => {
                            l.coordinates.as_ref().map(|c| json!([c.lat, c.long]))
                        }
                        _ => None,
                    });
                    put("coordinates", json!(coordinates));
                    put(
                        "quick_reply_payload",
                        json!(
                            message
                                .quick_reply
                                .as_ref()
                                .and_then(|q| q.payload.as_deref())
                        ),
                    );
                }
                MessagingKind::Postback(postback) => {
                    put("mid", json!(postback.mid));
                    put("postback_payload", json!(postback.payload));
                    put("postback_title", json!(postback.title));
                }
                MessagingKind::Delivery(delivery) => {
                    put("delivery_mids", json!(delivery.mids));
                    put("delivery_watermark", json!(delivery.watermark));
                }
                MessagingKind::Read(read) => put("read_watermark", json!(read.watermark)),
                MessagingKind::Optin(optin) => {
                    put("optin_ref", json!(optin.reference));
                    put("optin_user_ref", json!(optin.user_ref));
                }
                MessagingKind::Referral(referral) => {
                    put("referral_ref", json!(referral.reference));
                    put("referral_source", json!(referral.source));
                    put("referral_type", json!(referral.kind));
                }
                MessagingKind::AccountLinking(linking) => {
                    put(
                        "account_linking_status",
                        json!(linking.status.as_ref().map(|s| s.as_str())),
                    );
                    put("authorization_code", json!(linking.authorization_code));
                }
                _ => {}
            }
        }
        Item::Change(change) => {
            put("field", json!(change.field));
            put(
                "whatsapp",
                json!(matches!(change.value, ChangeValue::WhatsApp(_))),
            );
            if let ChangeValue::WhatsApp(value) = &change.value {
                put(
                    "phone_number_id",
                    json!(
                        value
                            .metadata
                            .as_ref()
                            .and_then(|m| m.phone_number_id.as_deref())
                    ),
                );
                put(
                    "wa_messages",
                    json!(
                        value
                            .messages
                            .iter()
                            .map(|m| json!([m.id, m.from, m.content.type_name()]))
                            .collect::<Vec<_>>()
                    ),
                );
                put(
                    "wa_statuses",
                    json!(
                        value
                            .statuses
                            .iter()
                            .map(|s| json!([
                                s.id,
                                s.status.as_ref().map(|k| k.as_str()),
                                s.recipient_id
                            ]))
                            .collect::<Vec<_>>()
                    ),
                );
                put(
                    "wa_contacts",
                    json!(
                        value
                            .contacts
                            .iter()
                            .map(|c| c.wa_id.clone())
                            .collect::<Vec<_>>()
                    ),
                );
                if let Some(message) = value.messages.first() {
                    if let Some(context) = &message.context {
                        put(
                            "wa_context",
                            json!([
                                context.from,
                                context.id,
                                context.forwarded,
                                context.frequently_forwarded
                            ]),
                        );
                    }
                    if let Some(media) = message.content.media() {
                        put(
                            "wa_media",
                            json!([
                                media.id,
                                media.mime_type,
                                media.caption,
                                media.voice,
                                media.animated
                            ]),
                        );
                    }
                    match &message.content {
                        WhatsAppContent::Text(text) => put("wa_text_body", json!(text.body)),
                        WhatsAppContent::Location(l) => {
                            put("wa_location", json!([l.latitude, l.longitude, l.name]))
                        }
                        WhatsAppContent::Interactive(interactive) => {
                            let (id, title) = match interactive {
                                meta::Interactive::ButtonReply { id, title }
                                | meta::Interactive::ListReply { id, title, .. } => {
                                    (id.clone(), title.clone())
                                }
                                _ => (None, None),
                            };
                            put(
                                "wa_interactive",
                                json!([interactive.type_name(), id, title]),
                            );
                        }
                        WhatsAppContent::Button(button) => {
                            put("wa_button", json!([button.payload, button.text]))
                        }
                        WhatsAppContent::Reaction(reaction) => {
                            put("wa_reaction", json!([reaction.message_id, reaction.emoji]))
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    facts
}

/// The facts the ingress decides, checked even where the manifest has no typed expectations.
const INGRESS_FACTS: [&str; 4] = ["key", "key_prefix", "conversation", "list"];

/// What a destination receives for a peer event, against the manifest's facts: the document
/// carries the event byte for byte under the envelope's key, and its routing type names the type
/// the SDKs give the event (`line.message.text`, `meta.messenger.postback`, `meta.instagram.comments`,
/// `whatsapp.message.…`).
fn destination_problems(expected: &Value, event: &BotEvent, raw: &str) -> Vec<String> {
    use shared::destinations::{Document, event_type};
    let mut problems = Vec::new();
    let bytes = Document::of(event).to_bytes();
    let text = String::from_utf8_lossy(&bytes);
    if !text.contains(raw) {
        problems.push("the destination document does not carry the event's bytes".to_owned());
    }
    let document: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if document["id"] != json!(event.key) {
        problems.push(format!("document id {} is not the key", document["id"]));
    }
    let got = event_type(event);
    // A fact that names nothing (an item with no event in it) routes as `unknown`.
    let fact = |name: &str| {
        expected[name]
            .as_str()
            .map(|v| if v.is_empty() { "unknown" } else { v })
    };
    let wanted = match event.platform {
        shared::Platform::Line => match (fact("type"), fact("message_type")) {
            (Some("message"), Some(message)) => Some(format!("line.message.{message}")),
            (Some(kind), _) => Some(format!("line.{kind}")),
            _ => None,
        },
        shared::Platform::Meta => {
            let product = match event.meta.as_ref().map(|m| m.object.as_str()) {
                Some("page") => "meta.messenger",
                Some("instagram") => "meta.instagram",
                Some("whatsapp_business_account") => "whatsapp",
                _ => "meta",
            };
            match (fact("kind"), fact("list"), fact("field")) {
                (Some(_), _, _) if expected["is_echo"] == json!(true) => {
                    Some(format!("{product}.echo"))
                }
                (Some(kind), Some("standby"), _) => Some(format!("{product}.standby.{kind}")),
                (Some(kind), _, _) => Some(format!("{product}.{kind}")),
                (None, _, Some("messages")) if product == "whatsapp" => {
                    if !got.starts_with("whatsapp.message.") && !got.starts_with("whatsapp.status.")
                    {
                        problems.push(format!("type {got} for a WhatsApp messages change"));
                    }
                    None
                }
                (None, _, Some(field)) => Some(format!("{product}.{field}")),
                _ => None,
            }
        }
    };
    if let Some(wanted) = wanted
        && got != wanted
    {
        problems.push(format!("destination type {got}, expected {wanted}"));
    }
    problems
}

#[tokio::test]
async fn every_peer_body_is_accepted_queued_byte_for_byte_and_typed_as_its_manifest_says() {
    let Some(folder) = peers() else { return };
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(folder.join("manifest.json")).expect("manifest"))
            .expect("manifest JSON");
    let fixtures = manifest["fixtures"].as_array().expect("fixtures");
    let config = IngressConfig::from_vars(|name| match name {
        "LINE_CHANNEL_SECRET" => Some(LINE_SECRET.into()),
        "META_APP_SECRET" => Some(META_SECRET.into()),
        _ => None,
    })
    .expect("config");
    let mut problems: Vec<String> = Vec::new();
    let (mut bodies, mut events, mut facts_checked) = (0, 0, 0);
    for fixture in fixtures {
        let id = fixture["id"].as_str().unwrap_or("?");
        let body =
            std::fs::read(folder.join(fixture["file"].as_str().expect("file"))).expect("body");
        let expect = &fixture["expect"];
        let typed = expect["typed"].as_bool().unwrap_or(true);
        let queue = Arc::new(MemoryQueue::like_sqs());
        let ingress = Ingress::new(config.clone(), queue.clone());
        let route = fixture["route"].as_str().unwrap_or("/line");
        let (header, signature) = if route == "/line" {
            ("x-line-signature", sign_line(LINE_SECRET, &body))
        } else {
            ("x-hub-signature-256", sign_meta(META_SECRET, &body))
        };
        let request = http::Request::builder()
            .method("POST")
            .uri(route)
            .header(header, signature)
            .body(Bytes::from(body.clone()))
            .expect("request");
        let handled = ingress.handle_request(request).await;
        bodies += 1;
        let status = u64::from(handled.response.status().as_u16());
        if Some(status) != expect["status"].as_u64() {
            problems.push(format!(
                "{id}: status {status}, expected {}",
                expect["status"]
            ));
            continue;
        }
        let messages = queue.messages();
        if Some(messages.len() as u64) != expect["count"].as_u64() {
            problems.push(format!(
                "{id}: {} events queued, expected {}",
                messages.len(),
                expect["count"]
            ));
            continue;
        }
        // The exact bytes of every event, in order.
        let raw: Vec<String> = if route == "/line" {
            let callback = line::Callback::parse(&body).expect("parsed by the ingress");
            if callback.destination.as_deref() != expect["destination"].as_str() {
                problems.push(format!("{id}: destination {:?}", callback.destination));
            }
            callback.events.iter().map(|e| e.get().to_owned()).collect()
        } else {
            let notification = meta::Notification::parse(&body).expect("parsed by the ingress");
            notification
                .items()
                .map(|i| i.raw.get().to_owned())
                .collect()
        };
        let expected_events = expect["events"].as_array().cloned().unwrap_or_default();
        for (index, message) in messages.iter().enumerate() {
            events += 1;
            let envelope = Envelope::decode(message.body()).expect("our envelope");
            if envelope.event.get() != raw[index] {
                problems.push(format!(
                    "{id}[{index}]: the queued event is not the bytes received"
                ));
            }
            let event = BotEvent::from_envelope(envelope.clone(), tokio::time::Instant::now());
            if let Some(expected) = expected_events.get(index) {
                for problem in destination_problems(expected, &event, &raw[index]) {
                    problems.push(format!("{id}[{index}]: {problem}"));
                }
            }
            let facts = match &event.kind {
                BotEventKind::Line { destination, event } => {
                    line_facts(&envelope, destination.as_deref(), event)
                }
                BotEventKind::Meta { item, .. } => meta_facts(&envelope, item),
                BotEventKind::Unreadable { reason } => {
                    problems.push(format!("{id}[{index}]: unreadable: {reason}"));
                    continue;
                }
                other => {
                    problems.push(format!("{id}[{index}]: {other:?}"));
                    continue;
                }
            };
            let Some(expected) = expected_events.get(index).and_then(Value::as_object) else {
                continue;
            };
            for (name, wanted) in expected {
                if !typed && !INGRESS_FACTS.contains(&name.as_str()) {
                    continue;
                }
                facts_checked += 1;
                if name == "key_prefix" {
                    let prefix = wanted.as_str().unwrap_or_default();
                    if !envelope.key.starts_with(prefix) {
                        problems.push(format!(
                            "{id}[{index}]: key {} lacks prefix {prefix}",
                            envelope.key
                        ));
                    }
                    continue;
                }
                let got = facts.get(name).cloned().unwrap_or(Value::Null);
                if &got != wanted {
                    problems.push(format!(
                        "{id}[{index}].{name}: got {got}, expected {wanted}"
                    ));
                }
            }
        }
    }
    println!(
        "peer corpus: {bodies} bodies, {events} events, {facts_checked} facts checked, {} problems",
        problems.len()
    );
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert_eq!((bodies, events), (142, 247), "the whole corpus");
}

/// The peers' bodies on the tenant routes (`shared::tenants`): each is accepted on the URL of a
/// tenant whose channel or app serves its bot, pages, accounts and numbers, every event stamped
/// with that tenant and nothing else changed, and refused on the URL of a tenant signing with the
/// same secret that serves none of them (an app shared by two tenants).
#[tokio::test]
async fn every_peer_body_is_served_on_its_tenants_url_and_refused_on_anothers() {
    let Some(folder) = peers() else { return };
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(folder.join("manifest.json")).expect("manifest"))
            .expect("manifest JSON");
    let (mut checked, mut problems) = (0, Vec::new());
    for fixture in manifest["fixtures"].as_array().expect("fixtures") {
        let expect = &fixture["expect"];
        if expect["status"].as_u64() != Some(200) || expect["count"].as_u64().unwrap_or(0) == 0 {
            continue;
        }
        let id = fixture["id"].as_str().unwrap_or("?");
        let body =
            std::fs::read(folder.join(fixture["file"].as_str().expect("file"))).expect("body");
        let line = fixture["route"].as_str() == Some("/line");
        let registry = if line {
            let Some(bot) = expect["destination"]
                .as_str()
                .filter(|b| shared::signature::is_line_user_id(b))
            else {
                continue; // a sample bot id that is not a LINE user id cannot be registered
            };
            let channel = |bot: &str| json!({"bot_user_id": bot, "channel_secrets": [LINE_SECRET]});
            json!({"own": {"line": channel(bot)},
                   "other": {"line": channel("U00000000000000000000000000000000")}})
        } else {
            let document: Value = serde_json::from_slice(&body).expect("JSON");
            let entries = document["entry"].as_array().cloned().unwrap_or_default();
            let ids: Option<Vec<String>> = entries
                .iter()
                .map(|e| match &e["id"] {
                    Value::String(id) => Some(id.clone()),
                    Value::Number(id) => Some(id.to_string()),
                    _ => None,
                })
                .collect();
            let Some(ids) = ids else { continue }; // an entry without an id belongs to no tenant
            let numbers: Vec<Value> = entries
                .iter()
                .flat_map(|e| e["changes"].as_array().cloned().unwrap_or_default())
                .filter_map(|c| {
                    c["value"]["metadata"]["phone_number_id"]
                        .as_str()
                        .map(Value::from)
                })
                .collect();
            let app = |accounts: Value, numbers: Vec<Value>| {
                json!({"meta": {"apps": [{"app_id": "1", "app_secrets": [META_SECRET],
                    "pages": accounts, "phone_number_ids": numbers}]}})
            };
            json!({"own": app(json!(ids), numbers), "other": app(json!(["999999999999999"]), vec![])})
        };
        let config =
            IngressConfig::from_vars(|name| (name == "TENANTS").then(|| registry.to_string()))
                .expect("registry");
        let post = |tenant: &str| {
            let (platform, header, signature) = if line {
                ("line", "x-line-signature", sign_line(LINE_SECRET, &body))
            } else {
                ("meta", "x-hub-signature-256", sign_meta(META_SECRET, &body))
            };
            http::Request::builder()
                .method("POST")
                .uri(format!("/{platform}/{tenant}"))
                .header(header, signature)
                .body(Bytes::from(body.clone()))
                .expect("request")
        };
        let queue = Arc::new(MemoryQueue::like_sqs());
        let ingress = Ingress::new(config, queue.clone());
        let own = ingress.handle_request(post("own")).await.response.status();
        let queued = queue.drain();
        let stamped = queued.iter().all(|m| {
            let envelope = Envelope::decode(m.body()).expect("envelope");
            envelope.tenant.as_deref() == Some("own") && envelope.key.starts_with("own/")
        });
        if own != 200 || Some(queued.len() as u64) != expect["count"].as_u64() || !stamped {
            problems.push(format!(
                "{id}: on its tenant's URL {own}, {} queued, stamped {stamped}",
                queued.len()
            ));
        }
        let other = ingress
            .handle_request(post("other"))
            .await
            .response
            .status();
        let refused = if line { 401 } else { 403 };
        if other != refused || !queue.messages().is_empty() {
            problems.push(format!(
                "{id}: on another tenant's URL {other}, expected {refused}"
            ));
        }
        checked += 1;
    }
    assert!(checked >= 100, "only {checked} peer bodies checked");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
