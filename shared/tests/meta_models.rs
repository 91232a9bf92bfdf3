//! Meta Messenger, Instagram and WhatsApp payloads read and checked field by field; keys and
//! conversations; unknown kinds kept; one bad item costing nothing else.

use serde_json::value::RawValue;
use shared::meta::*;

const MESSENGER: &[u8] = include_bytes!("fixtures/meta-messenger.json");
const INSTAGRAM: &[u8] = include_bytes!("fixtures/meta-instagram.json");
const WHATSAPP: &[u8] = include_bytes!("fixtures/meta-whatsapp.json");
const PAGE: &str = "106000000000001";
const PSID: &str = "2460000000000001";

fn messaging(body: &[u8]) -> Vec<(MessagingEvent, ItemList)> {
    let notification = Notification::parse(body).expect("envelope");
    notification
        .items()
        .map(|item| match item.typed() {
            Ok(Item::Messaging(event)) => (event, item.list),
            other => panic!("{other:?}: {}", item.raw.get()),
        })
        .collect()
}

#[test]
fn messenger_envelope_and_lists() {
    let notification = Notification::parse(MESSENGER).expect("envelope");
    assert_eq!(notification.object, MetaObject::Page);
    assert_eq!(notification.entries.len(), 2);
    assert_eq!(notification.entries[0].id.as_deref(), Some(PAGE));
    assert_eq!(notification.entries[0].time, Some(1_700_000_000_100));
    assert_eq!(notification.item_count(), 17);
    let lists: Vec<ItemList> = notification.items().map(|i| i.list).collect();
    assert_eq!(lists[..16], [ItemList::Messaging; 16]);
    assert_eq!(lists[16], ItemList::Standby);
}

