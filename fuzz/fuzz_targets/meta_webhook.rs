//! A Meta notification body through signature verification, splitting and envelope building.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::envelope::Envelope;
use shared::ingress::{MetaOutline, SplitOptions, meta_messages, meta_outline_messages};
use shared::meta::{ItemHead, Notification};
use shared::signature::{Secrets, sign_meta, verify_meta};

fuzz_target!(|body: &[u8]| {
    let secrets = Secrets::from_list("fuzz-secret").expect("secret");
    let signature = sign_meta("fuzz-secret", body);
    assert!(verify_meta(&secrets, body, Some(signature.as_bytes())).is_ok());
    let _ = verify_meta(&secrets, body, Some(body));
    // Where the outline gives messages, they are the careful reading's (`ingress::outline`).
    let options = SplitOptions::for_body(body, 1, 1 << 20);
    let outlined = MetaOutline::read(body).and_then(|o| meta_outline_messages(&o, &options).ok());
    let Ok(notification) = Notification::parse(body) else {
        assert!(outlined.is_none(), "outlined a body parse refuses");
        return;
    };
    let split = meta_messages(&notification, &options).expect("envelopes encode");
    if let Some(outlined) = outlined {
        assert_eq!(outlined.messages, split.messages, "outlined messages");
        assert_eq!(outlined.claims, split.claims, "outlined claims");
    }
    let messages = &split.messages;
    assert_eq!(messages.len(), notification.item_count());
    for (message, item) in messages.iter().zip(notification.items()) {
        let envelope = Envelope::decode(message.body()).expect("our own envelope decodes");
        match &envelope.claim {
            None => assert_eq!(envelope.event.get(), item.raw.get(), "exact bytes"),
            Some(claim) => {
                let stored = split.claims.iter().find(|(object, _)| *object == claim.object);
                assert_eq!(stored.map(|(_, bytes)| bytes.as_ref()), Some(item.raw.get().as_bytes()), "exact bytes");
            }
        }
        // The fast reading of the head equals its definition, serde's reading.
        let serde_head = ItemHead::of_entry_serde(item.object, item.entry_id, item.entry_time, item.list, item.raw);
        assert_eq!(message.key(), serde_head.key, "key");
        assert_eq!(item.head(), serde_head, "head");
        let _ = item.typed();
    }
});
