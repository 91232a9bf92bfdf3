//! LINE message objects, built in Rust and serialised exactly as the Messaging API expects
//! (checked against LINE's OpenAPI definition by `scripts/check_messages.py`).
//!
//! ```
//! use shared::messages::line::{Action, Message};
//!
//! let hello = Message::text("Hello ").emoji("5ac1bfd5040ab15980c9b435", "001")
//!     .quick_reply([Action::message("Menu", "menu"), Action::postback("Help", "help")]);
//! assert_eq!(hello.to_json()["emojis"][0]["index"], 6);
//! let mention = Message::text_v2("Welcome, {user}!").mention("user", "U4af4980629...");
//! assert_eq!(mention.to_json()["type"], "textV2");
//! ```
//!
//! Anything these builders do not cover (imagemaps, coupons, a flex bubble from the Flex
//! Message Simulator) goes through [`Message::flex`] or [`Message::raw`] as JSON.

use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};

/// One message of a reply or push (1 to 5 per call).
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    body: Map<String, Value>,
    quick_reply: Vec<Action>,
    sender: Option<(String, Option<String>)>,
}

/// A button's action: what happens when the user taps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Action(Value);

impl Action {
    /// Sends `text` as the user's message.
    pub fn message(label: &str, text: &str) -> Action {
        Action(json!({"type": "message", "label": label, "text": text}))
    }

    /// Sends a `postback` event with `data` (up to 300 characters), showing nothing in the chat.
    pub fn postback(label: &str, data: &str) -> Action {
        Action(json!({"type": "postback", "label": label, "data": data}))
    }

    /// A postback that also shows `text` as the user's message.
    pub fn postback_with_text(label: &str, data: &str, text: &str) -> Action {
        Action(json!({"type": "postback", "label": label, "data": data, "displayText": text}))
    }

    /// Opens `uri` (`https:`, `http:`, `tel:`, `line:`).
    pub fn uri(label: &str, uri: &str) -> Action {
        Action(json!({"type": "uri", "label": label, "uri": uri}))
    }

    /// Any other action type, as JSON (`datetimepicker`, `camera`, `location`, …).
    pub fn raw(action: Value) -> Action {
        Action(action)
    }
}

impl Serialize for Action {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl Message {
    fn of(kind: &str, fields: Value) -> Message {
        let mut body = Map::new();
        body.insert("type".into(), kind.into());
        if let Value::Object(fields) = fields {
            body.extend(fields);
        }
        Message {
            body,
            quick_reply: Vec::new(),
            sender: None,
        }
    }

    /// A text message (up to 5,000 characters). Add LINE emoji with [`Message::emoji`].
    pub fn text(text: &str) -> Message {
        Message::of("text", json!({"text": text}))
    }

    /// A text message with placeholders (`{name}`) filled by [`Message::mention`],
    /// [`Message::mention_all`] or [`Message::emoji_at`]: the way to mention users.
    pub fn text_v2(text: &str) -> Message {
        Message::of("textV2", json!({"text": text}))
    }

    /// A sticker (package and sticker ids from LINE's list of stickers bots may send).
    pub fn sticker(package_id: &str, sticker_id: &str) -> Message {
        Message::of(
            "sticker",
            json!({"packageId": package_id, "stickerId": sticker_id}),
        )
    }

    /// An image: both URLs `https`, JPEG or PNG (original up to 10 MB, preview up to 1 MB).
    pub fn image(original_url: &str, preview_url: &str) -> Message {
        Message::of(
            "image",
            json!({"originalContentUrl": original_url, "previewImageUrl": preview_url}),
        )
    }

    /// A buttons template: `text` (up to 160 characters, 60 with a title) and up to 4 actions.
    /// `alt_text` is what notifications and old clients show.
    pub fn buttons(alt_text: &str, title: Option<&str>, text: &str, actions: &[Action]) -> Message {
        let mut template = json!({"type": "buttons", "text": text, "actions": actions});
        if let Some(title) = title {
            template["title"] = title.into();
        }
        Message::of(
            "template",
            json!({"altText": alt_text, "template": template}),
        )
    }