#[test]
fn every_messenger_event_kind() {
    let events = messaging(MESSENGER);
    let names: Vec<&str> = events.iter().map(|(e, _)| e.kind.field_name()).collect();
    assert_eq!(
        names,
        [
            "message",
            "message",
            "message",
            "postback",
            "delivery",
            "read",
            "reaction",
            "message_edit",
            "optin",
            "referral",
            "account_linking",
            "pass_thread_control",
            "take_thread_control",
            "request_thread_control",
            "app_roles",
            "policy_enforcement",
            "message"
        ]
    );
    let (text, _) = &events[0];
    assert_eq!(
        text.sender.as_ref().and_then(|p| p.id.as_deref()),
        Some(PSID)
    );
    assert_eq!(
        text.recipient.as_ref().and_then(|p| p.id.as_deref()),
        Some(PAGE)
    );
    assert_eq!(text.timestamp, Some(1_700_000_000_001));
    assert_eq!(text.incoming_text(), Some("hello äöå https://x.example/a"));
    let MessagingKind::Message(message) = &text.kind else {
        panic!()
    };
    assert_eq!(message.mid.as_deref(), Some("m_text1"));
    assert_eq!(
        message
            .quick_reply
            .as_ref()
            .and_then(|q| q.payload.as_deref()),
        Some("QR_YES")
    );
    assert_eq!(
        message.reply_to.as_ref().and_then(|r| r.mid.as_deref()),
        Some("m_earlier")
    );
    assert!(!message.is_echo);

    let MessagingKind::Message(with_attachments) = &events[1].0.kind else {
        panic!()
    };
    let types: Vec<&str> = with_attachments
        .attachments
        .iter()
        .map(Attachment::type_name)
        .collect();
    assert_eq!(
        types,
        [
            "image", "video", "audio", "file", "location", "fallback", "template", "ig_reel"
        ]
    );
    assert_eq!(
        with_attachments.attachments[0],
        Attachment::Image(MediaPayload {
            url: Some("https://scontent.example/img.jpg".into()),
            sticker_id: Some("369239263222822".into())
        })
    );
    assert_eq!(
        with_attachments.attachments[3].url(),
        Some("https://scontent.example/f.pdf")
    );
    assert_eq!(
        with_attachments.attachments[4],
        Attachment::Location(LocationPayload {
            coordinates: Some(Coordinates {
                lat: Some(35.6),
                long: Some(139.7)
            })
        })
    );
    assert!(matches!(&with_attachments.attachments[5],
        Attachment::Fallback(f) if f.title.as_deref() == Some("A link")));
    assert!(matches!(&with_attachments.attachments[6],
        Attachment::Template(p) if p["template_type"] == "generic"));
    assert!(matches!(&with_attachments.attachments[7],
        Attachment::Unknown(u) if u.kind == "ig_reel" && u.raw["payload"]["reel_video_id"] == "123"));

    let (echo, _) = &events[2];
    assert_eq!(echo.incoming_text(), None, "echoes are not incoming");
    let MessagingKind::Message(echo_message) = &echo.kind else {
        panic!()
    };
    assert!(echo_message.is_echo);
    assert_eq!(echo_message.app_id.as_deref(), Some("1517776481860111"));
    assert_eq!(echo_message.metadata.as_deref(), Some("bot-sent"));

    let MessagingKind::Postback(postback) = &events[3].0.kind else {
        panic!()
    };
    assert_eq!(postback.payload.as_deref(), Some("GET_STARTED"));
    assert_eq!(postback.title.as_deref(), Some("Get Started"));
    assert_eq!(
        postback
            .referral
            .as_ref()
            .and_then(|r| r.reference.as_deref()),
        Some("campaign-1")
    );

    assert_eq!(
        events[4].0.kind,
        MessagingKind::Delivery(Delivery {
            mids: vec!["m_echo1".into()],
            watermark: Some(1_700_000_000_003)
        })
    );
    assert_eq!(
        events[5].0.kind,
        MessagingKind::Read(Read {
            watermark: Some(1_700_000_000_003)
        })
    );
    assert_eq!(
        events[6].0.kind,
        MessagingKind::Reaction(Reaction {
            mid: Some("m_echo1".into()),
            action: Some(ReactionAction::React),
            reaction: Some("love".into()),
            emoji: Some("\u{2764}\u{fe0f}".into())
        })
    );
    assert_eq!(
        events[7].0.kind,
        MessagingKind::MessageEdit(MessageEdit {
            mid: Some("m_text1".into()),
            text: Some("hello, edited".into()),
            num_edit: Some(1)
        })
    );
    let MessagingKind::Optin(optin) = &events[8].0.kind else {
        panic!()
    };
    assert_eq!(optin.kind.as_deref(), Some("notification_messages"));
    assert_eq!(optin.notification_messages_token.as_deref(), Some("tok"));
    let MessagingKind::Referral(referral) = &events[9].0.kind else {
        panic!()
    };
    assert_eq!(referral.ad_id.as_deref(), Some("6045246247433"));
    assert_eq!(
        events[10].0.kind,
        MessagingKind::AccountLinking(AccountLinking {
            status: Some(LinkingStatus::Linked),
            authorization_code: Some("auth-code".into())
        })
    );
    let MessagingKind::PassThreadControl(pass) = &events[11].0.kind else {
        panic!()
    };
    assert_eq!(pass.new_owner_app_id.as_deref(), Some("123456789"));
    assert_eq!(pass.previous_owner_app_id.as_deref(), Some("987654321"));
    assert!(matches!(&events[12].0.kind,
        MessagingKind::TakeThreadControl(t) if t.metadata.as_deref() == Some("taken")));
    assert!(matches!(&events[13].0.kind,
        MessagingKind::RequestThreadControl(r) if r.requested_owner_app_id.as_deref() == Some("123456789")));
    assert!(matches!(&events[14].0.kind,
        MessagingKind::AppRoles(roles) if roles["123456789"] == ["primary_receiver"]));
    let (policy, _) = &events[15];
    assert!(policy.sender.is_none());
    assert!(
        matches!(&policy.kind, MessagingKind::PolicyEnforcement(p) if p.action.as_deref() == Some("block"))
    );
    assert_eq!(events[16].1, ItemList::Standby);
}

