//! The example bot. **Replace this file with your own bot**: implement [`shared::bot::Bot`] on
//! a type named `ExampleBot` here (or change the one line in `lib.rs` that names it), and the
//! worker and the local gateway run it unchanged. Its tests are in `bot/tests.rs` and go with
//! it; the gateway's own tests run a bot of their own (`shared::test_bot`), so yours is free to
//! do anything. Messages: `shared::messages`.
//!
//! What it shows, following the platforms' rules:
//! - LINE: replies to a text message with its text, quoting it; greets a `follow` by the user's
//!   display name (profile API); in group and room chats answers only when mentioned; sends
//!   nothing while the channel is in `standby`; logs an `unsend` as the point where stored copies
//!   of the message must be deleted.
//! - Messenger and Instagram: answers a text message through the Send API; ignores echoes, and
//!   events of threads another app controls (`standby`).
//! - WhatsApp: marks a text message read with the typing indicator and answers it in context
//!   (quoting it); stays silent on statuses and echoes; never repeats an answer whose fate is
//!   unknown, and sends nothing outside the 24-hour window (that needs a template).
//! - Without access tokens it logs each event it handles (type, key, conversation), never its
//!   content.

use async_trait::async_trait;
use shared::bot::{Bot, BotError, BotEvent, BotEventKind, Permanent};
use shared::clients::Clients;
use shared::clients::line::{is_invalid_reply_token, text_message};
use shared::clients::whatsapp::{Problem, Recipient};
use shared::line::{self, EventKind, MessageContent};
use shared::meta::{self, ItemList, MessagingKind};

/// The example bot: an echo bot with manners.
#[derive(Debug, Default, Clone)]
pub struct ExampleBot;

#[async_trait]
impl Bot for ExampleBot {
    async fn handle(&self, event: &BotEvent, clients: &Clients) -> Result<(), BotError> {
        match &event.kind {
            BotEventKind::Line {
                destination,
                event: line_event,
            } => handle_line(event, destination.as_deref(), line_event, clients).await,
            BotEventKind::Meta { context, item } => {
                if context.list == ItemList::Standby {
                    // Another app controls this thread (handover protocol): listen, never answer.
                    log_event(event, "standby: not answering");
                    return Ok(());
                }
                handle_meta(event, item, clients).await
            }
            BotEventKind::Unreadable { reason } => {
                tracing::warn!(key = %event.key, %reason, "event this version cannot read; kept in the queue message");
                Ok(())
            }
            BotEventKind::Oversized(oversized) => {
                tracing::error!(key = %event.key, bytes = oversized.bytes, "event was too large for the queue");
                Ok(())
            }
        }
    }
}

fn log_event(event: &BotEvent, note: &str) {
    tracing::info!(
        kind = %event.type_name(),
        key = %event.key,
        conversation = %event.conversation,
        redelivery = event.is_redelivery(),
        "{note}"
    );
}

