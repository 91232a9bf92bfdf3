//! `chat-gateway archive`: reads the local archive, so that a newcomer can see it work.

use crate::LocalError;
use sha2::{Digest, Sha256};
use shared::adapters::sqlite::SqliteDb;
use shared::adapters::sqlite_archive::SqliteArchive;
use shared::archive::{MediaState, safe_segment};
use shared::clients::fetch::file_extension;
use shared::ports::{ArchiveStore, MediaStore};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// The name of a message's file inside the `--save-media` folder. The message id comes from a
/// payload: it is made a safe, injective segment (no `/`, never `.` or `..`, see
/// [`safe_segment`]) so that no id writes outside the folder or over another message's file.
/// Long names are cut and keep a hash of the id, within file systems' 255-byte limit.
pub fn media_file_name(message_id: &str, role: &str, bytes: &[u8]) -> String {
    const MAX_ID: usize = 160;
    let mut id = safe_segment(message_id);
    if id.len() > MAX_ID {
        let hash = hex::encode(&Sha256::digest(message_id.as_bytes())[..8]);
        id = format!("{}~{hash}", &id[..MAX_ID]);
    }
    let extension = file_extension(bytes)
        .map(|e| format!(".{e}"))
        .unwrap_or_default();
    format!("{id}-{}{extension}", safe_segment(role))
}

/// Content as the terminal may show it: control characters (escape sequences that could retitle
/// the window, clear the screen or fake output) are printed escaped.
fn shown(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

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
            println!("{}  ({messages} messages)", shown(&conversation));
        }
        return Ok(());
    };
    for profile in archive.profiles(conversation, now).await.map_err(error)? {
        println!(
            "profile {}: {}{}{}",
            shown(&profile.user_id),
            shown(&profile.display_name),
            profile
                .status_message
                .map(|s| format!(" \"{}\"", shown(&s)))
                .unwrap_or_default(),
            profile
                .picture_url
                .map(|u| format!(" <{}>", shown(&u)))
                .unwrap_or_default()
        );
    }
    let messages = archive
        .history(conversation, 10_000, now)
        .await
        .map_err(error)?;
    if messages.is_empty() {
        println!("no messages in {}", shown(conversation));
    }
    for message in messages {
        let delivery = message
            .delivery
            .as_ref()
            .map(|d| match d.error_code {
                Some(code) => format!("  ({}, error {code})", shown(&d.status)),
                None => format!("  ({})", shown(&d.status)),
            })
            .unwrap_or_default();
        println!(
            "{:>13}  {:<34} {:<8} {}{}{delivery}",
            message.order_time(),
            shown(message.sender.as_deref().unwrap_or("-")),
            shown(&message.kind),
            shown(message.text.as_deref().unwrap_or("")),
            if message.edited { "  (edited)" } else { "" }
        );
        for media in &message.media {
            let state = match &media.state {
                MediaState::Pending => "pending".to_owned(),
                MediaState::Stored {
                    content_type,
                    bytes,
                } => format!("{content_type}, {bytes} bytes"),
                MediaState::Failed { reason } => format!("failed: {}", shown(reason)),
            };
            println!("{:>15}{}: {state}", "", media.role);
            if let (Some(folder), MediaState::Stored { .. }) = (save_media, &media.state)
                && let Some((_, bytes)) = archive.get(&media.object_key).await.map_err(error)?
            {
                let file = folder.join(media_file_name(&message.message_id, &media.role, &bytes));
                std::fs::create_dir_all(folder)
                    .and_then(|_| std::fs::write(&file, &bytes))
                    .map_err(|e| LocalError(format!("writing {}: {e}", file.display())))?;
                println!("{:>15}saved to {}", "", file.display());
            }
        }
    }
    Ok(())
}
