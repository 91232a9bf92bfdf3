//! The lines the local gateway prints: what happened to each event (handled, duplicate, failed
//! and retried, waiting, dead-lettered, with the reason), never its content.

use async_trait::async_trait;
use shared::adapters::sqlite::SqliteQueue;
use shared::bot::{BotError, BotEvent};
use shared::envelope::Envelope;
use shared::ports::{DeadLetterError, DeadLetterQueue};
use shared::worker::{BatchReport, QueueRecord, RecordOutcome, WorkerConfig};
use std::time::Duration;

/// `platform key (conversation)` of a queued record, from its envelope.
fn describe(record: &QueueRecord) -> String {
    match Envelope::decode(&record.body) {
        Ok(envelope) => format!(
            "{:<5} {}  ({})",
            envelope.platform.as_str(),
            envelope.key,
            envelope.conversation
        ),
        Err(_) => format!("message {} (not an event envelope)", record.message_id),
    }
}

/// The line for an event the bot ran on.
pub fn bot_ran(event: &BotEvent, result: &Result<(), BotError>) {
    let what = format!(
        "{:<5} {:<24} {}  ({})",
        event.platform.as_str(),
        event.type_name(),
        event.key,
        event.conversation
    );
    match result {
        Ok(()) => println!("handled       {what}"),
        Err(error) => println!("failed        {what}: {error}"),
    }
}

/// The lines for what the worker decided without (or after) running the bot.
pub fn outcomes(
    records: &[QueueRecord],
    report: &BatchReport,
    visibility: Duration,
    max_attempts: u32,
) {
    for (id, outcome) in &report.outcomes {
        let Some(record) = records.iter().find(|r| &r.message_id == id) else {
            continue;
        };
        let what = describe(record);
        match outcome {
            RecordOutcome::Duplicate => {
                println!("duplicate     {what}: already handled, not run again")
            }
            RecordOutcome::Failed => println!(
                "retrying      {what}: attempt {} of {max_attempts} failed; again in {} s",
                record.receive_count.max(1),
                visibility.as_secs().max(1)
            ),
            RecordOutcome::InProgressElsewhere | RecordOutcome::Blocked => {
                println!("waiting       {what}: behind another run of its conversation")
            }
            RecordOutcome::OutOfTime => {
                println!("waiting       {what}: no time left in this batch")
            }
            RecordOutcome::Poison => println!("poison        {what}"),
            // Handled: printed by the bot's wrapper; dead-lettered: by PrintingDeadLetters.
            RecordOutcome::Handled | RecordOutcome::DeadLettered => {}
        }
    }
}

/// The dead-letter state of the local queue, printing each event put there with the reason.
pub struct PrintingDeadLetters {
    pub inner: SqliteQueue,
    pub quiet: bool,
}

#[async_trait]
impl DeadLetterQueue for PrintingDeadLetters {
    async fn dead_letter(&self, record: &QueueRecord, reason: &str) -> Result<(), DeadLetterError> {
        self.inner.dead_letter(record, reason).await?;
        if !self.quiet {
            println!(
                "dead-lettered {}: {reason}  (chat-gateway dead-letters; chat-gateway redrive)",
                describe(record)
            );
        }
        Ok(())
    }
}

/// A warning when a visibility timeout leaves the worker too little time to run a handler: each
/// event would run out of time, again and again, until it is dead-lettered.
pub fn visibility_warning(config: &WorkerConfig, visibility: Duration) -> Option<String> {
    let now = tokio::time::Instant::now();
    let budget = shared::budget::Budget::new(&config.budget, now, now + visibility);
    let handler_time = budget.handlers_by.saturating_duration_since(now);
    (handler_time < Duration::from_millis(1500)).then(|| {
        format!(
            "warning: a visibility timeout of {} ms leaves handlers {} ms (the worker keeps the rest \
             to record outcomes); a bot calling LINE or Meta needs more, and events that run out of \
             time are retried and then dead-lettered. Use at least 3000.",
            visibility.as_millis(),
            handler_time.as_millis()
        )
    })
}
