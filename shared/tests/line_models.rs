//! Every LINE event and message type of `webhook.yml` (and `messageEdited`), read and checked
//! field by field; unknown types, fields and values kept; one bad event costing nothing else.

use shared::line::*;

const EVERY_EVENT: &[u8] = include_bytes!("fixtures/line-every-event.json");
const BOT: &str = "Uf00000000000000000000000000000b0";
const USER: &str = "U4af4980629000000000000000000c0de";
const GROUP: &str = "Ca56f94637c00000000000000000000gg";

fn all_events() -> Vec<Event> {
    let callback = Callback::parse(EVERY_EVENT).expect("envelope");
    assert_eq!(callback.destination.as_deref(), Some(BOT));
    callback
        .events()
        .map(|parsed| {
            parsed
                .event
                .unwrap_or_else(|e| panic!("{e}: {}", parsed.raw.get()))
        })
        .collect()
}

#[test]
fn every_event_type_is_read() {
    let events = all_events();
    let names: Vec<&str> = events.iter().map(|e| e.kind.type_name()).collect();
    assert_eq!(
        names,
        [
            "message",
            "message",
            "message",
            "message",
            "message",
            "message",
            "message",
            "messageEdited",
            "unsend",
            "follow",
            "unfollow",
            "join",
            "leave",
            "memberJoined",
            "memberLeft",
            "postback",
            "postback",
            "videoPlayComplete",
            "beacon",
            "accountLink",
            "membership",
            "module",
            "module",
            "activated",
            "deactivated",
            "botSuspended",
            "botResumed",
            "delivery"
        ]
    );
    for (i, event) in events.iter().enumerate() {
        let n = i as i64 + 1;
        assert_eq!(event.timestamp, Some(1_700_000_000_000 + n));
        assert_eq!(event.webhook_event_id, Some(format!("01HWEBHOOK{n:020}")));
        assert_eq!(event.dedup_key(), Some(format!("line:01HWEBHOOK{n:020}")));
    }
}

#[test]
fn common_fields() {
    let events = all_events();
    let text = &events[0];
    assert_eq!(text.mode, Some(Mode::Active));
    assert!(!text.is_standby());
    assert!(!text.is_redelivery());
    assert_eq!(text.reply_token(), Some("reply-token-1"));
    assert_eq!(
        text.source,
        Some(Source::Group {
            group_id: Some(GROUP.into()),
            user_id: Some(USER.into())
        })
    );
    assert_eq!(text.source.as_ref().and_then(Source::user_id), Some(USER));
    assert_eq!(
        text.conversation_id(BOT),
        format!("line:{BOT}:group:{GROUP}")
    );

    let suspended = &events[25];
    assert!(suspended.is_standby());
    assert_eq!(suspended.source, None);
    assert_eq!(suspended.reply_token(), None);
    assert_eq!(suspended.conversation_id(BOT), format!("line:{BOT}"));

    let delivery = &events[27];
    assert!(delivery.is_redelivery());

    let image = &events[1];
    assert_eq!(
        image.conversation_id(BOT),
        format!("line:{BOT}:user:{USER}")
    );
    let member_joined = &events[13];
    assert!(
        matches!(&member_joined.source, Some(Source::Room { room_id, .. }) if room_id.as_deref() == Some("Ra8dbf4ccc0000000000000000000room"))
    );
    assert!(
        member_joined
            .source
            .as_ref()
            .is_some_and(Source::is_multi_person)
    );
}

#[test]
fn text_message_fields() {
    let events = all_events();
    let message = events[0].message().expect("message");
    assert_eq!(message.id.as_deref(), Some("468789577898262530"));
    assert_eq!(message.type_name(), "text");
    assert_eq!(message.quote_token(), Some("q-text"));
    let MessageContent::Text(text) = &message.content else {
        panic!("not text: {message:?}")
    };
    assert_eq!(text.text.as_deref(), Some("@bot @All ä $ hi"));
    assert_eq!(
        text.quoted_message_id.as_deref(),
        Some("468789532432007169")
    );
    assert_eq!(text.mark_as_read_token.as_deref(), Some("mr-1"));
    assert_eq!(
        text.emojis,
        [Emoji {
            index: Some(14),
            length: Some(1),
            product_id: Some("5ac1bfd5040ab15980c9b435".into()),
            emoji_id: Some("001".into())
        }]
    );
    let mentionees = &text.mention.as_ref().expect("mention").mentionees;
    assert_eq!(mentionees.len(), 3);
    assert_eq!(
        (mentionees[0].index, mentionees[0].length),
        (Some(0), Some(4))
    );
    assert_eq!(
        mentionees[0].target,
        MentionTarget::User {
            user_id: Some(BOT.into()),
            is_self: Some(true)
        }
    );
    assert_eq!(mentionees[1].target, MentionTarget::All);
    assert_eq!(
        mentionees[2].target,
        MentionTarget::User {
            user_id: Some(USER.into()),
            is_self: Some(false)
        }
    );
    assert!(events[0].mentions_bot(Some(BOT)));
}

