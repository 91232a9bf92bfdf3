//! `chat-gateway archive`: reads the local archive, so that a newcomer can see it work.

use crate::LocalError;
use shared::adapters::sqlite::SqliteDb;
use shared::adapters::sqlite_archive::SqliteArchive;
use shared::archive::MediaState;
use shared::ports::{ArchiveStore, MediaStore};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Prints the conversations, or one conversation's profiles and messages (oldest first); with
/// `save_media`, writes its media files there.
pub async fn print_archive(
    data: &Path,
    conversation: Option<&str>,
    save_media: Option<&Path>,
) -> Result<(), LocalError> {
    let db = SqliteDb::open(data).map_err(|e| LocalError(e.to_string()))?;
    let archive = SqliteArchive::new(db);
    let error = |e: shared::ports::ArchiveError| LocalError(e.to_string());
    let now = now_ms();
    let Some(conversation) = conversation else {
        let conversations = archive.conversations(now).await.map_err(error)?;
        if conversations.is_empty() {
            println!(
                "the archive is empty: send a message (chat-gateway send events/line-text-message.json)"
            );
        }
        for (conversation, messages) in conversations {
            println!("{conversation}  ({messages} messages)");
        }
        return Ok(());
    };
    for profile in archive.profiles(conversation, now).await.map_err(error)? {
        println!(
            "profile {}: {}{}{}",
            profile.user_id,
            profile.display_name,
            profile
                .status_message
                .map(|s| format!(" \"{s}\""))
                .unwrap_or_default(),
            profile
                .picture_url
                .map(|u| format!(" <{u}>"))
                .unwrap_or_default()
        );
    }
    let messages = archive
        .history(conversation, 10_000, now)
        .await
        .map_err(error)?;
    if messages.is_empty() {
        println!("no messages in {conversation}");
    }
    for message in messages {
        println!(
            "{:>13}  {:<34} {:<8} {}{}",
            message.order_time(),
            message.sender.as_deref().unwrap_or("-"),
            message.kind,
            message.text.as_deref().unwrap_or(""),
            if message.edited { "  (edited)" } else { "" }
        );
        for media in &message.media {
            let state = match &media.state {
                MediaState::Pending => "pending".to_owned(),
                MediaState::Stored {
                    content_type,
                    bytes,
                } => format!("{content_type}, {bytes} bytes"),
                MediaState::Failed { reason } => format!("failed: {reason}"),
            };
            println!("{:>15}{}: {state}", "", media.role);
            if let (Some(folder), MediaState::Stored { .. }) = (save_media, &media.state)
                && let Some((_, bytes)) = archive.get(&media.object_key).await.map_err(error)?
            {
                let file = folder.join(format!("{}-{}", message.message_id, media.role));
                std::fs::create_dir_all(folder)
                    .and_then(|_| std::fs::write(&file, &bytes))
                    .map_err(|e| LocalError(format!("writing {}: {e}", file.display())))?;
                println!("{:>15}saved to {}", "", file.display());
            }
        }
    }
    Ok(())
}