#[test]
fn messenger_keys_and_conversations() {
    let notification = Notification::parse(MESSENGER).expect("envelope");
    let heads: Vec<ItemHead> = notification.items().map(|i| i.head()).collect();
    let conversation = format!("meta:{PAGE}:{PSID}");
    assert_eq!(heads[0].key, "meta:m_text1");
    assert_eq!(heads[2].key, "meta:m_echo1");
    assert_eq!(
        heads[2].conversation, conversation,
        "an echo belongs to the user's thread"
    );
    assert_eq!(heads[3].key, "meta:m_pb1");
    assert_eq!(heads[7].key, "meta:m_text1:edit:1");
    for i in [4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15] {
        assert!(heads[i].key.starts_with("meta:h:"), "{i}: {}", heads[i].key);
    }
    for head in &heads[..15] {
        assert_eq!(head.conversation, conversation);
    }
    assert_eq!(
        heads[15].conversation,
        format!("meta:{PAGE}"),
        "policy events have no user"
    );
    assert_eq!(heads[0].timestamp, Some(1_700_000_000_001));
    let mut keys: Vec<&String> = heads.iter().map(|h| &h.key).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), heads.len(), "every item has its own key");
}

#[test]
fn a_retry_batched_differently_gives_the_same_keys() {
    let first = Notification::parse(MESSENGER).expect("envelope");
    let first_keys: Vec<String> = first.items().map(|i| i.dedup_key()).collect();
    // The same read event, alone in a new POST with another entry time, keys reordered.
    let retry = format!(
        r#"{{"object":"page","entry":[{{"time":1800000000000,"id":"{PAGE}","messaging":[
            {{"read":{{"watermark":1700000000003}},"timestamp":1700000000006,
              "recipient":{{"id":"{PAGE}"}},"sender":{{"id":"{PSID}"}}}}]}}]}}"#
    );
    let retry = Notification::parse(retry.as_bytes()).expect("envelope");
    let retry_key = retry.items().next().expect("item").dedup_key();
    assert_eq!(retry_key, first_keys[5]);
    // The same content under another page is another event.
    let other_body = format!(
        r#"{{"object":"page","entry":[{{"id":"999","messaging":[
        {{"sender":{{"id":"{PSID}"}},"recipient":{{"id":"{PAGE}"}},"timestamp":1700000000006,"read":{{"watermark":1700000000003}}}}]}}]}}"#
    );
    let other_page = Notification::parse(other_body.as_bytes()).expect("envelope");
    assert_ne!(
        other_page.items().next().expect("item").dedup_key(),
        retry_key
    );
}

#[test]
fn instagram_messages_unsends_and_unknown_attachments() {
    let notification = Notification::parse(INSTAGRAM).expect("envelope");
    assert_eq!(notification.object, MetaObject::Instagram);
    let heads: Vec<ItemHead> = notification.items().map(|i| i.head()).collect();
    assert_eq!(heads[0].key, "meta:aWdfZAG1faXRlbToxOklH");
    assert_eq!(
        heads[1].key, "meta:aWdfZAG1faXRlbToxOklH:deleted",
        "an unsend is its own event"
    );
    assert_eq!(
        heads[0].conversation,
        "meta:17841400000000001:1234567890123456"
    );
    let events = messaging(INSTAGRAM);
    let MessagingKind::Message(story_reply) = &events[0].0.kind else {
        panic!()
    };
    assert_eq!(
        story_reply
            .reply_to
            .as_ref()
            .and_then(|r| r.story.as_ref())
            .and_then(|s| s.id.as_deref()),
        Some("1790")
    );
    assert!(matches!(&events[1].0.kind, MessagingKind::Message(m) if m.is_deleted));
    assert!(matches!(&events[2].0.kind,
        MessagingKind::Message(m) if matches!(&m.attachments[0], Attachment::Unknown(u) if u.kind == "story_mention")));
    assert!(matches!(&events[3].0.kind, MessagingKind::Message(m) if m.is_unsupported));
}

