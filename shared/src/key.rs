//! Deduplication keys and conversation ids: the two strings that the ingress stamps on every
//! queue message and that the worker relies on.
//!
//! A key names one platform event, so that every delivery of it (a LINE redelivery, a Meta retry
//! that was batched differently, an SQS duplicate) is recognised as the same event. Where the
//! platform gives an id, the key is built from it; otherwise it is a SHA-256 over a canonical form
//! of the event, which is the same whatever the key order or white space of the delivery.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::fmt::Write as _;

/// Longest conversation id used as is: SQS FIFO message group ids take at most 128 characters.
pub const MAX_CONVERSATION_LEN: usize = 128;

/// `prefix` + lowercase hex SHA-256 over `parts` (separated by NUL) and the canonical form of
/// `item` (object keys sorted, no white space).
pub fn hashed(prefix: &str, parts: &[&str], item: &Value) -> String {
    let mut canonical = String::new();
    write_canonical(item, &mut canonical);
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher.update(canonical.as_bytes());
    prefixed_hex(prefix, hasher)
}

/// `prefix` + the lowercase hex of the hasher's digest, written in place (`hex::encode` builds
/// its string a character at a time: a tenth of the time of keying a `read` item).
fn prefixed_hex(prefix: &str, hasher: Sha256) -> String {
    let mut hex = [0u8; 64];
    // 32 bytes always fit 64 digits.
    let digits = match hex::encode_to_slice(hasher.finalize(), &mut hex) {
        Ok(()) => std::str::from_utf8(&hex).unwrap_or_default(),
        Err(_) => "",
    };
    [prefix, digits].concat()
}

/// Like [`hashed`], for an item given as JSON text: hashed in its canonical form (object keys
/// sorted, no white space, numbers exactly as written, so integers beyond 64 bits keep their
/// digits) when it can be read as JSON, and byte for byte when it cannot (nesting beyond
/// serde_json's depth limit), so that two different items never share a key. `json` is text
/// serde_json has validated (an event's `RawValue`).
pub fn hashed_json(prefix: &str, parts: &[&str], json: &str) -> String {
    with_canonical(json, |canonical| hash_parts(prefix, parts, canonical))
        .unwrap_or_else(|| hashed_json_serde(prefix, parts, json))
}

/// [`hashed_json`] through serde's reading of every level alone: the definition that its
/// faster reading equals on every input (property tests and fuzz targets).
pub fn hashed_json_serde(prefix: &str, parts: &[&str], json: &str) -> String {
    let mut canonical = String::with_capacity(json.len());
    match write_canonical_text(json, &mut canonical, 0) {
        Ok(()) => hash_parts(prefix, parts, &canonical),
        Err(_) => {
            let mut raw_parts = parts.to_vec();
            raw_parts.push("raw");
            raw_parts.push(json);
            hashed(prefix, &raw_parts, &Value::Null)
        }
    }
}

fn hash_parts(prefix: &str, parts: &[&str], canonical: &str) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    hasher.update(canonical.as_bytes());
    prefixed_hex(prefix, hasher)
}

/// The deepest nesting read in canonical form: serde_json's own limit for a `Value`. Deeper
/// items are hashed byte for byte.
const MAX_DEPTH: usize = 128;

/// Writes JSON text in canonical form, reading it a level at a time as raw values, so that
/// numbers keep their exact text (`serde_json::Value` folds integers beyond 64 bits into floats,
/// which made different values one key).
fn write_canonical_text(
    json: &str,
    out: &mut String,
    depth: usize,
) -> Result<(), serde_json::Error> {
    use serde::de::Error as _;
    use serde_json::value::RawValue;
    use std::collections::BTreeMap;
    if depth > MAX_DEPTH {
        return Err(serde_json::Error::custom("nested too deeply"));
    }
    let json = json.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'));
    match json.as_bytes().first() {
        Some(b'{') => {
            // Keys in byte order; a repeated key keeps its last value, as everywhere else.
            let map: BTreeMap<String, &RawValue> = serde_json::from_str(json)?;
            out.push('{');
            for (index, (name, value)) in map.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_string(&name, out);
                out.push(':');
                write_canonical_text(value.get(), out, depth + 1)?;
            }
            out.push('}');
        }
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_str(json)?;
            out.push('[');
            for (index, item) in items.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical_text(item.get(), out, depth + 1)?;
            }
            out.push(']');
        }
        Some(b'"') => {
            let text: String = serde_json::from_str(json)?;
            write_string(&text, out);
        }
        _ => {
            // A number, `true`, `false` or `null`: checked, then kept as written.
            let _: &RawValue = serde_json::from_str(json)?;
            out.push_str(json);
        }
    }
    Ok(())
}

