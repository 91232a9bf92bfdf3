//! The idempotency store's contract, as one check every adapter's tests run (memory, SQLite,
//! DynamoDB on moto), so that the adapters cannot drift apart.

use crate::ports::{Claim, IdempotencyStore};
use std::time::{SystemTime, UNIX_EPOCH};

/// Checks `store` against the contract of [`IdempotencyStore`]; `prefix` keeps its keys apart
/// from other runs on the same store. Returns the first broken rule.
pub async fn check_idempotency_store(
    store: &dyn IdempotencyStore,
    prefix: &str,
) -> Result<(), String> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    let (hour, minute) = (3_600_000, 60_000);
    let key = |name: &str| format!("{prefix}:{name}");
    let claim = |name: String, in_progress_until: i64, expires_at: i64| async move {
        store
            .claim(&name, now, in_progress_until, expires_at)
            .await
            .map_err(|e| e.to_string())
    };
    let expect = |rule: &str, got: Claim, wanted: Claim| {
        if got == wanted {
            Ok(())
        } else {
            Err(format!("{rule}: got {got:?}, wanted {wanted:?}"))
        }
    };

    let k = key("main");
    expect(
        "a new key is claimed",
        claim(k.clone(), now + minute, now + hour).await?,
        Claim::Claimed,
    )?;
    expect(
        "a live claim is in progress elsewhere, until its expiry",
        claim(k.clone(), now + minute, now + hour).await?,
        Claim::InProgressElsewhere {
            until_ms: now + minute,
        },
    )?;
    store.release(&k).await.map_err(|e| e.to_string())?;
    expect(
        "a released key is claimed again",
        claim(k.clone(), now + minute, now + hour).await?,
        Claim::Claimed,
    )?;
    store
        .complete(&k, now + hour)
        .await
        .map_err(|e| e.to_string())?;
    expect(
        "a completed key is completed",
        claim(k.clone(), now + minute, now + hour).await?,
        Claim::AlreadyCompleted,
    )?;
    store.release(&k).await.map_err(|e| e.to_string())?;
    expect(
        "release leaves a completed record alone",
        claim(k.clone(), now + minute, now + hour).await?,
        Claim::AlreadyCompleted,
    )?;

    let lapsed = key("lapsed");
    expect(
        "claim",
        claim(lapsed.clone(), now - 1, now + hour).await?,
        Claim::Claimed,
    )?;
    expect(
        "a claim past its in-progress expiry is taken over",
        claim(lapsed, now + minute, now + hour).await?,
        Claim::Claimed,
    )?;

    let expired = key("expired");
    expect(
        "claim",
        claim(expired.clone(), now + minute, now + hour).await?,
        Claim::Claimed,
    )?;
    store
        .complete(&expired, now - 5_000)
        .await
        .map_err(|e| e.to_string())?;
    expect(
        "a completed record past its expiry counts as absent, whatever the TTL has done",
        claim(expired, now + minute, now + hour).await?,
        Claim::Claimed,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_store_keeps_the_contract() {
        let store = crate::adapters::memory::MemoryStore::new();
        check_idempotency_store(&store, "memory")
            .await
            .expect("contract");
    }
}