#[test]
fn whatsapp_messages_and_statuses() {
    let notification = Notification::parse(WHATSAPP).expect("envelope");
    assert_eq!(notification.object, MetaObject::WhatsAppBusinessAccount);
    assert_eq!(notification.entries[0].time, None);
    let items: Vec<RawItem<'_>> = notification.items().collect();
    assert_eq!(items.len(), 10);
    let values: Vec<WhatsAppValue> = items
        .iter()
        .map(|item| match item.typed() {
            Ok(Item::Change(Change {
                field,
                value: ChangeValue::WhatsApp(value),
            })) if field == "messages" => value,
            other => panic!("{other:?}"),
        })
        .collect();
    let first = &values[0];
    assert_eq!(first.messaging_product.as_deref(), Some("whatsapp"));
    let metadata = first.metadata.as_ref().expect("metadata");
    assert_eq!(metadata.phone_number_id.as_deref(), Some("106540352242922"));
    assert_eq!(
        metadata.display_phone_number.as_deref(),
        Some("15550783881")
    );
    assert_eq!(first.contacts[0].wa_id.as_deref(), Some("16315551181"));
    assert_eq!(
        first.contacts[0]
            .profile
            .as_ref()
            .and_then(|p| p.name.as_deref()),
        Some("Kerry Fisher")
    );
    let message = |i: usize| &values[i].messages[0];
    assert_eq!(message(0).from.as_deref(), Some("16315551181"));
    assert_eq!(message(0).sender(), Some("16315551181"));
    assert_eq!(message(0).id.as_deref(), Some("wamid.TEXT1"));
    assert_eq!(message(0).timestamp, Some(1_700_000_300));
    assert_eq!(
        message(0).content,
        WhatsAppContent::Text(Text {
            body: Some("this is a text message \u{1F600}".into())
        })
    );
    assert!(matches!(&message(1).content,
        WhatsAppContent::Image(m) if m.id.as_deref() == Some("1003383421387256") && m.caption.as_deref() == Some("cat")
            && m.mime_type.as_deref() == Some("image/jpeg")));
    assert!(matches!(&message(2).content,
        WhatsAppContent::Location(l) if l.latitude == Some(37.48) && l.name.as_deref() == Some("MPK")));
    assert_eq!(
        message(3).content,
        WhatsAppContent::Interactive(Interactive::ButtonReply {
            id: Some("yes".into()),
            title: Some("Yes".into())
        })
    );
    assert_eq!(
        message(3).context.as_ref().and_then(|c| c.id.as_deref()),
        Some("wamid.ASKED")
    );
    assert_eq!(
        message(4).content,
        WhatsAppContent::Interactive(Interactive::ListReply {
            id: Some("row-1".into()),
            title: Some("Row 1".into()),
            description: Some("first row".into())
        })
    );
    assert_eq!(
        message(5).content,
        WhatsAppContent::Reaction(WhatsAppReaction {
            message_id: Some("wamid.SENT".into()),
            emoji: Some("\u{1F44D}".into())
        })
    );
    assert!(matches!(&message(6).content,
        WhatsAppContent::Document(d) if d.filename.as_deref() == Some("a.pdf")));
    assert!(matches!(&message(7).content,
        WhatsAppContent::Unknown(u) if u.kind == "hologram" && u.raw["hologram"]["depth"] == 3));
    let status = &values[8].statuses[0];
    assert_eq!(status.id.as_deref(), Some("wamid.SENT"));
    assert_eq!(status.status, Some(StatusKind::Delivered));
    assert_eq!(status.recipient_id.as_deref(), Some("16315551181"));
    assert_eq!(status.recipient(), Some("16315551181"));
    assert_eq!(status.timestamp, Some(1_700_000_301));
    assert_eq!(status.pricing.as_ref().and_then(|p| p.billable), Some(true));

    let heads: Vec<ItemHead> = items.iter().map(|i| i.head()).collect();
    assert_eq!(heads[0].key, "meta:wa:wamid.TEXT1");
    assert_eq!(heads[8].key, "meta:wa:wamid.SENT:delivered");
    assert_eq!(
        heads[9].key, "meta:wa:wamid.SENT:read",
        "each status of a message is its own event"
    );
    let conversation = "meta:wa:106540352242922:16315551181";
    assert!(heads.iter().all(|h| h.conversation == conversation));
    assert_eq!(heads[0].timestamp, Some(1_700_000_300_000));
    assert_eq!(heads[9].timestamp, Some(1_700_000_302_000));
}

