//! One request into queue messages: one envelope per event, each carrying the event's exact
//! bytes, in a form the queue takes (see [`crate::envelope`]): claim-checked when too large,
//! base64 when it holds characters SQS refuses.

use super::outline::{LineOutline, MetaOutline, OutlinedEvent, OutlinedItem};
use crate::envelope::{ClaimCheck, Envelope, Fresh, FreshContext, SharedPart};
use crate::line::{Callback, EventHead};
use crate::meta::{ItemHead, MetaObject, Notification, Written};
use crate::platform::{MalformedBody, Platform};
use crate::ports::{QueueMessage, Str};
use crate::tenants::{scoped, write_scoped as scoped_into};
use bytes::Bytes;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::ops::Range;

/// How to write a request's messages.
#[derive(Debug, Clone, Copy)]
pub struct SplitOptions<'a> {
    /// When the ingress received the request, in milliseconds since the epoch.
    pub received_at: i64,
    /// The largest message body the queue takes.
    pub max_message_bytes: usize,
    /// The request holds U+FFFE or U+FFFF somewhere: write every envelope the careful way
    /// ([`Envelope::encode_for_sqs`]). Without one, no event and no string derived from the
    /// request can hold one, and the fast path is exact.
    pub refused_chars: bool,
    /// The registry tenant the request came for: stamped on every envelope, and the prefix of
    /// its key and conversation.
    pub tenant: Option<&'a str>,
}

impl SplitOptions<'_> {
    /// Options for `body`, received at `received_at`, for a queue taking `max_message_bytes`.
    pub fn for_body(
        body: &[u8],
        received_at: i64,
        max_message_bytes: usize,
    ) -> SplitOptions<'static> {
        SplitOptions {
            received_at,
            max_message_bytes,
            refused_chars: crate::envelope::has_refused_chars(body),
            tenant: None,
        }
    }
}

/// A request's queue messages, and the claim-check objects to store before they are queued.
#[derive(Debug, Default)]
pub struct Split {
    pub messages: Vec<QueueMessage>,
    /// Object name and the event's exact bytes.
    pub claims: Vec<(String, Bytes)>,
}

/// One queue message per LINE event.
pub fn line_messages(
    callback: &Callback<'_>,
    options: &SplitOptions<'_>,
) -> Result<Split, serde_json::Error> {
    let events: Vec<OutlinedEvent<'_>> = callback
        .events
        .iter()
        .map(|raw| OutlinedEvent {
            text: raw.get(),
            head: None,
        })
        .collect();
    line_events(callback.destination.as_deref(), &events, options, |text| {
        Ok(EventHead::of_valid(text))
    })
}

/// A LINE body's destination and messages, as the ingress reads it: from its outline where it
/// has the platform's shape ([`LineOutline`]), else, and wherever that split fails, from
/// [`Callback::parse`], whose answer every refusal is. No messages (`None`) when the body holds
/// more than `max_events` events.
pub fn line_body(
    body: &[u8],
    options: &SplitOptions<'_>,
    max_events: usize,
) -> Result<LineBody, MalformedBody> {
    if let Some(outline) = LineOutline::read(body)
        && outline.events.len() <= max_events
        && let Ok(split) = line_outline_messages(&outline, options)
    {
        return Ok(LineBody {
            destination: outline.destination,
            messages: Some(Ok(split)),
        });
    }
    let callback = Callback::parse(body)?;
    let messages = (callback.events.len() <= max_events).then(|| line_messages(&callback, options));
    Ok(LineBody {
        destination: callback.destination,
        messages,
    })
}

/// What [`line_body`] read.
#[derive(Debug)]
pub struct LineBody {
    pub destination: Option<String>,
    pub messages: Option<Result<Split, serde_json::Error>>,
}

/// A Meta body's messages from its outline ([`MetaOutline`]), for an object the gateway handles
/// and at most `max_events` items; `None` for any other body and wherever that split fails,
/// which [`Notification::parse`] and [`meta_messages`] then answer.
pub fn meta_outlined(body: &[u8], options: &SplitOptions<'_>, max_events: usize) -> Option<Split> {
    let outline = MetaOutline::read(body)?;
    if matches!(outline.object, MetaObject::Unknown(_)) || outline.item_count() > max_events {
        return None;
    }
    meta_outline_messages(&outline, options).ok()
}