#[test]
fn media_location_and_sticker_messages() {
    let events = all_events();
    let MessageContent::Image(image) = &events[1].message().expect("image").content else {
        panic!()
    };
    assert_eq!(
        image.content_provider.as_ref().and_then(|p| p.kind.clone()),
        Some(ContentProviderType::Line)
    );
    assert_eq!(image.quote_token.as_deref(), Some("q-image"));
    let set = image.image_set.as_ref().expect("image set");
    assert_eq!((set.index, set.total), (Some(1), Some(2)));
    assert!(
        set.id
            .as_deref()
            .is_some_and(|id| id.starts_with("E005D41A"))
    );

    let video_message = events[2].message().expect("video");
    let MessageContent::Video(video) = &video_message.content else {
        panic!()
    };
    assert_eq!(video.duration, Some(60000));
    let provider = video.content_provider.as_ref().expect("provider");
    assert_eq!(provider.kind, Some(ContentProviderType::External));
    assert_eq!(
        provider.original_content_url.as_deref(),
        Some("https://example.com/original.mp4")
    );
    assert_eq!(
        provider.preview_image_url.as_deref(),
        Some("https://example.com/preview.jpg")
    );
    assert!(!video_message.is_on_line());

    let MessageContent::Audio(audio) = &events[3].message().expect("audio").content else {
        panic!()
    };
    assert_eq!(audio.duration, Some(60000));
    assert_eq!(
        audio.content_provider.as_ref().and_then(|p| p.kind.clone()),
        Some(ContentProviderType::Line)
    );

    let MessageContent::File(file) = &events[4].message().expect("file").content else {
        panic!()
    };
    assert_eq!(
        (file.file_name.as_deref(), file.file_size),
        (Some("file.txt"), Some(2138))
    );

    let MessageContent::Location(location) = &events[5].message().expect("location").content else {
        panic!()
    };
    assert_eq!(location.title.as_deref(), Some("my location"));
    assert!(
        location
            .address
            .as_deref()
            .is_some_and(|a| a.contains("Chiyoda"))
    );
    assert_eq!(
        (location.latitude, location.longitude),
        (Some(35.67966), Some(139.73669))
    );

    let sticker_message = events[6].message().expect("sticker");
    let MessageContent::Sticker(sticker) = &sticker_message.content else {
        panic!()
    };
    assert_eq!(
        (sticker.package_id.as_deref(), sticker.sticker_id.as_deref()),
        (Some("12287"), Some("738839"))
    );
    assert_eq!(
        sticker.sticker_resource_type,
        Some(StickerResourceType::Message)
    );
    assert_eq!(sticker.keywords, ["Anticipation", "Sparkle"]);
    assert_eq!(
        sticker.text.as_deref(),
        Some("Let's hang out this weekend!")
    );
    assert_eq!(sticker.quoted_message_id.as_deref(), Some("1501597915"));
    assert_eq!(sticker_message.quote_token(), Some("q-sticker"));
}

