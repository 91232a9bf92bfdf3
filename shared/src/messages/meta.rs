//! Messenger and Instagram message objects for the Send API (`message` of `POST /me/messages`).
//!
//! ```
//! use shared::messages::meta::{Button, Element, Message, QuickReply};
//!
//! let menu = Message::text("What would you like?")
//!     .quick_replies([QuickReply::text("Coffee", "COFFEE"), QuickReply::text("Tea", "TEA")]);
//! assert_eq!(menu.to_json()["quick_replies"][0]["content_type"], "text");
//! let card = Message::generic(vec![Element::new("Coffee")
//!     .subtitle("Fresh")
//!     .button(Button::postback("Order", "ORDER_COFFEE"))]);
//! assert_eq!(card.to_json()["attachment"]["payload"]["template_type"], "generic");
//! ```

use serde::{Serialize, Serializer};
use serde_json::{Value, json};

/// The `message` of a Send API call.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    body: Value,
    quick_replies: Vec<QuickReply>,
}

/// A quick-reply chip (up to 13).
#[derive(Debug, Clone, PartialEq)]
pub struct QuickReply(Value);

impl QuickReply {
    /// A chip that sends `title` as the user's message, with `payload` in its `quick_reply`.
    pub fn text(title: &str, payload: &str) -> QuickReply {
        QuickReply(json!({"content_type": "text", "title": title, "payload": payload}))
    }

    /// Any other chip, as JSON (`user_phone_number`, `user_email`).
    pub fn raw(chip: Value) -> QuickReply {
        QuickReply(chip)
    }
}

/// A template button.
#[derive(Debug, Clone, PartialEq)]
pub struct Button(Value);

impl Button {
    /// Sends a `messaging_postbacks` event with `payload`.
    pub fn postback(title: &str, payload: &str) -> Button {
        Button(json!({"type": "postback", "title": title, "payload": payload}))
    }

    /// Opens `url`.
    pub fn url(title: &str, url: &str) -> Button {
        Button(json!({"type": "web_url", "title": title, "url": url}))
    }
}

/// One card of a generic template (up to 10 per message).
#[derive(Debug, Clone, PartialEq)]
pub struct Element(Value);

impl Element {
    pub fn new(title: &str) -> Element {
        Element(json!({"title": title}))
    }

    pub fn subtitle(mut self, subtitle: &str) -> Element {
        self.0["subtitle"] = subtitle.into();
        self
    }

    pub fn image_url(mut self, url: &str) -> Element {
        self.0["image_url"] = url.into();
        self
    }

    /// Up to 3 buttons per card.
    pub fn button(mut self, button: Button) -> Element {
        match self.0.get_mut("buttons") {
            Some(Value::Array(buttons)) => buttons.push(button.0),
            _ => self.0["buttons"] = json!([button.0]),
        }
        self
    }
}

/// What an attachment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    Image,
    Video,
    Audio,
    File,
}

impl Media {
    fn as_str(self) -> &'static str {
        match self {
            Media::Image => "image",
            Media::Video => "video",
            Media::Audio => "audio",
            Media::File => "file",
        }
    }
}

impl Message {
    /// A text message (up to 2,000 characters).
    pub fn text(text: &str) -> Message {
        Message {
            body: json!({"text": text}),
            quick_replies: Vec::new(),
        }
    }

    /// An image, video, audio clip or file Meta fetches from `url`.
    pub fn attachment(media: Media, url: &str) -> Message {
        Message {
            body: json!({"attachment": {"type": media.as_str(), "payload": {"url": url, "is_reusable": true}}}),
            quick_replies: Vec::new(),
        }
    }

    /// A generic template: a carousel of cards.
    pub fn generic(elements: Vec<Element>) -> Message {
        let elements: Vec<Value> = elements.into_iter().map(|e| e.0).collect();
        Message {
            body: json!({"attachment": {"type": "template", "payload": {"template_type": "generic", "elements": elements}}}),
            quick_replies: Vec::new(),
        }
    }

    /// Any `message` object as JSON.
    pub fn raw(message: Value) -> Message {
        Message {
            body: message,
            quick_replies: Vec::new(),
        }
    }

    pub fn quick_replies(mut self, chips: impl IntoIterator<Item = QuickReply>) -> Message {
        self.quick_replies.extend(chips);
        self
    }

    /// The `message` object as the Send API takes it.
    pub fn to_json(&self) -> Value {
        let mut out = self.body.clone();
        if !self.quick_replies.is_empty()
            && let Value::Object(map) = &mut out
        {
            let chips: Vec<Value> = self.quick_replies.iter().map(|c| c.0.clone()).collect();
            map.insert("quick_replies".into(), Value::Array(chips));
        }
        out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_serialise_as_the_send_api_expects() {
        assert_eq!(
            Message::text("hi")
                .quick_replies([QuickReply::text("A", "PA")])
                .to_json(),
            json!({"text": "hi", "quick_replies": [{"content_type": "text", "title": "A", "payload": "PA"}]})
        );
        assert_eq!(
            Message::attachment(Media::Image, "https://x/a.png").to_json(),
            json!({"attachment": {"type": "image", "payload": {"url": "https://x/a.png", "is_reusable": true}}})
        );
        let card = Message::generic(vec![
            Element::new("T")
                .image_url("https://x/i.png")
                .button(Button::url("Open", "https://x"))
                .button(Button::postback("Go", "GO")),
        ])
        .to_json();
        assert_eq!(
            card["attachment"]["payload"]["elements"][0]["buttons"][1],
            json!({"type": "postback", "title": "Go", "payload": "GO"})
        );
    }
}
