//! The core of the chat webhook gateway: everything the Lambda functions (and the local
//! pipeline) share.
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`signature`] | LINE and Meta HMAC-SHA256 signature checks, constant-time, several secrets |
//! | [`line`] | the LINE webhook body, every event and message type, and their helpers |
//! | [`meta`] | Meta webhooks: Messenger, Instagram and WhatsApp envelopes and items |
//! | [`key`] | deduplication keys and conversation ids |
//! | [`platform`] | the [`Platform`] enum and the malformed-body error |
//! | [`envelope`] | the queue message that carries one event from the ingress to the worker |
//! | [`ingress`] | verify, split, enqueue, answer: the ingress, independent of its transport |
//! | [`enqueue`] | a request's messages into a batching queue: per-conversation order on FIFO, retries in the deadline |
//! | [`archive`] | the conversation archive: messages and media kept, edits and unsends applied |
//! | [`worker`] | claim, run the bot once, release or complete: the worker, independent of Lambda |
//! | [`budget`] | an invocation's time divided, and every call bounded inside it |
//! | [`clock`] | the wall clock, injectable (the simulation runs on a virtual one) |
//! | [`bot`] | the [`bot::Bot`] trait bot authors implement, and the event it receives |
//! | [`destinations`] | where the worker hands events for bots outside it: HTTPS (Standard Webhooks), EventBridge, Lambda |
//! | [`clients`] | LINE and Meta API clients with timeouts and retries, for replying |
//! | [`messages`] | typed LINE and Meta message builders, serialised as the APIs expect |
//! | [`ports`] | the traits the functions use: the event queue, the idempotency store, dead letters, claim checks, the archive |
//! | [`adapters`] | the ports over SQS, DynamoDB, S3 and SQLite, and in memory |
//! | [`settings`] | secrets and settings from the environment or a secret source, reloaded in the background |
//! | [`heap`] | the allocator's settings for a request's bursts of buffers, applied at start |
//! | [`telemetry`] | JSON logs and CloudWatch metrics |
//! | [`tenants`] | the channel registry: several LINE channels, pages, accounts and numbers in one deployment |
//! | [`test_bot`] | the bot the gateway's own tests run (`GATEWAY_TEST_BOT=1`), independent of the user's |
//! | `scan` | a few fields read out of validated JSON without building values, containers skipped 64 bytes at a time: the ingress's fast path for event heads and body outlines |
//! | `validating` | the heads' first reading: each item's JSON validated as it is read, in one pass, strings 16 bytes at a time; serde decides wherever it is not sure |
//! | [`json_error`] | JSON errors that name the problem and its place, never a value |
//!
//! The models are forward compatible: an unknown event type, message type, source type,
//! attachment type or enum value becomes an explicit `Unknown` variant holding the raw JSON, and
//! each event is read on its own, beside its exact bytes, so one odd event never costs the others.

pub mod adapters;
pub mod archive;
pub mod bot;
pub mod budget;
pub mod clients;
pub mod clock;
mod compat;
pub mod destinations;
pub mod enqueue;
pub mod envelope;
pub mod heap;
pub mod ingress;
pub mod json_error;
pub mod key;
pub mod line;
pub mod messages;
pub mod meta;
pub mod platform;
pub mod ports;
mod scan;
pub mod settings;
pub mod signature;
pub mod telemetry;
pub mod tenants;
pub mod test_bot;
mod validating;
pub mod worker;

pub use compat::Unknown;
pub use platform::{MalformedBody, Platform};