/// A Meta body's messages, read as the ingress reads it ([`meta_outlined`], else
/// [`Notification::parse`]), however many items it holds: for the benchmarks, which time
/// exactly the ingress's reading.
pub fn meta_body(
    body: &[u8],
    options: &SplitOptions<'_>,
) -> Result<Result<Split, serde_json::Error>, MalformedBody> {
    if let Some(split) = meta_outlined(body, options, usize::MAX) {
        return Ok(Ok(split));
    }
    Ok(meta_messages(&Notification::parse(body)?, options))
}

/// [`line_messages`] of an outlined body: each event validated as its head is read
/// ([`EventHead::checked`]); an event that is not JSON fails the split (with serde's error).
pub fn line_outline_messages(
    outline: &LineOutline<'_>,
    options: &SplitOptions<'_>,
) -> Result<Split, serde_json::Error> {
    line_events(
        outline.destination.as_deref(),
        &outline.events,
        options,
        EventHead::checked,
    )
}

/// Each event's message; `head` reads the head of an event whose head was not read with it.
fn line_events(
    destination: Option<&str>,
    events: &[OutlinedEvent<'_>],
    options: &SplitOptions<'_>,
    head: impl Fn(&str) -> Result<EventHead, serde_json::Error> + Sync,
) -> Result<Split, serde_json::Error> {
    let destination_text = destination.unwrap_or_default();
    in_parallel(
        events,
        |event| event.text.len(),
        |&OutlinedEvent { text, head: read }, scratch: &mut Scratch<'_>, out| {
            let Scratch {
                strings: scratch,
                shared,
            } = scratch;
            let owned;
            let head = match read {
                Some(read) => read,
                None => {
                    owned = head(text)?;
                    owned.as_ref()
                }
            };
            // Key and conversation written side by side, without a string of their own.
            scratch.clear();
            scoped_into(options.tenant, scratch, |out| {
                head.write_dedup_key(destination_text, text, out)
            });
            let key_len = scratch.len();
            scoped_into(options.tenant, scratch, |out| {
                head.write_conversation(destination_text, out)
            });
            let (key, conversation) = scratch.split_at(key_len);
            let context = FreshContext::Line { destination };
            let fresh = Fresh {
                platform: Platform::Line,
                tenant: options.tenant,
                key,
                conversation,
                timestamp: head.timestamp,
                received_at: options.received_at,
                context,
                event: text,
            };
            place(
                &fresh,
                shared.of(options.received_at, context),
                options,
                out,
            )
        },
    )
}

/// One queue message per item of `messaging[]`, `standby[]` and `changes[]` of every entry.
pub fn meta_messages(
    notification: &Notification<'_>,
    options: &SplitOptions<'_>,
) -> Result<Split, serde_json::Error> {
    let items: Vec<_> = notification
        .items()
        .map(|item| OutlinedItem {
            object: item.object,
            entry_id: item.entry_id,
            entry_time: item.entry_time,
            list: item.list,
            raw: item.raw.get(),
        })
        .collect();
    meta_items(&items, options, |item, out| {
        Ok(ItemHead::of_valid_into(
            item.object,
            item.entry_id,
            item.entry_time,
            item.list,
            item.raw,
            out,
        ))
    })
}

/// [`meta_messages`] of an outlined body: each item validated as its head is read
/// ([`ItemHead::checked`]); an item that is not JSON fails the split (with serde's error).
pub fn meta_outline_messages(
    outline: &MetaOutline<'_>,
    options: &SplitOptions<'_>,
) -> Result<Split, serde_json::Error> {
    let items: Vec<_> = outline.items().collect();
    meta_items(&items, options, |item, out| {
        ItemHead::checked_into(
            item.object,
            item.entry_id,
            item.entry_time,
            item.list,
            item.raw,
            out,
        )
    })
}