    /// A confirm template: a question and two actions side by side.
    pub fn confirm(alt_text: &str, text: &str, yes: Action, no: Action) -> Message {
        Message::of(
            "template",
            json!({"altText": alt_text, "template": {"type": "confirm", "text": text, "actions": [yes, no]}}),
        )
    }

    /// A flex message: `contents` is a bubble or carousel as JSON (from the Flex Message
    /// Simulator, or `serde_json::json!`).
    pub fn flex(alt_text: &str, contents: Value) -> Message {
        Message::of("flex", json!({"altText": alt_text, "contents": contents}))
    }

    /// Any message object as JSON, sent as it is (its own `quickReply` and `sender` are kept
    /// unless set here).
    pub fn raw(message: Value) -> Message {
        let body = match message {
            Value::Object(map) => map,
            other => {
                let mut map = Map::new();
                map.insert("type".into(), other);
                map
            }
        };
        Message {
            body,
            quick_reply: Vec::new(),
            sender: None,
        }
    }

    /// Appends a LINE emoji (a `$` in the text, at the index LINE counts in UTF-16 units, as its
    /// Java-based API does) to a text message.
    pub fn emoji(mut self, product_id: &str, emoji_id: &str) -> Message {
        let text = match self.body.get("text") {
            Some(Value::String(text)) => text.clone(),
            _ => String::new(),
        };
        let index = text.encode_utf16().count();
        self.body.insert("text".into(), format!("{text}$").into());
        let emoji = json!({"index": index, "productId": product_id, "emojiId": emoji_id});
        match self.body.get_mut("emojis") {
            Some(Value::Array(emojis)) => emojis.push(emoji),
            _ => {
                self.body.insert("emojis".into(), Value::Array(vec![emoji]));
            }
        }
        self
    }

    fn substitute(mut self, placeholder: &str, value: Value) -> Message {
        let entry = self
            .body
            .entry("substitution")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(map) = entry {
            map.insert(placeholder.to_owned(), value);
        }
        self
    }

    /// Fills `{placeholder}` of a [`Message::text_v2`] with a mention of `user_id`.
    pub fn mention(self, placeholder: &str, user_id: &str) -> Message {
        self.substitute(
            placeholder,
            json!({"type": "mention", "mentionee": {"type": "user", "userId": user_id}}),
        )
    }

    /// Fills `{placeholder}` of a [`Message::text_v2`] with `@All` (groups and rooms).
    pub fn mention_all(self, placeholder: &str) -> Message {
        self.substitute(
            placeholder,
            json!({"type": "mention", "mentionee": {"type": "all"}}),
        )
    }

    /// Fills `{placeholder}` of a [`Message::text_v2`] with a LINE emoji.
    pub fn emoji_at(self, placeholder: &str, product_id: &str, emoji_id: &str) -> Message {
        self.substitute(
            placeholder,
            json!({"type": "emoji", "productId": product_id, "emojiId": emoji_id}),
        )
    }

    /// Quotes the message of `quote_token` (text and sticker messages only).
    pub fn quote(mut self, quote_token: &str) -> Message {
        self.body.insert("quoteToken".into(), quote_token.into());
        self
    }

    /// Quick-reply buttons under the message (up to 13).
    pub fn quick_reply(mut self, actions: impl IntoIterator<Item = Action>) -> Message {
        self.quick_reply.extend(actions);
        self
    }

    /// Sends as another name and icon (`name` up to 20 characters).
    pub fn sender(mut self, name: &str, icon_url: Option<&str>) -> Message {
        self.sender = Some((name.to_owned(), icon_url.map(str::to_owned)));
        self
    }

