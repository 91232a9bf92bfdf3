//! What happened to each record of a batch.

/// What happened to one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    /// The handler ran and succeeded.
    Handled,
    /// The key was completed before: acknowledged without running the handler.
    Duplicate,
    /// The worker put it in the dead-letter queue itself (not an envelope, or out of attempts),
    /// with the reason, and acknowledged it.
    DeadLettered,
    /// Not an envelope, and no dead-letter queue took it: reported failed, for the queue's own
    /// redrive.
    Poison,
    /// Another invocation holds the key: reported failed, retried later.
    InProgressElsewhere,
    /// The handler failed, panicked or timed out, or the store failed: reported failed.
    Failed,
    /// FIFO: an earlier record of the group failed, so this one was not run.
    Blocked,
    /// Too little time left in the invocation to start it.
    OutOfTime,
}

impl RecordOutcome {
    /// True when the record must be reported as a batch item failure.
    pub fn is_failure(&self) -> bool {
        !matches!(
            self,
            RecordOutcome::Handled | RecordOutcome::Duplicate | RecordOutcome::DeadLettered
        )
    }

    pub fn label(&self) -> &'static str {
        match self {
            RecordOutcome::Handled => "handled",
            RecordOutcome::Duplicate => "duplicate",
            RecordOutcome::DeadLettered => "dead_lettered",
            RecordOutcome::Poison => "poison",
            RecordOutcome::InProgressElsewhere => "in_progress_elsewhere",
            RecordOutcome::Failed => "failed",
            RecordOutcome::Blocked => "blocked",
            RecordOutcome::OutOfTime => "out_of_time",
        }
    }
}

/// The outcome of a batch: every record's, in the batch's order.
#[derive(Debug, Clone, Default)]
pub struct BatchReport {
    pub outcomes: Vec<(String, RecordOutcome)>,
}

impl BatchReport {
    /// The message ids to report as batch item failures.
    pub fn failed_message_ids(&self) -> Vec<String> {
        self.outcomes
            .iter()
            .filter(|(_, outcome)| outcome.is_failure())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// How many records ended with `outcome`.
    pub fn count(&self, outcome: &RecordOutcome) -> usize {
        self.outcomes.iter().filter(|(_, o)| o == outcome).count()
    }
}
