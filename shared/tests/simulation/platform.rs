//! The platforms: conversations of LINE and Messenger events, sent to the real ingress as signed
//! webhook requests, retried as the platforms retry.
//!
//! - A sender owns a few conversations of one platform and sends their events in order: each
//!   request carries the next few events of each, and a conversation's next request waits for
//!   the `200` of the one before (a platform's deliveries of one conversation do not overlap).
//! - A request that is not answered `200` within the platform's deadline (LINE 2 s, Meta 5 s) is
//!   sent again after a backoff: LINE as a redelivery (`isRedelivery: true`, the same
//!   `webhookEventId`s), Meta re-batched (one entry per item, another entry time).
//! - Now and then an answered request is sent again anyway (its `200` was lost on the way).

use crate::world::World;
use bytes::Bytes;
use shared::ingress::Ingress;
use shared::signature::{sign_line, sign_meta};
use std::sync::Arc;
use std::time::Duration;

pub const LINE_SECRET: &str = "sim-line-secret";
pub const META_SECRET: &str = "sim-meta-secret";
const DESTINATION: &str = "Usim0000000000000000000000000bot";
const PAGE: &str = "PAGE1";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Line,
    Meta,
}

/// One generated event and what its handler will do.
#[derive(Debug, Clone)]
pub struct Event {
    pub key: String,
    pub conversation: usize,
    pub seq: usize,
    /// The event's JSON (LINE: without its delivery context, set per delivery).
    pub json: String,
    /// The handler fails every time: the event must end in the dead-letter queue.
    pub poison: bool,
    /// The handler's first runs that fail (fewer than the worker's attempts).
    pub failures: u32,
    /// Handler runs (by number) that take longer than an invocation.
    pub slow_runs: Vec<u32>,
}

#[derive(Debug, Clone)]
pub struct Conversation {
    pub platform: Platform,
    pub events: Vec<Event>,
}

