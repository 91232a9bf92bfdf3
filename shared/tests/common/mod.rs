//! Helpers shared by the property tests.

/// `body` with one byte deleted, inserted or replaced (by `byte`), at `at` modulo its length;
/// `edit` picks which.
pub fn edited(body: &str, edit: u8, at: usize, byte: u8) -> Vec<u8> {
    let mut bytes = body.as_bytes().to_vec();
    if bytes.is_empty() {
        return bytes;
    }
    let at = at % bytes.len();
    match edit % 3 {
        0 => {
            bytes.remove(at);
        }
        1 => bytes.insert(at, byte),
        _ => bytes[at] = byte,
    }
    bytes
}