    /// The message object as LINE's API takes it.
    pub fn to_json(&self) -> Value {
        let mut out = self.body.clone();
        if !self.quick_reply.is_empty() {
            let items: Vec<Value> = self
                .quick_reply
                .iter()
                .map(|action| json!({"type": "action", "action": action}))
                .collect();
            out.insert("quickReply".into(), json!({"items": items}));
        }
        if let Some((name, icon)) = &self.sender {
            let mut sender = json!({"name": name});
            if let Some(icon) = icon {
                sender["iconUrl"] = icon.as_str().into();
            }
            out.insert("sender".into(), sender);
        }
        Value::Object(out)
    }
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl From<Value> for Message {
    fn from(message: Value) -> Message {
        Message::raw(message)
    }
}

/// One of every builder, for the schema check (`scripts/check_messages.py`) and the docs.
pub fn catalogue() -> Vec<(&'static str, Message)> {
    vec![
        ("text", Message::text("Hello!")),
        (
            "text with emoji, quote and quick reply",
            Message::text("Hi ")
                .emoji("5ac1bfd5040ab15980c9b435", "001")
                .quote("q3Plxr4AgKd...")
                .quick_reply([
                    Action::message("Menu", "menu"),
                    Action::postback("Help", "action=help"),
                    Action::postback_with_text("Buy", "action=buy", "I'd like to buy"),
                    Action::uri("Site", "https://example.com"),
                ]),
        ),
        (
            "textV2 with mentions and an emoji",
            Message::text_v2("Welcome, {user}! {everyone} {smile}")
                .mention("user", "U4af4980629000000000000000000c0de")
                .mention_all("everyone")
                .emoji_at("smile", "5ac1bfd5040ab15980c9b435", "002"),
        ),
        ("sticker", Message::sticker("446", "1988")),
        (
            "image",
            Message::image(
                "https://example.com/original.jpg",
                "https://example.com/preview.jpg",
            )
            .sender("Cony", Some("https://example.com/cony.png")),
        ),
        (
            "buttons template",
            Message::buttons(
                "Choose",
                Some("Menu"),
                "What would you like?",
                &[
                    Action::postback("Coffee", "item=coffee"),
                    Action::uri("Website", "https://example.com"),
                ],
            ),
        ),
        (
            "confirm template",
            Message::confirm(
                "Are you sure?",
                "Are you sure?",
                Action::message("Yes", "yes"),
                Action::message("No", "no"),
            ),
        ),
        (
            "flex",
            Message::flex(
                "A bubble",
                json!({"type": "bubble", "body": {"type": "box", "layout": "vertical",
                    "contents": [{"type": "text", "text": "Hello, flex"}]}}),
            ),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_indexes_count_utf16_units_and_point_at_dollars() {
        let message = Message::text("😀 é ")
            .emoji("p", "001")
            .emoji("p", "002")
            .to_json();
        assert_eq!(message["text"], "😀 é $$");
        // 😀 is two UTF-16 units: "😀 é " is 5 units long.
        assert_eq!(message["emojis"][0]["index"], 5);
        assert_eq!(message["emojis"][1]["index"], 6);
    }

    #[test]
    fn messages_serialise_as_the_api_expects() {
        assert_eq!(
            serde_json::to_value(Message::text("hi").quote("q")).expect("json"),
            json!({"type": "text", "text": "hi", "quoteToken": "q"})
        );
        assert_eq!(
            Message::sticker("446", "1988")
                .quick_reply([Action::message("A", "a")])
                .to_json(),
            json!({"type": "sticker", "packageId": "446", "stickerId": "1988",
                "quickReply": {"items": [{"type": "action", "action": {"type": "message", "label": "A", "text": "a"}}]}})
        );
        let mention = Message::text_v2("{u}").mention("u", "U1").to_json();
        assert_eq!(
            mention["substitution"]["u"],
            json!({"type": "mention", "mentionee": {"type": "user", "userId": "U1"}})
        );
        let raw = Message::raw(json!({"type": "imagemap", "baseUrl": "https://x"}));
        assert_eq!(raw.to_json()["baseUrl"], "https://x");
    }
}