/// Generates a run's conversations. `max_body` is the queue's body limit: a few events are made
/// larger than it (claim checks) and a few carry U+FFFE (characters SQS refuses).
pub fn conversations(world: &World, max_attempts: u32, max_body: usize) -> Vec<Conversation> {
    let count = 2 + world.below(7) as usize;
    let base = 1_763_000_000_000_i64;
    (0..count)
        .map(|index| {
            let platform = if world.chance(0.5) {
                Platform::Line
            } else {
                Platform::Meta
            };
            let length = 1 + world.below(12) as usize;
            let events = (0..length)
                .map(|seq| {
                    let timestamp = base + (seq as i64) * 1_000 + index as i64;
                    let mut text = format!("hello {index}.{seq}");
                    if world.chance(0.03) {
                        text.push('\u{FFFE}');
                    }
                    let padding = if world.chance(0.04) {
                        format!(r#","padding":"{}""#, "p".repeat(max_body + 100))
                    } else {
                        String::new()
                    };
                    let (key, json) = match platform {
                        Platform::Line => {
                            let id = format!("01SIM{index:03}{seq:05}");
                            (
                                format!("line:{id}"),
                                format!(
                                    r#"{{"type":"message","mode":"active","timestamp":{timestamp},"webhookEventId":"{id}","source":{{"type":"user","userId":"U{index:032}"}},"replyToken":"r{index}x{seq}","message":{{"type":"text","id":"{index}x{seq}","text":"{text}"}}{padding}"#
                                ),
                            )
                        }
                        Platform::Meta => {
                            let mid = format!("m_{index}_{seq}");
                            (
                                format!("meta:{mid}"),
                                format!(
                                    r#"{{"sender":{{"id":"P{index}"}},"recipient":{{"id":"{PAGE}"}},"timestamp":{timestamp},"message":{{"mid":"{mid}","text":"{text}"}}{padding}}}"#
                                ),
                            )
                        }
                    };
                    let poison = world.chance(world.faults.poison);
                    let failures = if world.chance(world.faults.flaky) {
                        1 + world.below(u64::from(max_attempts - 1).saturating_sub(1).max(1)) as u32
                    } else {
                        0
                    };
                    let slow_runs = (1..=failures)
                        .filter(|_| world.chance(world.faults.slow_handler * 5.0))
                        .collect();
                    Event {
                        key,
                        conversation: index,
                        seq,
                        json,
                        poison,
                        failures,
                        slow_runs,
                    }
                })
                .collect();
            Conversation {
                platform,
                events,
            }
        })
        .collect()
}

/// A webhook request's path, signature header and body.
fn request(platform: Platform, events: &[&Event], retry: u32) -> (&'static str, String, Bytes) {
    match platform {
        Platform::Line => {
            // The event's JSON lacks its closing brace: the delivery context goes there.
            let items: Vec<String> = events
                .iter()
                .map(|e| {
                    format!(
                        r#"{},"deliveryContext":{{"isRedelivery":{}}}}}"#,
                        e.json,
                        retry > 0
                    )
                })
                .collect();
            let body = format!(
                r#"{{"destination":"{DESTINATION}","events":[{}]}}"#,
                items.join(",")
            );
            let signature = sign_line(LINE_SECRET, body.as_bytes());
            ("/line", signature, Bytes::from(body))
        }
        Platform::Meta => {
            let time = 1_763_000_000_000_i64 + i64::from(retry) * 60_000;
            let entries: Vec<String> = if retry == 0 {
                let items: Vec<&str> = events.iter().map(|e| e.json.as_str()).collect();
                vec![format!(
                    r#"{{"id":"{PAGE}","time":{time},"messaging":[{}]}}"#,
                    items.join(",")
                )]
            } else {
                // Re-batched: one entry per item.
                events
                    .iter()
                    .map(|e| {
                        format!(
                            r#"{{"id":"{PAGE}","time":{time},"messaging":[{}]}}"#,
                            e.json
                        )
                    })
                    .collect()
            };
            let body = format!(r#"{{"object":"page","entry":[{}]}}"#, entries.join(","));
            let signature = sign_meta(META_SECRET, body.as_bytes());
            ("/meta", signature, Bytes::from(body))
        }
    }
}

/// What the platforms did, for the report.
#[derive(Debug, Default, Clone)]
pub struct Sent {
    pub requests: u64,
    pub retries: u64,
    pub resent_after_200: u64,
}

/// Sends every event of `owned` (conversations of one platform) to `ingress`, until each request
/// was answered `200`.
pub async fn send(world: Arc<World>, ingress: Arc<Ingress>, owned: Vec<Conversation>) -> Sent {
    let mut sent = Sent::default();
    let Some(platform) = owned.first().map(|c| c.platform) else {
        return sent;
    };
    let deadline = match platform {
        Platform::Line => Duration::from_secs(2),
        Platform::Meta => Duration::from_secs(5),
    };
    let mut next: Vec<usize> = vec![0; owned.len()];
    loop {
        let mut batch: Vec<&Event> = Vec::new();
        for (conversation, position) in owned.iter().zip(next.iter_mut()) {
            let take = 1 + world.below(3) as usize;
            let end = (*position + take).min(conversation.events.len());
            batch.extend(&conversation.events[*position..end]);
            *position = end;
        }
        if batch.is_empty() {
            return sent;
        }
        let mut retry = 0;
        let mut backoff = Duration::from_secs(1);
        loop {
            let (path, signature, body) = request(platform, &batch, retry);
            let header = match platform {
                Platform::Line => "x-line-signature",
                Platform::Meta => "x-hub-signature-256",
            };
            let http = http::Request::builder()
                .method("POST")
                .uri(path)
                .header(header, signature)
                .body(body)
                .expect("request");
            let ingress = Arc::clone(&ingress);
            // The ingress runs to its end whether or not the platform still waits.
            let answer = tokio::spawn(async move { ingress.handle_request(http).await });
            sent.requests += 1;
            let status = match tokio::time::timeout(deadline, answer).await {
                Ok(Ok(handled)) => Some(handled.response.status().as_u16()),
                _ => None,
            };
            world.trace(format!(
                "{platform:?}: request of {} events (retry {retry}) answered {status:?}",
                batch.len()
            ));
            if status == Some(200) {
                if world.chance(0.03) {
                    // The 200 was lost on its way back: the platform sends it all again.
                    world.injected("a 200 lost on its way to the platform");
                    sent.resent_after_200 += 1;
                    retry += 1;
                    continue;
                }
                break;
            }
            sent.retries += 1;
            retry += 1;
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(60));
        }
    }
}