async fn handle_line(
    event: &BotEvent,
    destination: Option<&str>,
    line_event: &line::Event,
    clients: &Clients,
) -> Result<(), BotError> {
    if line_event.is_standby() {
        // Another channel is in control: a bot in standby must not send anything.
        log_event(event, "standby: not answering");
        return Ok(());
    }
    if let EventKind::Unsend(unsend) = &line_event.kind {
        // LINE asks services to stop showing an unsent message and delete stored copies.
        tracing::info!(key = %event.key, message_id = unsend.message_id.as_deref().unwrap_or("?"), "unsend: delete every stored copy of this message now");
        return Ok(());
    }
    let Some(client) = &clients.line else {
        log_event(
            event,
            "LINE event (no LINE_CHANNEL_ACCESS_TOKEN: not answering)",
        );
        return Ok(());
    };
    let Some(reply_token) = line_event.reply_token() else {
        log_event(event, "LINE event without a reply token");
        return Ok(());
    };
    let reply = match &line_event.kind {
        EventKind::Message(message) => {
            let MessageContent::Text(text) = &message.content else {
                log_event(event, "non-text message: not answering");
                return Ok(());
            };
            let in_group = line_event
                .source
                .as_ref()
                .is_some_and(|s| s.is_multi_person());
            if in_group && !line_event.mentions_bot(destination) {
                log_event(event, "group message not addressed to the bot");
                return Ok(());
            }
            let Some(text) = &text.text else {
                log_event(event, "text message without text: not answering");
                return Ok(());
            };
            text_message(text, message.quote_token())
        }
        EventKind::Follow(_) => {
            let name = match line_event.source.as_ref().and_then(|s| s.user_id()) {
                Some(user_id) => client.profile(user_id, event.deadline).await?.display_name,
                None => "there".to_owned(),
            };
            text_message(&format!("Hello, {name}! Thanks for adding me."), None)
        }
        _ => {
            log_event(event, "LINE event");
            return Ok(());
        }
    };
    match client.reply(reply_token, &[reply], event.deadline).await {
        Ok(()) => {
            log_event(event, "replied");
            Ok(())
        }
        Err(error) if is_invalid_reply_token(&error) => {
            // Used (perhaps by an earlier attempt of this very event) or expired: retrying cannot help.
            tracing::warn!(key = %event.key, %error, "reply token refused; not retrying");
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

async fn handle_meta(
    event: &BotEvent,
    item: &meta::Item,
    clients: &Clients,
) -> Result<(), BotError> {
    let messaging = match item {
        meta::Item::Messaging(messaging) => messaging,
        meta::Item::Change(meta::Change {
            value: meta::ChangeValue::WhatsApp(value),
            ..
        }) => return handle_whatsapp(event, value, clients).await,
        meta::Item::Change(_) => {
            log_event(event, "Meta change");
            return Ok(());
        }
    };
    if let MessagingKind::Message(message) = &messaging.kind
        && message.is_echo
    {
        // Our own message, echoed back: answering it would loop.
        return Ok(());
    }
    let (Some(text), Some(sender)) = (
        messaging.incoming_text(),
        messaging.sender.as_ref().and_then(|s| s.id.as_deref()),
    ) else {
        log_event(event, "Meta event");
        return Ok(());
    };
    let Some(client) = &clients.meta else {
        log_event(
            event,
            "Meta message (no META_PAGE_ACCESS_TOKEN: not answering)",
        );
        return Ok(());
    };
    client.send_text(sender, text, event.deadline).await?;
    log_event(event, "replied");
    Ok(())
}

/// WhatsApp: marks each text message read (with the typing indicator) and answers it in context,
/// quoting it. Statuses (sent, delivered, read, failed) are the answers' receipts: nothing to say.
async fn handle_whatsapp(
    event: &BotEvent,
    value: &meta::WhatsAppValue,
    clients: &Clients,
) -> Result<(), BotError> {
    if value.messages.is_empty() {
        log_event(event, "WhatsApp statuses: not answering");
        return Ok(());
    }
    let Some(client) = &clients.whatsapp else {
        log_event(
            event,
            "WhatsApp message (no WHATSAPP_ACCESS_TOKEN: not answering)",
        );
        return Ok(());
    };
    let Some(number) = value
        .metadata
        .as_ref()
        .and_then(|m| m.phone_number_id.as_deref())
    else {
        log_event(
            event,
            "WhatsApp message without the business number: not answering",
        );
        return Ok(());
    };
    for message in &value.messages {
        let (meta::WhatsAppContent::Text(text), Some(id), Some(to)) =
            (&message.content, &message.id, Recipient::of(message))
        else {
            log_event(event, "WhatsApp message that is not text: not answering");
            continue;
        };
        let Some(body) = &text.body else { continue };
        // Blue ticks and "typing…" while the answer is prepared; a failure here costs nothing.
        if let Err(error) = client.mark_read(number, id, true, event.deadline).await {
            tracing::warn!(key = %event.key, %error, "not marked read");
        }
        match client
            .send_text(number, &to, body, Some(id), event.deadline)
            .await
        {
            Ok(_) => log_event(event, "replied"),
            // Retrying cannot help: past the 24-hour window only a template may be sent, and an
            // undeliverable user stays so. A send whose fate is unknown is not repeated either,
            // so that the user never gets the answer twice.
            Err(error)
                if matches!(
                    error.problem,
                    Problem::OutsideWindow | Problem::Undeliverable | Problem::Unknown
                ) =>
            {
                tracing::warn!(key = %event.key, %error, "WhatsApp answer not sent; not retrying");
            }
            Err(error) if error.problem == Problem::Refused => {
                return Err(Permanent::boxed(error.to_string()));
            }
            // Rate limits: the queue brings the event back later.
            Err(error) => return Err(error.into()),
        }
    }
    Ok(())
}

// The example bot's own tests: delete this line (and `bot/tests.rs`) with the example bot.
#[cfg(test)]
mod tests;
