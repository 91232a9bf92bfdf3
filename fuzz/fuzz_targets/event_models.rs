//! Any text as a LINE event and as a Meta item of every list: typed or an error, never a panic;
//! the lenient heads always give a key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::line::{Event, EventHead};
use shared::meta::{Item, ItemHead, ItemList};

fuzz_target!(|text: &str| {
    if let Ok(event) = Event::from_json(text) {
        let _ = (event.mentions_bot(Some("U0")), event.conversation_id("U0"), event.dedup_key());
    }
    let Ok(raw) = serde_json::value::RawValue::from_string(text.to_owned()) else {
        return;
    };
    assert!(!EventHead::of(&raw).dedup_key("U0", raw.get()).is_empty());
    for list in [ItemList::Messaging, ItemList::Standby, ItemList::Changes] {
        for object in ["page", "instagram", "whatsapp_business_account"] {
            let _ = Item::parse(object, list, text);
            let head = ItemHead::of(object, "P", list, &raw);
            assert!(head.key.starts_with("meta:"));
            assert!(head.conversation.len() <= 128 || head.conversation.starts_with("h:"));
        }
    }
});