#[test]
fn other_event_payloads() {
    let events = all_events();
    let EventKind::MessageEdited(edited) = &events[7].kind else {
        panic!()
    };
    assert!(
        matches!(&edited.content, MessageContent::Text(t) if t.text.as_deref() == Some("edited text"))
    );
    assert_eq!(
        events[7].message().and_then(|m| m.id.as_deref()),
        Some("468789577898262530")
    );

    assert_eq!(
        events[8].kind,
        EventKind::Unsend(Unsend {
            message_id: Some("325708".into())
        })
    );
    assert_eq!(
        events[9].kind,
        EventKind::Follow(Follow { is_unblocked: true })
    );
    assert_eq!(events[10].kind, EventKind::Unfollow);
    assert_eq!(events[11].kind, EventKind::Join);
    assert_eq!(events[12].kind, EventKind::Leave);
    let EventKind::MemberJoined(joined) = &events[13].kind else {
        panic!()
    };
    assert_eq!(joined.members.len(), 2);
    assert_eq!(joined.members[0].user_id(), Some(USER));
    let EventKind::MemberLeft(left) = &events[14].kind else {
        panic!()
    };
    assert_eq!(left.members[0].user_id(), Some(USER));

    let EventKind::Postback(picker) = &events[15].kind else {
        panic!()
    };
    assert_eq!(picker.data.as_deref(), Some("storeId=12345"));
    let params = picker.params.as_ref().expect("params");
    assert_eq!(params.datetime.as_deref(), Some("2017-12-25T01:00"));
    assert_eq!(
        (params.date.as_deref(), params.time.as_deref()),
        (None, None)
    );
    let EventKind::Postback(switch) = &events[16].kind else {
        panic!()
    };
    let params = switch.params.as_ref().expect("params");
    assert_eq!(
        params.new_rich_menu_alias_id.as_deref(),
        Some("richmenu-alias-b")
    );
    assert_eq!(params.status, Some(RichMenuSwitchStatus::Success));

    assert_eq!(
        events[17].kind,
        EventKind::VideoPlayComplete(VideoPlayComplete {
            tracking_id: Some("track-id".into())
        })
    );
    assert_eq!(
        events[18].kind,
        EventKind::Beacon(Beacon {
            hwid: Some("d41d8cd98f".into()),
            kind: Some(BeaconType::Enter),
            dm: Some("1234567890abcdef".into())
        })
    );
    assert_eq!(
        events[19].kind,
        EventKind::AccountLink(AccountLink {
            result: Some(LinkResult::Ok),
            nonce: Some("xxxxxxxxxxxxxxx".into())
        })
    );
    assert_eq!(
        events[20].kind,
        EventKind::Membership(Membership::Joined {
            membership_id: Some(3189)
        })
    );
    assert_eq!(
        events[21].kind,
        EventKind::Module(Module::Attached {
            bot_id: Some("U111111111111111111111111111111".into()),
            scopes: vec!["message:send".into()]
        })
    );
    assert_eq!(
        events[22].kind,
        EventKind::Module(Module::Detached {
            bot_id: Some("U111111111111111111111111111111".into()),
            reason: Some(DetachReason::BotDeleted)
        })
    );
    assert_eq!(
        events[23].kind,
        EventKind::Activated(ChatControl {
            expire_at: Some(1_609_459_200_000)
        })
    );
    assert_eq!(events[24].kind, EventKind::Deactivated);
    assert_eq!(events[25].kind, EventKind::BotSuspended);
    assert_eq!(events[26].kind, EventKind::BotResumed);
    assert_eq!(
        events[27].kind,
        EventKind::Delivery(PnpDelivery {
            data: Some("934d9af0a1a4d8e2bf0f1c0b1e0d0b3b".into())
        })
    );
}

fn event_json(kind_and_body: &str) -> String {
    format!(
        r#"{{"timestamp":1,"mode":"active","webhookEventId":"01X","deliveryContext":{{"isRedelivery":false}},{kind_and_body}}}"#
    )
}

#[test]
fn unknown_types_keep_their_json_at_every_level() {
    let unknown_event = Event::from_json(&event_json(
        r#""type":"reactionAdded","source":{"type":"user","userId":"U1"},"reaction":{"emoji":"x"}"#,
    ))
    .expect("event");
    let EventKind::Unknown(unknown) = &unknown_event.kind else {
        panic!()
    };
    assert_eq!(unknown.kind, "reactionAdded");
    assert_eq!(unknown.raw["reaction"]["emoji"], "x");
    assert_eq!(unknown_event.conversation_id("UB"), "line:UB:user:U1");

    let unknown_message = Event::from_json(&event_json(
        r#""type":"message","message":{"type":"poll","id":"9","quoteToken":"q","poll":{"q":1}}"#,
    ))
    .expect("event");
    let message = unknown_message.message().expect("message");
    assert_eq!(message.id.as_deref(), Some("9"));
    assert_eq!(message.type_name(), "poll");
    assert_eq!(message.quote_token(), Some("q"));
    let MessageContent::Unknown(raw) = &message.content else {
        panic!()
    };
    assert_eq!(raw.raw["poll"]["q"], 1);

    let unknown_source = Event::from_json(&event_json(
        r#""type":"join","source":{"type":"community","communityId":"X","userId":"U9"}"#,
    ))
    .expect("event");
    let Some(Source::Unknown(source)) = &unknown_source.source else {
        panic!()
    };
    assert_eq!(source.kind, "community");
    assert_eq!(source.raw["communityId"], "X");
    assert_eq!(
        unknown_source.source.as_ref().and_then(Source::user_id),
        Some("U9")
    );

    let unknown_mentionee = Event::from_json(&event_json(
        r#""type":"message","message":{"type":"text","id":"1","text":"@x","mention":{"mentionees":[{"index":0,"length":2,"type":"role","roleId":"R"}]}}"#,
    ))
    .expect("event");
    let Some(Message {
        content: MessageContent::Text(text),
        ..
    }) = unknown_mentionee.message()
    else {
        panic!()
    };
    let MentionTarget::Unknown(target) =
        &text.mention.as_ref().expect("mention").mentionees[0].target
    else {
        panic!()
    };
    assert_eq!(
        (target.kind.as_str(), &target.raw["roleId"]),
        ("role", &"R".into())
    );

    let unknown_membership = Event::from_json(&event_json(
        r#""type":"membership","membership":{"type":"paused","membershipId":1,"until":5}"#,
    ))
    .expect("event");
    assert!(matches!(&unknown_membership.kind,
        EventKind::Membership(Membership::Unknown(u)) if u.kind == "paused" && u.raw["until"] == 5));

    let unknown_module = Event::from_json(&event_json(
        r#""type":"module","module":{"type":"suspended","botId":"U"}"#,
    ))
    .expect("event");
    assert!(
        matches!(&unknown_module.kind, EventKind::Module(Module::Unknown(u)) if u.kind == "suspended")
    );
}