fn meta_items(
    items: &[OutlinedItem<'_>],
    options: &SplitOptions<'_>,
    head: impl Fn(&OutlinedItem<'_>, &mut String) -> Result<Written, serde_json::Error> + Sync,
) -> Result<Split, serde_json::Error> {
    in_parallel(
        items,
        |item| item.raw.len(),
        |item, scratch: &mut Scratch<'_>, out| {
            let Scratch {
                strings: scratch,
                shared,
            } = scratch;
            let head = head(item, scratch)?;
            let (key, conversation) = scratch.split_at(head.key_len);
            let scope = |id: &str| scoped(options.tenant, id.to_owned());
            let (key, conversation) = match options.tenant {
                None => (Cow::Borrowed(key), Cow::Borrowed(conversation)),
                Some(_) => (Cow::Owned(scope(key)), Cow::Owned(scope(conversation))),
            };
            let context = FreshContext::Meta {
                object: item.object,
                entry_id: item.entry_id,
                entry_time: item.entry_time,
                list: item.list,
            };
            let fresh = Fresh {
                platform: Platform::Meta,
                tenant: options.tenant,
                key: &key,
                conversation: &conversation,
                timestamp: head.timestamp,
                received_at: options.received_at,
                context,
                event: item.raw,
            };
            place(
                &fresh,
                shared.of(options.received_at, context),
                options,
                out,
            )
        },
    )
}

/// Fewer events than this are read on the calling thread: below it, handing work to another
/// core costs more than it saves.
const PARALLEL_MIN_EVENTS: usize = 256;

/// Events per run on several cores: each run is written into one buffer of its own.
const RUN_EVENTS: usize = 64;

/// Bytes a message needs beside its event's: envelope fields, key, conversation.
const MESSAGE_OVERHEAD: usize = 512;

/// What a run keeps from one event to the next: room for an event's key and conversation, and
/// the envelope's part that the run's events share.
struct Scratch<'a> {
    strings: String,
    shared: SharedPart<'a>,
}

impl Default for Scratch<'_> {
    /// Made with room for the usual key and conversation (LINE's are about 120 bytes): grown
    /// from nothing they took four allocations each, a tenth of a one-event request's time in
    /// the allocator.
    fn default() -> Self {
        Scratch {
            strings: String::with_capacity(256),
            shared: SharedPart::with_capacity(256),
        }
    }
}

/// Where one message's strings lie in its run's buffer.
struct Placed {
    platform: Platform,
    key: Range<usize>,
    conversation: Range<usize>,
    body: Range<usize>,
}

/// The messages of a run of events, written one after another into one buffer while the run is
/// written, then made messages holding their ranges of it, on the thread that wrote them.
struct Run {
    messages: Vec<QueueMessage>,
    claims: Vec<Claim>,
}

/// One message (and claim) per event, in the events' order; on several cores when there are
/// many events (each event's head, key and envelope depend on that event alone). The messages
/// of a run of events share one buffer: a request's messages live as long as one another, and
/// three allocations of their own per event were most of a large request's time in the
/// allocator, on two threads contending for its locks. The calling thread takes runs too (the
/// pool's threads join as they come: a sleeping one takes 150-350 us to wake on a 2-vCPU VM,
/// where a parallel iterator left the caller waiting for them).
fn in_parallel<T: Sync, S: Default>(
    events: &[T],
    event_len: impl Fn(&T) -> usize + Sync,
    place: impl Fn(&T, &mut S, &mut String) -> Result<(Placed, Option<Claim>), serde_json::Error> + Sync,
) -> Result<Split, serde_json::Error> {
    let run = |events: &[T]| -> Result<Run, serde_json::Error> {
        // What `place` keeps from one event of the run to the next (its scratch strings).
        let mut scratch = S::default();
        let bytes = events.iter().map(|e| event_len(e) + MESSAGE_OVERHEAD).sum();
        let mut buffer = String::with_capacity(bytes);
        let mut placed = Vec::with_capacity(events.len());
        let mut claims = Vec::new();
        for event in events {
            let (event_placed, claim) = place(event, &mut scratch, &mut buffer)?;
            placed.push(event_placed);
            claims.extend(claim);
        }
        Ok(Run {
            messages: messages(buffer, &placed),
            claims,
        })
    };
    if events.len() >= PARALLEL_MIN_EVENTS {
        let mut split = Split {
            messages: Vec::with_capacity(events.len()),
            claims: Vec::new(),
        };
        use std::sync::OnceLock;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let chunks: Vec<&[T]> = events.chunks(RUN_EVENTS).collect();
        let runs: Vec<OnceLock<Result<Run, serde_json::Error>>> =
            chunks.iter().map(|_| OnceLock::new()).collect();
        // The next run to write: each thread takes runs until none is left.
        let next = AtomicUsize::new(0);
        let work = || {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let (Some(chunk), Some(slot)) = (chunks.get(index), runs.get(index)) else {
                    break;
                };
                let _ = slot.set(run(chunk));
            }
        };
        // Pool threads writing runs now. The caller, done with its own runs, waits for theirs
        // awake: blocked in the scope, it took 15-20 us to be woken on this 2-vCPU VM once the
        // last run was written (BENCHMARKS.md). Yielding after a short spin leaves the core to
        // the writer where there is only one.
        let busy = AtomicUsize::new(0);
        rayon::in_place_scope(|scope| {
            // One job less than the pool's threads: the caller writes runs too.
            for _ in 1..rayon::current_num_threads().max(2) {
                scope.spawn(|_| {
                    busy.fetch_add(1, Ordering::AcqRel);
                    // Counted out however the job ends: a count left up would keep the caller
                    // waiting for ever.
                    let _done = Done(&busy);
                    work();
                });
            }
            work();
            let mut spins = 0u32;
            while busy.load(Ordering::Acquire) > 0 {
                if spins < 256 {
                    std::hint::spin_loop();
                    spins += 1;
                } else {
                    std::thread::yield_now();
                }
            }
        });
        for (chunk, written) in chunks.iter().zip(runs) {
            // Every run was taken before the scope returned; were one not, it is written here.
            split.take(written.into_inner().unwrap_or_else(|| run(chunk))?);
        }
        Ok(split)
    } else {
        // One run: its messages are the split's, without a list of their own.
        let Run { messages, claims } = run(events)?;
        Ok(Split { messages, claims })
    }
}

