//! A Meta notification body through signature verification, splitting and envelope building.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::envelope::Envelope;
use shared::ingress::meta_messages;
use shared::meta::Notification;
use shared::signature::{Secrets, sign_meta, verify_meta};

fuzz_target!(|body: &[u8]| {
    let secrets = Secrets::from_list("fuzz-secret").expect("secret");
    let signature = sign_meta("fuzz-secret", body);
    assert!(verify_meta(&secrets, body, Some(signature.as_bytes())).is_ok());
    let _ = verify_meta(&secrets, body, Some(body));
    let Ok(notification) = Notification::parse(body) else { return };
    let messages = meta_messages(&notification, 1, 262_000).expect("envelopes encode");
    assert_eq!(messages.len(), notification.item_count());
    for (message, item) in messages.iter().zip(notification.items()) {
        let envelope = Envelope::decode(&message.body).expect("our own envelope decodes");
        if envelope.oversized.is_none() {
            assert_eq!(envelope.event.get(), item.raw.get(), "exact bytes");
        }
        let _ = item.typed();
    }
});
