//! The idempotency store's contract, as one check every adapter's tests run (memory, SQLite,
//! DynamoDB on moto), so that the adapters cannot drift apart.

use crate::ports::{Claim, IdempotencyStore, Release};
use std::time::{SystemTime, UNIX_EPOCH};

/// Checks `store` against the contract of [`IdempotencyStore`]; `prefix` keeps its keys apart
/// from other runs on the same store. Returns the first broken rule.
pub async fn check_idempotency_store(
    store: &dyn IdempotencyStore,
    prefix: &str,
) -> Result<(), String> {
    let now = crate::clock::now_ms();
    let (hour, minute) = (3_600_000, 60_000);
    let key = |name: &str| format!("{prefix}:{name}");
    let claim = |name: String, owner: &'static str, lease_until: i64, expires_at: i64| async move {
        store
            .claim(&name, owner, now, lease_until, expires_at)
            .await
            .map_err(|e| e.to_string())
    };
    let release = |name: String, owner: &'static str, release: Release| async move {
        store
            .release(&name, owner, release)
            .await
            .map_err(|e| e.to_string())
    };
    let retry = || Release::Retry {
        reason: "handler failed".into(),
    };
    let expect = |rule: &str, got: Claim, wanted: Claim| {
        if got == wanted {
            Ok(())
        } else {
            Err(format!("{rule}: got {got:?}, wanted {wanted:?}"))
        }
    };
    let claimed = |attempt| Claim::Claimed { attempt };

    let k = key("main");
    expect(
        "a new key is claimed, attempt 1",
        claim(k.clone(), "a", now + minute, now + hour).await?,
        claimed(1),
    )?;
    expect(
        "a live claim is in progress elsewhere, until its lease ends",
        claim(k.clone(), "b", now + minute, now + hour).await?,
        Claim::InProgressElsewhere {
            until_ms: now + minute,
        },
    )?;
    expect(
        "the owner's own claim, retried after a lost answer, is still its own",
        claim(k.clone(), "a", now + minute, now + hour).await?,
        claimed(1),
    )?;
    release(k.clone(), "a", retry()).await?;
    expect(
        "a released key is claimed again, and counts the failed run",
        claim(k.clone(), "b", now + minute, now + hour).await?,
        claimed(2),
    )?;
    release(k.clone(), "a", retry()).await?;
    expect(
        "a release by someone who no longer holds the claim changes nothing",
        claim(k.clone(), "c", now + minute, now + hour).await?,
        Claim::InProgressElsewhere {
            until_ms: now + minute,
        },
    )?;
    release(k.clone(), "b", retry()).await?;
    expect(
        "failures add up",
        claim(k.clone(), "c", now + minute, now + hour).await?,
        claimed(3),
    )?;
    store
        .complete(&k, now + hour)
        .await
        .map_err(|e| e.to_string())?;
    expect(
        "a completed key is completed",
        claim(k.clone(), "d", now + minute, now + hour).await?,
        Claim::AlreadyCompleted,
    )?;
    release(k.clone(), "c", retry()).await?;
    release(k.clone(), "c", Release::Forget).await?;
    expect(
        "release leaves a completed record alone",
        claim(k.clone(), "d", now + minute, now + hour).await?,
        Claim::AlreadyCompleted,
    )?;

    let forgotten = key("forgotten");
    claim(forgotten.clone(), "a", now + minute, now + hour).await?;
    release(forgotten.clone(), "a", retry()).await?;
    claim(forgotten.clone(), "b", now + minute, now + hour).await?;
    release(forgotten.clone(), "b", Release::Forget).await?;
    expect(
        "a forgotten key (dead-lettered, then redriven) starts over",
        claim(forgotten, "c", now + minute, now + hour).await?,
        claimed(1),
    )?;

    let lapsed = key("lapsed");
    expect(
        "claim",
        claim(lapsed.clone(), "a", now - 1, now + hour).await?,
        claimed(1),
    )?;
    expect(
        "a claim past its lease is taken over",
        claim(lapsed, "b", now + minute, now + hour).await?,
        claimed(1),
    )?;

    let expired = key("expired");
    expect(
        "claim",
        claim(expired.clone(), "a", now + minute, now + hour).await?,
        claimed(1),
    )?;
    store
        .complete(&expired, now - 5_000)
        .await
        .map_err(|e| e.to_string())?;
    expect(
        "a completed record past its expiry counts as absent, whatever the TTL has done",
        claim(expired, "b", now + minute, now + hour).await?,
        claimed(1),
    )?;

    let stale = key("stale-failures");
    claim(stale.clone(), "a", now + minute, now - 5_000).await?;
    release(stale.clone(), "a", retry()).await?;
    expect(
        "an expired record's failures are forgotten with it",
        claim(stale, "b", now + minute, now + hour).await?,
        claimed(1),
    )?;
    Ok(())
}

