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

/// Keeps keys readable and safe in S3 and file systems: other characters become `_`.
fn safe_segment(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_keys_are_safe() {
        assert_eq!(
            object_key("meta:1:2", "m_a/b+c", "attachment-0"),
            "media/meta:1:2/m_a_b_c/attachment-0"
        );
    }
}