/// [`write_canonical_text`] for JSON text already validated (the ingress's, checked before any
/// item is keyed), in one pass: each value written as it is read, an object's members sorted
/// only where they came out of order, so no value is walked twice to find where it ends. The
/// same output, or `Unclean` where only the serde reading decides (an escaped key or string,
/// nesting past [`MAX_DEPTH`]). On text that is not JSON: nonsense or `Unclean`, never a panic.
struct Canonical<'a> {
    text: &'a str,
    at: usize,
    /// The members of the objects open now, innermost last: where each one's key lies in
    /// `text`, and where its `"key":value` lies in the output.
    members: &'a mut Vec<Member>,
}

#[derive(Clone, Copy)]
struct Member {
    key: (usize, usize),
    written: (usize, usize),
}

/// The canonical writer's buffers: members, the canonical text, and the copy of an object
/// whose members are put in order.
type Buffers = (Vec<Member>, String, String);

thread_local! {
    /// [`Buffers`] kept from one item to the next: a batch keys hundreds.
    static CANONICAL: std::cell::RefCell<Buffers> =
        const { std::cell::RefCell::new((Vec::new(), String::new(), String::new())) };
}

impl Canonical<'_> {
    fn ws(&mut self) -> Option<u8> {
        self.at = crate::scan::skip_ws(self.text.as_bytes(), self.at);
        self.text.as_bytes().get(self.at).copied()
    }

    /// The key of a member: the text between its quotes, which holds no escape.
    fn key(&mut self) -> Result<(usize, usize), crate::scan::Unclean> {
        use crate::scan::Unclean;
        let start = self.at + 1;
        let end = crate::scan::quote_or_backslash(self.text.as_bytes(), start).ok_or(Unclean)?;
        if self.text.as_bytes().get(end) != Some(&b'"') {
            return Err(Unclean);
        }
        self.at = end + 1;
        Ok((start, end))
    }

    fn value(
        &mut self,
        out: &mut String,
        spare: &mut String,
        depth: usize,
    ) -> Result<(), crate::scan::Unclean> {
        use crate::scan::Unclean;
        if depth > MAX_DEPTH {
            return Err(Unclean);
        }
        let bytes = self.text.as_bytes();
        match self.ws().ok_or(Unclean)? {
            b'{' => {
                self.at += 1;
                out.push('{');
                let base = self.members.len();
                let body = out.len();
                if self.ws() == Some(b'}') {
                    self.at += 1;
                } else {
                    loop {
                        if self.ws() != Some(b'"') {
                            return Err(Unclean);
                        }
                        let key = self.key()?;
                        if self.ws() != Some(b':') {
                            return Err(Unclean);
                        }
                        self.at += 1;
                        let start = out.len();
                        out.push('"');
                        out.push_str(self.text.get(key.0..key.1).ok_or(Unclean)?);
                        out.push_str("\":");
                        self.value(out, spare, depth + 1)?;
                        self.members.push(Member {
                            key,
                            written: (start, out.len()),
                        });
                        match self.ws() {
                            Some(b',') => {
                                self.at += 1;
                                out.push(',');
                            }
                            Some(b'}') => {
                                self.at += 1;
                                break;
                            }
                            _ => return Err(Unclean),
                        }
                    }
                }
                self.sort_members(base, body, out, spare);
                self.members.truncate(base);
                out.push('}');
            }
            b'[' => {
                self.at += 1;
                out.push('[');
                if self.ws() == Some(b']') {
                    self.at += 1;
                } else {
                    loop {
                        self.value(out, spare, depth + 1)?;
                        match self.ws() {
                            Some(b',') => {
                                self.at += 1;
                                out.push(',');
                            }
                            Some(b']') => {
                                self.at += 1;
                                break;
                            }
                            _ => return Err(Unclean),
                        }
                    }
                }
                out.push(']');
            }
            b'"' => {
                let start = self.at;
                self.key()?;
                // Without escapes a string is written back as it came: serde_json escapes only
                // quotes, backslashes and control characters, none of which it can hold.
                out.push_str(self.text.get(start..self.at).ok_or(Unclean)?);
            }
            _ => {
                // A number, `true`, `false` or `null`, kept as written.
                let end = crate::scan::scalar_end(bytes, self.at);
                out.push_str(self.text.get(self.at..end).ok_or(Unclean)?);
                self.at = end;
            }
        }
        Ok(())
    }

    /// The object's members from `base` on, written from `body` in `out`, put in key order; a
    /// repeated key keeps its last value (a stable sort keeps the members of one key in order).
    fn sort_members(&mut self, base: usize, body: usize, out: &mut String, spare: &mut String) {
        let text = self.text;
        let key = |m: &Member| text.get(m.key.0..m.key.1).unwrap_or_default();
        let members = &mut self.members[base..];
        if members.windows(2).all(|w| key(&w[0]) < key(&w[1])) {
            return;
        }
        spare.clear();
        spare.push_str(out.get(body..).unwrap_or_default());
        out.truncate(body);
        members.sort_by(|a, b| key(a).cmp(key(b)));
        let mut first = true;
        for (index, member) in members.iter().enumerate() {
            if members
                .get(index + 1)
                .is_some_and(|next| key(next) == key(member))
            {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            let (start, end) = member.written;
            out.push_str(spare.get(start - body..end - body).unwrap_or_default());
        }
    }
}