#[test]
fn unknown_enum_values_and_fields_are_kept() {
    let event = Event::from_json(
        r#"{"type":"message","mode":"observer","timestamp":1,"webhookEventId":"01X",
            "deliveryContext":{"isRedelivery":false,"reason":"new"},"brandNewField":[1,2],
            "source":{"type":"user","userId":"U1","extra":true},
            "message":{"type":"sticker","id":"1","packageId":"1","stickerId":"2",
                       "stickerResourceType":"HOLOGRAM","futureFlag":1}}"#,
    )
    .expect("event");
    assert_eq!(event.mode, Some(Mode::Unknown("observer".into())));
    assert_eq!(event.mode.as_ref().map(Mode::as_str), Some("observer"));
    let Some(Message {
        content: MessageContent::Sticker(sticker),
        ..
    }) = event.message()
    else {
        panic!()
    };
    assert_eq!(
        sticker.sticker_resource_type,
        Some(StickerResourceType::Unknown("HOLOGRAM".into()))
    );

    let beacon = Event::from_json(&event_json(
        r#""type":"beacon","beacon":{"hwid":"h","type":"leave"}"#,
    ))
    .expect("event");
    assert!(
        matches!(&beacon.kind, EventKind::Beacon(b) if b.kind == Some(BeaconType::Unknown("leave".into())))
    );

    let provider = Event::from_json(&event_json(
        r#""type":"message","message":{"type":"image","id":"1","contentProvider":{"type":"cdn"}}"#,
    ))
    .expect("event");
    assert_eq!(
        provider
            .message()
            .and_then(Message::content_provider)
            .and_then(|p| p.kind.clone()),
        Some(ContentProviderType::Unknown("cdn".into()))
    );

    let postback = Event::from_json(&event_json(
        r#""type":"postback","postback":{"data":"d","params":{"status":"PARTIAL","color":"red"}}"#,
    ))
    .expect("event");
    let EventKind::Postback(postback) = &postback.kind else {
        panic!()
    };
    let params = postback.params.as_ref().expect("params");
    assert_eq!(
        params.status,
        Some(RichMenuSwitchStatus::Unknown("PARTIAL".into()))
    );
    assert_eq!(params.other["color"], "red");
}

/// The rule: only an event that is not an object, or has no `type`, is unreadable; fields of an
/// unexpected shape read as absent, and the event is typed all the same.
#[test]
fn one_malformed_event_leaves_the_others_intact() {
    let body = format!(
        r#"{{"destination":"{BOT}","events":[
            {},
            {{"type":"message","timestamp":"not a number","message":42}},
            17,
            {}
        ]}}"#,
        event_json(r#""type":"follow","replyToken":"r1","source":{"type":"user","userId":"U1"}"#),
        event_json(r#""type":"unfollow","source":{"type":"user","userId":"U2"}"#),
    );
    let callback = Callback::parse(body.as_bytes()).expect("envelope");
    let parsed: Vec<_> = callback.events().collect();
    assert_eq!(parsed.len(), 4);
    assert!(matches!(
        parsed[0].event.as_ref().map(|e| &e.kind),
        Ok(EventKind::Follow(_))
    ));
    let odd = parsed[1]
        .event
        .as_ref()
        .expect("typed despite its odd fields");
    assert_eq!(odd.timestamp, None);
    assert_eq!(odd.message().and_then(|m| m.id.as_deref()), None);
    assert!(parsed[1].raw.get().contains("not a number"));
    assert!(parsed[2].event.is_err(), "not an object");
    assert_eq!(parsed[2].raw.get(), "17");
    assert!(matches!(
        parsed[3].event.as_ref().map(|e| &e.kind),
        Ok(EventKind::Unfollow)
    ));
}