#[test]
fn unknown_kinds_objects_and_values_are_kept() {
    let body = br#"{"object":"page","entry":[{"id":"P","time":1,"messaging":[
        {"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":2,"message_poll":{"question":"?"}},
        {"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":3,"reaction":{"mid":"m","action":"super_react","emoji":"x"}},
        {"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":4,"account_linking":{"status":"pending"}}
    ]}]}"#;
    let events = messaging(body);
    assert!(matches!(&events[0].0.kind,
        MessagingKind::Unknown(u) if u.kind == "message_poll" && u.raw["message_poll"]["question"] == "?"));
    assert!(matches!(&events[1].0.kind,
        MessagingKind::Reaction(r) if r.action == Some(ReactionAction::Unknown("super_react".into()))));
    assert!(matches!(&events[2].0.kind,
        MessagingKind::AccountLinking(a) if a.status == Some(LinkingStatus::Unknown("pending".into()))));

    let threads = Notification::parse(br#"{"object":"threads","entry":[]}"#).expect("envelope");
    assert_eq!(threads.object, MetaObject::Unknown("threads".into()));

    let status = Notification::parse(
        br#"{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":
            {"metadata":{"phone_number_id":"1"},"statuses":[{"id":"s","status":"pending_review","timestamp":"1"}]}}]}]}"#,
    )
    .expect("envelope");
    let Ok(Item::Change(change)) = status.items().next().expect("item").typed() else {
        panic!()
    };
    let ChangeValue::WhatsApp(value) = change.value else {
        panic!()
    };
    assert_eq!(
        value.statuses[0].status,
        Some(StatusKind::Unknown("pending_review".into()))
    );

    let feed = Notification::parse(
        br#"{"object":"page","entry":[{"id":"P","time":1,"changes":[{"field":"feed","value":{"item":"comment","verb":"add"}}]}]}"#,
    )
    .expect("envelope");
    let item = feed.items().next().expect("item");
    assert!(matches!(item.typed(),
        Ok(Item::Change(Change { field, value: ChangeValue::Other(v) })) if field == "feed" && v["verb"] == "add"));
    assert!(item.dedup_key().starts_with("meta:h:"));
    assert_eq!(item.conversation_id(), "meta:P");
}

#[test]
fn one_malformed_item_leaves_the_others_intact() {
    // Meta's own test payload ("message" as a string, no entry id) and a non-object item.
    let body = br#"{"object":"page","entry":[{"messaging":[{"message":"TEST_MESSAGE"}, 7,
        {"sender":{"id":"U"},"recipient":{"id":"P"},"timestamp":2,"message":{"mid":"m_ok","text":"fine"}}]}]}"#;
    let notification = Notification::parse(body).expect("envelope");
    let items: Vec<RawItem<'_>> = notification.items().collect();
    assert_eq!(items.len(), 3);
    // Typed: a message whose `message` is not an object is a message without content.
    assert!(matches!(
        items[0].typed(),
        Ok(Item::Messaging(MessagingEvent {
            kind: MessagingKind::Message(Message { mid: None, .. }),
            ..
        }))
    ));
    assert!(items[1].typed().is_err(), "not an object");
    assert!(
        matches!(items[2].typed(), Ok(Item::Messaging(e)) if e.incoming_text() == Some("fine"))
    );
    assert!(items[0].dedup_key().starts_with("meta:h:"));
    assert_ne!(items[0].dedup_key(), items[1].dedup_key());
    assert_eq!(items[2].dedup_key(), "meta:m_ok");
    assert_eq!(items[0].raw.get(), r#"{"message":"TEST_MESSAGE"}"#);
}

