//! Any queue message body as the worker reads it: an envelope or an error, and the bot's view of
//! any envelope is built without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::bot::BotEvent;
use shared::envelope::Envelope;

fuzz_target!(|body: &str| {
    if let Ok(envelope) = Envelope::decode(body) {
        let deadline = tokio::time::Instant::now();
        let event = BotEvent::from_envelope(envelope, deadline);
        let _ = (event.type_name(), event.is_redelivery());
    }
});