#[test]
fn raw_bytes_are_exactly_what_arrived() {
    let event = r#"{ "type" : "unfollow", "x":"\u00e4\/", "timestamp":1,"mode":"active","webhookEventId":"01X","deliveryContext":{"isRedelivery":false} }"#;
    let body = format!(r#"{{"destination":"{BOT}","events":[{event}]}}"#);
    let callback = Callback::parse(body.as_bytes()).expect("envelope");
    assert_eq!(callback.events[0].get(), event);
}

#[test]
fn envelope_errors() {
    for body in [
        &b"not json"[..],
        b"[]",
        b"{}",
        b"{\"destination\":\"U0\"}",
        b"{\"destination\":\"U0\",\"events\":{}}",
        b"\xff\xfe",
    ] {
        assert!(
            Callback::parse(body).is_err(),
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
    let empty = Callback::parse(br#"{"destination":"U0","events":[]}"#).expect("verify request");
    assert!(empty.events.is_empty());
    // The Python SDK parses a body without a destination; so does the gateway.
    for body in [
        &br#"{"events":[]}"#[..],
        br#"{"destination":5,"events":[]}"#,
    ] {
        let parsed = Callback::parse(body).expect("no destination");
        assert_eq!(parsed.destination, None);
    }
}

#[test]
fn mention_falls_back_to_destination_without_is_self() {
    let event = Event::from_json(&event_json(&format!(
        r#""type":"message","source":{{"type":"group","groupId":"C1","userId":"U2"}},
           "message":{{"type":"text","id":"1","text":"@bot","mention":{{"mentionees":[{{"index":0,"length":4,"type":"user","userId":"{BOT}"}}]}}}}"#
    )))
    .expect("event");
    assert!(event.mentions_bot(Some(BOT)));
    assert!(!event.mentions_bot(Some("Uother")));
    // isSelf decides when present, even against the userId.
    let event = Event::from_json(&event_json(&format!(
        r#""type":"message","message":{{"type":"text","id":"1","text":"@x","mention":{{"mentionees":[{{"index":0,"length":2,"type":"user","userId":"{BOT}","isSelf":false}}]}}}}"#
    )))
    .expect("event");
    assert!(!event.mentions_bot(Some(BOT)));
    // @All is not a mention of the bot.
    let event = Event::from_json(&event_json(
        r#""type":"message","message":{"type":"text","id":"1","text":"@All","mention":{"mentionees":[{"index":0,"length":4,"type":"all"}]}}"#,
    ))
    .expect("event");
    assert!(!event.mentions_bot(Some(BOT)));
}

#[test]
fn heads_give_keys_and_conversations_for_any_event() {
    let callback = Callback::parse(EVERY_EVENT).expect("envelope");
    for (raw, event) in callback.events.iter().zip(all_events()) {
        let head = EventHead::of(raw);
        assert_eq!(Some(head.dedup_key(BOT, raw.get())), event.dedup_key());
        assert_eq!(head.conversation_id(BOT), event.conversation_id(BOT));
        assert_eq!(head.timestamp, event.timestamp);
    }
    // Without a webhookEventId, the key is a content hash that ignores formatting.
    let a = serde_json::value::RawValue::from_string(r#"{"type":"x","a":1,"b":2}"#.into()).unwrap();
    let b =
        serde_json::value::RawValue::from_string(r#"{ "b":2, "a":1, "type":"x" }"#.into()).unwrap();
    let key_a = EventHead::of(&a).dedup_key(BOT, a.get());
    assert!(key_a.starts_with("line:h:"));
    assert_eq!(key_a, EventHead::of(&b).dedup_key(BOT, b.get()));
    // A field of the wrong type does not hide the others.
    let odd = serde_json::value::RawValue::from_string(
        r#"{"webhookEventId":"01Z","timestamp":"soon","source":{"type":"user","userId":"U7"}}"#
            .into(),
    )
    .unwrap();
    let head = EventHead::of(&odd);
    assert_eq!(head.dedup_key(BOT, odd.get()), "line:01Z");
    assert_eq!(head.conversation_id(BOT), format!("line:{BOT}:user:U7"));
    assert_eq!(head.timestamp, None);
}