#[test]
fn envelope_errors() {
    for body in [
        &b""[..],
        b"null",
        b"{\"entry\":[]}",
        b"{\"object\":\"page\"}",
        b"{\"object\":\"page\",\"entry\":{}}",
        b"{\"object\":\"page\",\"entry\":[5]}",
        b"{\"object\":\"page\",\"entry\":[{\"messaging\":{}}]}",
        b"{\"object\":1,\"entry\":[]}",
    ] {
        assert!(
            Notification::parse(body).is_err(),
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn several_whatsapp_messages_in_one_change_share_an_order_free_key() {
    let change = |a: &str, b: &str| {
        format!(
            r#"{{"field":"messages","value":{{"metadata":{{"phone_number_id":"1"}},"messages":[
            {{"from":"9","id":"{a}","timestamp":"5","type":"text","text":{{"body":"x"}}}},
            {{"from":"9","id":"{b}","timestamp":"5","type":"text","text":{{"body":"y"}}}}]}}}}"#
        )
    };
    let ab = RawValue::from_string(change("wamid.A", "wamid.B")).expect("json");
    let ba = RawValue::from_string(change("wamid.B", "wamid.A")).expect("json");
    let object = "whatsapp_business_account";
    let key_ab = ItemHead::of(object, "W", ItemList::Changes, &ab).key;
    assert!(key_ab.starts_with("meta:wa:h:"));
    assert_eq!(
        key_ab,
        ItemHead::of(object, "W", ItemList::Changes, &ba).key
    );
    assert_eq!(
        ItemHead::of(object, "W", ItemList::Changes, &ab).conversation,
        "meta:wa:1:9"
    );
}

/// Issue 13, defect 8: `changes[]` items without an id were keyed by object, entry id and content
/// only, so two distinct events with the same content shared a key and the second was dropped
/// for the idempotency TTL.
#[test]
fn identical_changes_at_different_times_are_different_events_and_a_retry_keeps_its_key() {
    let approved = r#"{"value":{"event":"APPROVED","message_template_id":1689556908129832,"message_template_name":"order_confirmation","message_template_language":"en_US","reason":"NONE"},"field":"message_template_status_update"}"#;
    let renamed = r#"{"field":"name","value":"Cafe"}"#;
    let body = |time: i64, changes: &[&str]| {
        format!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","time":{time},"changes":[{}]}}]}}"#,
            changes.join(",")
        )
    };
    let key_of = |body: &str, index: usize| {
        Notification::parse(body.as_bytes())
            .expect("envelope")
            .items()
            .nth(index)
            .expect("item")
            .dedup_key()
    };
    let march = key_of(&body(1_751_247_548, &[approved]), 0);
    let june = key_of(&body(1_759_000_000, &[approved]), 0);
    assert!(march.starts_with("meta:h:"));
    assert_ne!(march, june, "approved twice, months apart: two events");
    // The same notification again, batched with another change first and its keys reordered.
    let reordered = r#"{"field":"message_template_status_update","value":{"reason":"NONE","message_template_language":"en_US","message_template_name":"order_confirmation","message_template_id":1689556908129832,"event":"APPROVED"}}"#;
    assert_eq!(
        key_of(&body(1_751_247_548, &[renamed, reordered]), 1),
        march
    );
}