/// `json`'s canonical form written by [`Canonical`] into `buffers`' text, then `hashed`; `None`
/// where it is `Unclean`.
fn with_canonical<T>(json: &str, hashed: impl FnOnce(&str) -> T) -> Option<T> {
    let mut fresh = Buffers::default();
    CANONICAL.with(|buffers| {
        // Only a caller inside `hashed` could find them taken; it gets buffers of its own.
        let mut taken = buffers.try_borrow_mut();
        let (members, canonical, spare) = match taken.as_deref_mut() {
            Ok(buffers) => buffers,
            Err(_) => &mut fresh,
        };
        members.clear();
        canonical.clear();
        let mut reader = Canonical {
            text: json,
            at: 0,
            members,
        };
        let written = reader.value(canonical, spare, 0);
        written.ok().map(|()| hashed(canonical))
    })
}

/// Shortens an id that is too long or has characters SQS does not accept in a message group id,
/// by hashing it; ids that fit are kept readable.
pub fn fit_conversation(mut id: String) -> String {
    fit_in_place(&mut id, 0);
    id
}

/// [`fit_conversation`] of the id written at the end of `out`, from `start`.
pub(crate) fn fit_in_place(out: &mut String, start: usize) {
    let id = out.get(start..).unwrap_or_default();
    if !fits_sqs(id) {
        let hashed = hash_id(id);
        out.truncate(start);
        out.push_str(&hashed);
    }
}

/// An id as SQS takes it for a FIFO message group or deduplication id: at most 128 printable
/// ASCII characters. Ids that fit are kept; others are replaced by `h:` + their SHA-256.
pub fn fit_for_sqs(id: &str) -> Cow<'_, str> {
    if fits_sqs(id) {
        Cow::Borrowed(id)
    } else {
        Cow::Owned(hash_id(id))
    }
}

fn fits_sqs(id: &str) -> bool {
    // Every byte checked without stopping early, which the compiler turns into vector code:
    // ids that fit are the rule, and a conversation id is checked for every event.
    !id.is_empty()
        && id.len() <= MAX_CONVERSATION_LEN
        && id.bytes().fold(true, |fits, b| fits & b.is_ascii_graphic())
}

fn hash_id(id: &str) -> String {
    format!("h:{}", hex::encode(Sha256::digest(id.as_bytes())))
}

/// Writes `value` as JSON with object keys in byte order and no white space. Written by hand
/// rather than relying on `serde_json::Value`'s map order, which a dependency could switch to
/// insertion order through serde_json's `preserve_order` feature.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (index, (name, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_string(name, out);
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::String(text) => write_string(text, out),
        // Numbers, booleans and null print the same whatever the input's spelling.
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

