//! A LINE request body through signature verification, splitting and envelope building: never a
//! panic; a body that parses gives one envelope per event, each carrying the event's exact bytes,
//! keyed as serde's reading of its head keys it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::envelope::Envelope;
use shared::ingress::{LineOutline, SplitOptions, line_messages, line_outline_messages};
use shared::line::{Callback, EventHead};
use shared::signature::{Secrets, sign_line, verify_line};

fuzz_target!(|body: &[u8]| {
    let secrets = Secrets::from_list("fuzz-secret").expect("secret");
    // Sign correctly: the splitting must see everything a genuine sender could send.
    let signature = sign_line("fuzz-secret", body);
    assert!(verify_line(&secrets, body, Some(signature.as_bytes())).is_ok());
    // And the body itself as a signature: never accepted by accident, never a panic.
    let _ = verify_line(&secrets, body, Some(body));
    // Where the outline gives messages, they are the careful reading's (`ingress::outline`).
    let options = SplitOptions::for_body(body, 1, 1 << 20);
    let outlined = LineOutline::read(body).and_then(|o| line_outline_messages(&o, &options).ok());
    let Ok(callback) = Callback::parse(body) else {
        assert!(outlined.is_none(), "outlined a body parse refuses");
        return;
    };
    let split = line_messages(&callback, &options).expect("envelopes encode");
    if let Some(outlined) = outlined {
        assert_eq!(outlined.messages, split.messages, "outlined messages");
        assert_eq!(outlined.claims, split.claims, "outlined claims");
    }
    let messages = &split.messages;
    assert_eq!(messages.len(), callback.events.len());
    for (message, raw) in messages.iter().zip(&callback.events) {
        let envelope = Envelope::decode(message.body()).expect("our own envelope decodes");
        match &envelope.claim {
            None => assert_eq!(envelope.event.get(), raw.get(), "exact bytes"),
            Some(claim) => {
                let stored = split.claims.iter().find(|(object, _)| *object == claim.object);
                assert_eq!(stored.map(|(_, bytes)| bytes.as_ref()), Some(raw.get().as_bytes()), "exact bytes");
            }
        }
        let head = EventHead::of(raw);
        let destination = callback.destination.as_deref().unwrap_or_default();
        assert_eq!(message.key(), head.dedup_key(destination, raw.get()));
        // The fast reading of the head equals its definition, serde's reading.
        assert_eq!(head, EventHead::of_serde(raw), "head");
        let serde_key = match head.webhook_event_id.as_deref() {
            Some(id) if !id.is_empty() => format!("line:{id}"),
            _ => shared::key::hashed_json_serde("line:h:", &[destination], raw.get()),
        };
        assert_eq!(message.key(), serde_key, "key");
    }
    for parsed in callback.events() {
        if let Ok(event) = parsed.event {
            let _ = event.mentions_bot(callback.destination.as_deref());
        }
    }
});
