//! Where a message's files live in the media store.

/// The media store key of a message's file: one prefix per conversation and message.
pub fn object_key(conversation: &str, message_id: &str, role: &str) -> String {
    format!(
        "media/{}/{}/{}",
        safe_segment(conversation),
        safe_segment(message_id),
        role
    )
}

/// A key segment that is readable and safe in S3 and on file systems, and injective: letters,
/// digits, `-`, `.` and `:` stay; every other byte (`_` itself included) becomes `_XX` in hex, and
/// so does a leading `.`, so that no segment is `.` or `..`; an empty value is `_`. Distinct
/// values never share a segment, so distinct messages never share (or delete) each other's files.
pub fn safe_segment(value: &str) -> String {
    if value.is_empty() {
        return "_".to_owned();
    }
    let mut segment = String::with_capacity(value.len());
    for (i, byte) in value.bytes().enumerate() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b':') || (byte == b'.' && i > 0) {
            segment.push(char::from(byte));
        } else {
            segment.push_str(&format!("_{byte:02X}"));
        }
    }
    segment
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn object_keys_are_safe() {
        assert_eq!(
            object_key("meta:1:2", "m_a/b+c", "attachment-0"),
            "media/meta:1:2/m_5Fa_2Fb_2Bc/attachment-0"
        );
        assert_eq!(
            object_key("line:U1:user:U2", "5124", "content"),
            "media/line:U1:user:U2/5124/content"
        );
        // No segment is `.` or `..`, whatever the id.
        assert_eq!(object_key("..", "..", "content"), "media/_2E./_2E./content");
        assert_eq!(object_key("", "", "content"), "media/_/_/content");
    }

    /// Issue 15: `m_a/b` and `m_a_b` shared a key, so unsending one deleted the other's files.
    #[test]
    fn distinct_messages_never_share_a_key() {
        assert_ne!(
            object_key("c", "m_a/b", "content"),
            object_key("c", "m_a_b", "content")
        );
        assert_ne!(
            object_key("a/b", "c", "content"),
            object_key("a", "b/c", "content")
        );
    }

    proptest! {
        #[test]
        fn the_mapping_is_injective(
            a in ("[a-z_/.:%+ -]{0,6}", "[a-z_/.:%+ -]{0,6}"),
            b in ("[a-z_/.:%+ -]{0,6}", "[a-z_/.:%+ -]{0,6}"),
        ) {
            if a != b {
                prop_assert_ne!(object_key(&a.0, &a.1, "content"), object_key(&b.0, &b.1, "content"));
            }
            let key = object_key(&a.0, &a.1, "content");
            prop_assert!(key.split('/').all(|s| !s.is_empty() && s != "." && s != ".."));
            prop_assert!(key.chars().all(|c| c.is_ascii_alphanumeric() || "/_.:-".contains(c)));
        }
    }
}