/// Checks an archive's record store and media store against their ports' contracts:
/// compare-and-swap versions, history order and exclusions, expiry on read, profiles, and media
/// put, get and idempotent delete. `prefix` keeps its conversations apart from other runs.
pub async fn check_archive(
    store: &dyn crate::ports::ArchiveStore,
    media: &dyn crate::ports::MediaStore,
    prefix: &str,
) -> Result<(), String> {
    use crate::archive::{ArchivedProfile, Change, Incoming, Merge, merge};
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default();
    let hour = 3_600_000;
    let conversation = format!("{prefix}:conversation");
    let e = |error: crate::ports::ArchiveError| error.to_string();
    let record = |id: &str, text: &str, at: i64, expires: i64| match merge(
        None,
        &Change::Message(Incoming::text(&conversation, id, text, at)),
        now,
        expires,
    ) {
        Merge::Write(record) => record,
        Merge::Unchanged => unreachable!("a new message is always written"),
    };
    let check = |rule: &str, ok: bool| if ok { Ok(()) } else { Err(rule.to_owned()) };

    // Written out of order; read back in time order.
    for (id, at) in [("m3", 3_000), ("m1", 1_000), ("m2", 2_000)] {
        let written = store
            .save(&record(id, id, at, now + hour), None)
            .await
            .map_err(e)?;
        check("a new record is written", written)?;
    }
    check(
        "a second writer of a new record is refused",
        !store
            .save(&record("m1", "again", 1_000, now + hour), None)
            .await
            .map_err(e)?,
    )?;
    let loaded = store.load(&conversation, "m1").await.map_err(e)?;
    check(
        "a record loads as written",
        loaded.as_ref().and_then(|r| r.text.as_deref()) == Some("m1"),
    )?;
    let mut next = loaded.ok_or("m1 is missing")?;
    next.text = Some("m1 edited".into());
    next.version = 2;
    check(
        "a write at the read version succeeds",
        store.save(&next, Some(1)).await.map_err(e)?,
    )?;
    check(
        "a write at a stale version is refused",
        !store.save(&next, Some(1)).await.map_err(e)?,
    )?;
    check(
        "no record is no record",
        store
            .load(&conversation, "missing")
            .await
            .map_err(e)?
            .is_none(),
    )?;
    // Unsent and expired records are left out of the history.
    let mut unsent = record("m4", "gone", 4_000, now + hour);
    unsent.state = crate::archive::MessageState::Unsent;
    store.save(&unsent, None).await.map_err(e)?;
    store
        .save(&record("m5", "old", 5_000, now - 1), None)
        .await
        .map_err(e)?;
    let history = store.history(&conversation, 100, now).await.map_err(e)?;
    let texts: Vec<_> = history.iter().filter_map(|r| r.text.clone()).collect();
    check(
        &format!("history is in time order without unsent or expired messages: {texts:?}"),
        texts == ["m1 edited", "m2", "m3"],
    )?;
    let first = store.history(&conversation, 2, now).await.map_err(e)?;
    check("history stops at its limit", first.len() == 2)?;

    let profile = |name: &str, expires_at_ms| ArchivedProfile {
        conversation: conversation.clone(),
        user_id: format!("U-{name}"),
        display_name: name.into(),
        picture_url: Some("https://example.com/p.png".into()),
        status_message: None,
        updated_at: now,
        expires_at_ms,
    };
    store
        .save_profile(&profile("taro", now + hour))
        .await
        .map_err(e)?;
    store
        .save_profile(&profile("old", now - 1))
        .await
        .map_err(e)?;
    let mut renamed = profile("taro", now + hour);
    renamed.display_name = "Taro Y.".into();
    store.save_profile(&renamed).await.map_err(e)?;
    let profiles = store.profiles(&conversation, now).await.map_err(e)?;
    check(
        "a profile is replaced, expired ones are left out",
        profiles == vec![renamed],
    )?;

    let key = format!("media/{prefix}/m1/content");
    media
        .put(
            &key,
            "image/jpeg",
            bytes::Bytes::from_static(b"\xff\xd8 jpeg"),
        )
        .await
        .map_err(e)?;
    let got = media.get(&key).await.map_err(e)?;
    check(
        "a media file reads back with its content type",
        got == Some((
            "image/jpeg".into(),
            bytes::Bytes::from_static(b"\xff\xd8 jpeg"),
        )),
    )?;
    media.delete(&key).await.map_err(e)?;
    media.delete(&key).await.map_err(e)?;
    check(
        "a deleted file is gone",
        media.get(&key).await.map_err(e)?.is_none(),
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
