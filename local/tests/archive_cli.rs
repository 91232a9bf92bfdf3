//! `chat-gateway archive CONVERSATION --save-media DIR` with message ids chosen by an attacker
//! (issue 15): the id comes from a webhook payload, and used to be joined into the file path, so
//! `../../x` or an absolute path wrote outside DIR. Now every file lands inside DIR, under a name
//! no other message shares, and content with terminal escape sequences prints inert.

use shared::adapters::sqlite::SqliteDb;
use shared::adapters::sqlite_archive::SqliteArchive;
use shared::archive::{Change, Incoming, MediaSource, MediaState, Merge, merge};
use shared::platform::Platform;
use shared::ports::{ArchiveStore, MediaStore};
use std::path::Path;
use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_chat-gateway");
const CONVERSATION: &str = "meta:106000000000001:2460000000000001";
const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00 a small jpeg";

/// Archives a message with id `message_id`, text `text` and one stored image.
async fn archive_message(archive: &SqliteArchive, message_id: &str, text: &str, at: i64) {
    let incoming = Incoming {
        platform: Platform::Meta,
        conversation: CONVERSATION.into(),
        message_id: message_id.into(),
        sender: Some("2460000000000001".into()),
        at,
        edit_number: 0,
        kind: "text".into(),
        text: Some(text.into()),
        event: None,
        media: vec![(
            "attachment-0".into(),
            MediaSource::Url {
                url: "https://scontent.xx.fbcdn.net/a.jpg".into(),
            },
        )],
    };
    let now = shared::clock::now_ms();
    let Merge::Write(mut record) = merge(None, &Change::Message(incoming), now, now + 3_600_000)
    else {
        panic!("a new message is written");
    };
    let key = record.media[0].object_key.clone();
    archive
        .put(&key, "image/jpeg", bytes::Bytes::from_static(JPEG))
        .await
        .expect("put");
    record.media[0].state = MediaState::Stored {
        content_type: "image/jpeg".into(),
        bytes: JPEG.len() as u64,
    };
    assert!(archive.save(&record, None).await.expect("save"));
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[tokio::test]
async fn saved_media_stays_inside_the_folder_whatever_the_message_id() {
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("gateway.db");
    let out = root.path().join("out").join("media");
    let absolute = root.path().join("absolute").display().to_string();
    let ids = [
        "../../escaped".to_owned(),
        absolute.clone(),
        "m_a/b".to_owned(),
        "m_a_b".to_owned(),
        "..".to_owned(),
        "x".repeat(400),
    ];
    {
        let archive = SqliteArchive::new(SqliteDb::open(&data).expect("database"));
        for (i, id) in ids.iter().enumerate() {
            archive_message(
                &archive,
                id,
                "\u{1b}]0;owned\u{7}\u{1b}[2J",
                1_000 + i as i64,
            )
            .await;
        }
    }
    let output = Command::new(BINARY)
        .args(["archive", CONVERSATION, "--save-media"])
        .arg(&out)
        .arg("--data")
        .arg(&data)
        .output()
        .expect("chat-gateway");
    assert!(output.status.success(), "{output:?}");
    let printed = String::from_utf8_lossy(&output.stdout);

    assert!(!root.path().join("escaped-attachment-0").exists());
    assert!(
        !root
            .path()
            .join("out")
            .join("escaped-attachment-0")
            .exists()
    );
    assert!(!Path::new(&format!("{absolute}-attachment-0")).exists());
    assert_eq!(
        files_under(&root.path().join("out")),
        ["media"],
        "nothing beside the folder"
    );
    let saved = files_under(&out);
    assert_eq!(saved.len(), ids.len(), "one file per message: {saved:?}");
    for name in &saved {
        assert!(name.len() <= 255, "{name}");
        assert!(name.ends_with("-attachment-0.jpg"), "{name}");
        assert_eq!(std::fs::read(out.join(name)).expect("read"), JPEG);
    }
    // Terminal control characters in content are shown escaped, not sent to the terminal.
    assert!(!printed.contains('\u{1b}'), "{printed}");
    assert!(printed.contains("\\u{1b}]0;owned"), "{printed}");
}
