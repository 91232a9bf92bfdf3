//! A LINE request body through signature verification, splitting and envelope building: never a
//! panic; a body that parses gives one envelope per event, each carrying the event's exact bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::envelope::Envelope;
use shared::ingress::line_messages;
use shared::line::{Callback, EventHead};
use shared::signature::{Secrets, sign_line, verify_line};

fuzz_target!(|body: &[u8]| {
    let secrets = Secrets::from_list("fuzz-secret").expect("secret");
    // Sign correctly: the splitting must see everything a genuine sender could send.
    let signature = sign_line("fuzz-secret", body);
    assert!(verify_line(&secrets, body, Some(signature.as_bytes())).is_ok());
    // And the body itself as a signature: never accepted by accident, never a panic.
    let _ = verify_line(&secrets, body, Some(body));
    let Ok(callback) = Callback::parse(body) else { return };
    let messages = line_messages(&callback, 1, 262_000).expect("envelopes encode");
    assert_eq!(messages.len(), callback.events.len());
    for (message, raw) in messages.iter().zip(&callback.events) {
        let envelope = Envelope::decode(&message.body).expect("our own envelope decodes");
        if envelope.oversized.is_none() {
            assert_eq!(envelope.event.get(), raw.get(), "exact bytes");
        }
        let head = EventHead::of(raw);
        assert_eq!(message.key, head.dedup_key(&callback.destination, raw));
    }
    for parsed in callback.events() {
        if let Ok(event) = parsed.event {
            let _ = event.mentions_bot(&callback.destination);
        }
    }
});
