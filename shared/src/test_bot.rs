//! The bot the gateway's own tests run, so that they test the gateway, not whatever bot a user
//! put in `functions/worker/src/bot.rs`. The functions and `chat-gateway` run it instead of the
//! user's bot when `GATEWAY_TEST_BOT=1` (the end-to-end and pipeline tests set it); never set it
//! in a deployment.
//!
//! It answers the way the tests count: a LINE text message with its text (quoting it), a LINE
//! `follow` with a greeting by profile name, a Messenger or Instagram text with its text. A reply
//! token LINE refuses (used or expired) is not an error: retrying cannot help. Echoes and standby
//! threads get no answer.

use crate::bot::{Bot, BotError, BotEvent, BotEventKind};
use crate::clients::Clients;
use crate::clients::line::{is_invalid_reply_token, text_message};
use crate::line::{EventKind, MessageContent};
use crate::meta::{Item, ItemList, MessagingKind};
use async_trait::async_trait;

/// True when `GATEWAY_TEST_BOT` asks for [`GatewayTestBot`].
pub fn requested() -> bool {
    std::env::var("GATEWAY_TEST_BOT").is_ok_and(|v| v == "1")
}

/// See the module documentation.
#[derive(Debug, Default, Clone)]
pub struct GatewayTestBot;

#[async_trait]
impl Bot for GatewayTestBot {
    async fn handle(&self, event: &BotEvent, clients: &Clients) -> Result<(), BotError> {
        match &event.kind {
            BotEventKind::Line { event: line, .. } => {
                let (Some(client), Some(token)) = (&clients.line, line.reply_token()) else {
                    return Ok(());
                };
                let reply = match &line.kind {
                    EventKind::Message(message) => match &message.content {
                        MessageContent::Text(text) => match &text.text {
                            Some(text) => text_message(text, message.quote_token()),
                            None => return Ok(()),
                        },
                        _ => return Ok(()),
                    },
                    EventKind::Follow(_) => {
                        let name = match line.source.as_ref().and_then(|s| s.user_id()) {
                            Some(user) => client.profile(user, event.deadline).await?.display_name,
                            None => "there".to_owned(),
                        };
                        text_message(&format!("Hello, {name}!"), None)
                    }
                    _ => return Ok(()),
                };
                match client.reply(token, &[reply], event.deadline).await {
                    Err(error) if !is_invalid_reply_token(&error) => Err(error.into()),
                    _ => Ok(()),
                }
            }
            BotEventKind::Meta {
                item: Item::Messaging(messaging),
                context,
            } => {
                // Echoes are our own words; standby threads belong to another app.
                let echo = matches!(&messaging.kind, MessagingKind::Message(m) if m.is_echo);
                if echo || context.list == ItemList::Standby {
                    return Ok(());
                }
                let sender = messaging.sender.as_ref().and_then(|s| s.id.as_deref());
                match (&clients.meta, messaging.incoming_text(), sender) {
                    (Some(client), Some(text), Some(sender)) => {
                        Ok(client.send_text(sender, text, event.deadline).await?)
                    }
                    _ => Ok(()),
                }
            }
            BotEventKind::Unreadable { reason } => {
                // As a bot should: the reason names the problem and its place, never content.
                tracing::warn!(key = %event.key, %reason, "event this version cannot read");
                Ok(())
            }
            _ => Ok(()),
        }
    }
}