fn write_string(text: &str, out: &mut String) {
    // serde_json escapes a string the same way every time: reuse it.
    match serde_json::to_string(text) {
        Ok(escaped) => out.push_str(&escaped),
        Err(_) => out.push_str(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hash_ignores_key_order_and_white_space() {
        let a: Value = serde_json::from_str(r#"{"b":1,"a":{"y":[1,2],"x":"\u00e4"}}"#).unwrap();
        let b: Value =
            serde_json::from_str("{ \"a\" : { \"x\":\"ä\", \"y\": [1, 2] }, \"b\": 1 }").unwrap();
        assert_eq!(hashed("k:", &["p"], &a), hashed("k:", &["p"], &b));
    }

    #[test]
    fn hash_depends_on_parts_and_content() {
        let item = json!({"a": 1});
        let base = hashed("k:", &["page", "1"], &item);
        assert_ne!(base, hashed("k:", &["page", "2"], &item));
        assert_ne!(base, hashed("k:", &["page", "1"], &json!({"a": 2})));
        // Parts are separated, so ("ab","c") and ("a","bc") differ.
        assert_ne!(
            hashed("k:", &["ab", "c"], &item),
            hashed("k:", &["a", "bc"], &item)
        );
        assert!(base.starts_with("k:"));
        assert_eq!(base.len(), 2 + 64);
    }

    #[test]
    fn unreadable_json_is_hashed_byte_for_byte() {
        let deep = |leaf: &str| format!("{}{leaf}{}", "[".repeat(200), "]".repeat(200));
        let a = hashed_json("k:", &["p"], &deep("1"));
        let b = hashed_json("k:", &["p"], &deep("2"));
        assert_ne!(a, b);
        assert_ne!(a, hashed_json("k:", &["p"], "null"));
        assert_eq!(
            hashed_json("k:", &["p"], "{ \"a\": 1 }"),
            hashed_json("k:", &["p"], "{\"a\":1}")
        );
    }

    /// Every mix of compact and spaced, ordered and unordered, nested and repeated members is
    /// written as serde's reading writes it.
    #[test]
    fn canonical_text_equals_the_serde_reading() {
        for text in [
            r#"{"sender":{"id":"1"},"recipient":{"id":"2"},"timestamp":3,"read":{"watermark":4}}"#,
            r#"{"b":{"d":1,"c":[{"z":1,"y":2},{"a":3}]},"a":[]}"#,
            r#"{"b":1,"a":2,"b":3}"#,
            r#"{"a":1,"a":2}"#,
            r#"{"b":{"y":1,"x":2},"a":{"q":{"s":1,"r":2}}}"#,
            r#"{"b":{"x":1}, "a":2}"#,
            r#"{ "b":1,"a":{"d":1,"c":2}}"#,
            r#"{"c":{},"b":[],"a":{"":1,"":2}}"#,
            r#"[{"b":1,"a":2},{"b":[true,false,null],"a":-0.5}]"#,
            r#"{"b":"x","a":"y","c":{"e":"é","d":"🤨"}}"#,
            r#"{"b":1,"a":{"y":2,"x":3},"c":4,"a":{"z":5}}"#,
            "{\"b\":1,\n\"a\":2}",
            r#"{"a":[1,2,{"c":3,"b":4}],"b":0}"#,
            r#"{"b":{"a":1},"a":{"b":{"d":[],"c":{}}}}"#,
        ] {
            assert_eq!(
                hashed_json("k:", &["p"], text),
                hashed_json_serde("k:", &["p"], text),
                "{text}"
            );
        }
    }

    /// Issue 13, defect 8: integers beyond 64 bits were folded to floats in the canonical form,
    /// so different values shared a key.
    #[test]
    fn integers_beyond_64_bits_keep_their_digits() {
        let a = hashed_json("k:", &["p"], r#"{"id":18446744073709551616}"#);
        let b = hashed_json("k:", &["p"], r#"{"id":18446744073709551617}"#);
        assert_ne!(a, b);
        let big = hashed_json("k:", &["p"], r#"{"n":123456789012345678901234567890}"#);
        let bigger = hashed_json("k:", &["p"], r#"{"n":123456789012345678901234567891}"#);
        assert_ne!(big, bigger);
        // Still independent of key order, white space and string escapes.
        assert_eq!(
            hashed_json("k:", &["p"], r#"{"b":[1, 2.50],"a":"\u00e4"}"#),
            hashed_json("k:", &["p"], "{ \"a\" : \"ä\", \"b\": [1,2.50] }")
        );
    }

    #[test]
    fn conversation_ids_that_do_not_fit_are_hashed() {
        assert_eq!(
            fit_conversation("line:U1:user:U2".into()),
            "line:U1:user:U2"
        );
        let long = "x".repeat(200);
        let fitted = fit_conversation(long);
        assert!(fitted.starts_with("h:") && fitted.len() <= MAX_CONVERSATION_LEN);
        assert!(fit_conversation("with space".into()).starts_with("h:"));
        assert!(fit_conversation(String::new()).starts_with("h:"));
        let instagram_mid = format!("meta:{}", "a".repeat(170));
        assert!(fit_for_sqs(&instagram_mid).starts_with("h:"));
        assert_eq!(fit_for_sqs("line:01H"), "line:01H");
    }
}