/// Takes one from its count when dropped: a pool job of [`in_parallel`] that has ended.
struct Done<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl Split {
    /// The messages of a run, after those before.
    fn take(&mut self, run: Run) {
        self.messages.extend(run.messages);
        self.claims.extend(run.claims);
    }
}

/// One message per placed event, each holding its ranges of the run's buffer: made on the
/// thread that wrote the run, so that only moving them is left to the caller (taking each
/// message's share of the buffer there was a twentieth of the Meta batch, on one core).
fn messages(buffer: String, placed: &[Placed]) -> Vec<QueueMessage> {
    let shared = Str::from(buffer);
    placed
        .iter()
        .map(|placed| {
            // What `place` wrote: key, conversation and body one after the other, on
            // character boundaries of the buffer.
            QueueMessage::in_text(
                shared.slice(placed.key.start..placed.body.end),
                placed.key.len(),
                placed.key.len() + placed.conversation.len(),
                placed.platform,
            )
        })
        .collect()
}

/// A claim-check object: its name and the event's exact bytes.
type Claim = (String, Bytes);

/// Writes an event's key, conversation and envelope at the end of `out`; an event too large for
/// one queue message goes to the claim-check store and the message carries a pointer to it.
fn place(
    fresh: &Fresh<'_>,
    shared: &str,
    options: &SplitOptions<'_>,
    out: &mut String,
) -> Result<(Placed, Option<Claim>), serde_json::Error> {
    let mut push = |text: &str| {
        let start = out.len();
        out.push_str(text);
        start..out.len()
    };
    let key = push(fresh.key);
    let conversation = push(fresh.conversation);
    let start = out.len();
    if options.refused_chars {
        out.push_str(&fresh.envelope()?.encode_for_sqs()?);
    } else {
        fresh.write_into_sharing(out, shared);
    }
    let mut claim = None;
    if out.len() - start > options.max_message_bytes {
        out.truncate(start);
        let event = fresh.event.as_bytes();
        let sha256 = hex::encode(Sha256::digest(event));
        let key_hash = hex::encode(Sha256::digest(fresh.key.as_bytes()));
        // Named by key and content: a retried request writes the same object again.
        let object = format!("claims/{}-{}", &key_hash[..32], &sha256[..32]);
        let pointer = Envelope {
            claim: Some(ClaimCheck {
                object: object.clone(),
                bytes: event.len(),
                sha256,
            }),
            event: RawValue::NULL,
            ..fresh.envelope()?
        }
        .encode()?;
        out.push_str(&pointer);
        claim = Some((object, Bytes::copy_from_slice(event)));
    }
    let placed = Placed {
        platform: fresh.platform,
        key,
        conversation,
        body: start..out.len(),
    };
    Ok((placed, claim))
}
