//! Reading a few fields out of JSON text that serde_json has already validated, without building
//! values: the ingress's fast path for event heads (issue 20).
//!
//! The heads are defined by serde: structs with lenient field readers ([`crate::compat::lenient`])
//! read through `serde_json`. Each lenient reader first reads its field as a `serde_json::Value`,
//! which fails on a few inputs that are valid JSON (a number beyond `f64`, an unpaired surrogate
//! escape, nesting beyond 128 levels), and serde refuses a struct that names one of its fields
//! twice. Those inputs change what serde reads in ways not worth copying, so this reader calls
//! them [`Unclean`] and the caller reads the item the serde way instead. On every other input
//! the two readings are equal, which the property tests and fuzz targets check.
//!
//! Every function here assumes its text is one valid JSON value; on other text it returns
//! nonsense or `Unclean`, never panics.

mod blocks;

use std::borrow::Cow;

/// The item holds something the fast reading leaves to serde (see the module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unclean;

/// Nesting deeper than this in a field the heads read is left to serde (its limit is 128).
const MAX_DEPTH: usize = 100;
/// Longer numbers are left to serde: only their length could make an `f64` overflow.
const MAX_NUMBER_LEN: usize = 300;

/// The kind of a JSON value, from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Object,
    Array,
    String,
    Number,
    Bool(bool),
    Null,
}

/// The text of one valid JSON value, without surrounding white space; with the [`Spans`] of
/// the item it is part of, when the item was checked whole.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Json<'a>(pub(crate) &'a str, Option<&'a Spans>);

impl<'a> Json<'a> {
    /// The value of validated JSON text (surrounding white space trimmed).
    pub(crate) fn new(text: &'a str) -> Json<'a> {
        Json(text.trim_matches(is_ws_char), None)
    }

    /// The value of an item checked whole ([`Spans::check`] of the same text): its fields need
    /// no check of their own, and nested values are skipped by lookup.
    pub(crate) fn checked(text: &'a str, spans: &'a Spans) -> Json<'a> {
        Json(text.trim_matches(is_ws_char), Some(spans))
    }

    /// The end of the value that starts at `start` in this value's text.
    fn value_end(self, start: usize) -> usize {
        let bytes = self.0.as_bytes();
        if let (Some(spans), Some(b'{' | b'[')) = (self.1, bytes.get(start))
            && let Some(end) = spans.end(self.0, start)
        {
            return end;
        }
        value_end(bytes, start)
    }

    pub(crate) fn kind(self) -> Kind {
        match self.0.as_bytes().first() {
            Some(b'{') => Kind::Object,
            Some(b'[') => Kind::Array,
            Some(b'"') => Kind::String,
            Some(b't') => Kind::Bool(true),
            Some(b'f') => Kind::Bool(false),
            Some(b'n') => Kind::Null,
            _ => Kind::Number,
        }
    }

    /// The members of an object, in order; empty for any other value. A key written with an
    /// escape is [`Unclean`].
    pub(crate) fn members(self) -> Members<'a> {
        Members {
            json: self,
            text: self.0,
            at: if self.kind() == Kind::Object {
                1
            } else {
                self.0.len()
            },
        }
    }

    /// The items of an array, in order; empty for any other value.
    pub(crate) fn items(self) -> Items<'a> {
        Items {
            json: self,
            text: self.0,
            at: if self.kind() == Kind::Array {
                1
            } else {
                self.0.len()
            },
        }
    }

    /// A string's text, unescaped; `None` for any other value.
    pub(crate) fn string(self) -> Result<Option<Cow<'a, str>>, Unclean> {
        if self.kind() != Kind::String || self.0.len() < 2 {
            return Ok(None);
        }
        let inner = &self.0[1..self.0.len() - 1];
        // Most strings a head reads are ids: shorter than memchr's setup pays for.
        if !inner.as_bytes().contains(&b'\\') {
            return Ok(Some(Cow::Borrowed(inner)));
        }
        serde_json::from_str::<String>(self.0)
            .map(|text| Some(Cow::Owned(text)))
            .map_err(|_| Unclean)
    }

    /// Checks that serde_json reads this value as a `Value` the way the fast reading assumes:
    /// every `\u` escape a character or a surrogate pair, no number near `f64`'s range, nesting
    /// within [`MAX_DEPTH`].
    pub(crate) fn check(self) -> Result<Json<'a>, Unclean> {
        let mut depth = 0usize;
        walk_checked(self.0.as_bytes(), |_, opens| {
            if opens {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Unclean);
                }
            } else {
                depth = depth.saturating_sub(1);
            }
            Ok(())
        })?;
        Ok(self)
    }
}

/// Walks valid JSON text checking every string and number as [`Json::check`] says, and hands
/// each bracket to `bracket`: its offset, and whether it opens an object or array.
fn walk_checked(
    bytes: &[u8],
    mut bracket: impl FnMut(usize, bool) -> Result<(), Unclean>,
) -> Result<(), Unclean> {
    let mut at = 0;
    while at < bytes.len() {
        if !CHECKED[bytes[at] as usize] {
            at += 1;
            continue;
        }
        match bytes[at] {
            b'{' | b'[' => {
                bracket(at, true)?;
                at += 1;
            }
            b'}' | b']' => {
                bracket(at, false)?;
                at += 1;
            }
            b'"' => at = check_string(bytes, at)?,
            _ => at = check_number(bytes, at)?,
        }
    }
    Ok(())
}

/// Where each object and array of an item ends, found in the one pass that checks the whole
/// item ([`Spans::check`]). Reading a head visits values nested three or four deep; walking each
/// one's text again at every level to find where it ends was most of the heads' time.
#[derive(Debug)]
pub(crate) struct Spans {
    /// The address of the item's text: a value's place is its offset from it.
    base: usize,
    /// Offsets of each `{` or `[` and one past its closing byte, in the order they open.
    ends: Vec<(u32, u32)>,
}

impl Spans {
    /// Checks a whole item as [`Json::check`] checks a value, and records where its objects and
    /// arrays end.
    pub(crate) fn check(text: &str) -> Result<Spans, Unclean> {
        let bytes = text.as_bytes();
        if u32::try_from(bytes.len()).is_err() {
            return Err(Unclean);
        }
        let mut ends: Vec<(u32, u32)> = Vec::new();
        let mut open: Vec<usize> = Vec::new();
        walk_checked(bytes, |at, opens| {
            if opens {
                if open.len() >= MAX_DEPTH {
                    return Err(Unclean);
                }
                open.push(ends.len());
                ends.push((at as u32, 0));
            } else if let Some(index) = open.pop() {
                ends[index].1 = at as u32 + 1;
            }
            Ok(())
        })?;
        Ok(Spans {
            base: text.as_ptr() as usize,
            ends,
        })
    }

    /// The end, in `text`'s offsets, of the object or array opening at `start` of `text` (a
    /// slice of the checked item).
    fn end(&self, text: &str, start: usize) -> Option<usize> {
        let offset = (text.as_ptr() as usize).checked_sub(self.base)?;
        let open = u32::try_from(offset + start).ok()?;
        let index = self.ends.binary_search_by_key(&open, |span| span.0).ok()?;
        (self.ends[index].1 as usize).checked_sub(offset)
    }
}

/// Iterator over an object's members; see [`Json::members`].
pub(crate) struct Members<'a> {
    json: Json<'a>,
    text: &'a str,
    at: usize,
}

impl<'a> Iterator for Members<'a> {
    type Item = Result<(&'a str, Json<'a>), Unclean>;

    fn next(&mut self) -> Option<Self::Item> {
        let bytes = self.text.as_bytes();
        let start = skip_ws(bytes, self.at);
        if bytes.get(start) != Some(&b'"') {
            self.at = bytes.len();
            return None;
        }
        let (key_end, escaped) = string_end_escaped(bytes, start);
        let key = self.text.get(start + 1..key_end.saturating_sub(1))?;
        if escaped {
            self.at = bytes.len();
            return Some(Err(Unclean));
        }
        // `:` after the key.
        let value_start = skip_ws(bytes, skip_ws(bytes, key_end) + 1);
        let value_end = self.json.value_end(value_start);
        let value = Json(self.text.get(value_start..value_end)?, self.json.1);
        // `,` or `}` after the value.
        self.at = skip_ws(bytes, value_end) + 1;
        Some(Ok((key, value)))
    }
}

/// Iterator over an array's items; see [`Json::items`].
pub(crate) struct Items<'a> {
    json: Json<'a>,
    text: &'a str,
    at: usize,
}

impl<'a> Iterator for Items<'a> {
    type Item = Json<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let bytes = self.text.as_bytes();
        let start = skip_ws(bytes, self.at);
        if start >= bytes.len() || bytes[start] == b']' {
            self.at = bytes.len();
            return None;
        }
        let end = self.json.value_end(start);
        self.at = skip_ws(bytes, end) + 1;
        self.text
            .get(start..end)
            .map(|text| Json(text, self.json.1))
    }
}

/// Those, and the bytes a number starts with.
static CHECKED: [bool; 256] = byte_set(b"{}[]\"-0123456789");

const fn byte_set(members: &[u8]) -> [bool; 256] {
    let mut set = [false; 256];
    let mut index = 0;
    while index < members.len() {
        set[members[index] as usize] = true;
        index += 1;
    }
    set
}

fn is_ws_char(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

pub(crate) fn skip_ws(bytes: &[u8], mut at: usize) -> usize {
    while at < bytes.len() && matches!(bytes[at], b' ' | b'\t' | b'\n' | b'\r') {
        at += 1;
    }
    at
}

/// The end (one past the closing quote) of the string starting at `start`.
#[inline]
fn string_end(bytes: &[u8], start: usize) -> usize {
    string_end_escaped(bytes, start).0
}

/// [`string_end`], and whether the string holds an escape.
#[inline]
pub(crate) fn string_end_escaped(bytes: &[u8], start: usize) -> (usize, bool) {
    let (mut at, mut escaped) = (start + 1, false);
    while let Some(found) = quote_or_backslash(bytes, at) {
        if bytes[found] == b'\\' {
            at = found + 2;
            escaped = true;
        } else {
            return (found + 1, escaped);
        }
    }
    (bytes.len(), escaped)
}

/// The next `"` or `\` at or after `from`: eight bytes at a time, then memchr for long strings
/// (most strings of an event are short, where memchr's setup costs more than it saves).
#[inline]
pub(crate) fn quote_or_backslash(bytes: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    while let Some(word) = word_at(bytes, at) {
        let found = zero_bytes(word ^ splat(b'"')) | zero_bytes(word ^ splat(b'\\'));
        if found != 0 {
            return Some(at + first_byte(found));
        }
        at += 8;
        if at - from >= 64 {
            return memchr::memchr2(b'"', b'\\', bytes.get(at..)?).map(|found| at + found);
        }
    }
    bytes
        .get(at..)?
        .iter()
        .position(|b| matches!(b, b'"' | b'\\'))
        .map(|found| at + found)
}

/// True when `text` holds a byte that serde_json escapes in a string (a control character, `"`
/// or `\\`); eight bytes at a time, as the envelope's short strings mostly need none.
pub(crate) fn needs_escape(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut at = 0;
    while let Some(word) = word_at(bytes, at) {
        // Flags set only where some byte is below 0x20 (the first flag is exact, see
        // `zero_bytes`), so any flag means one is there.
        let control = word.wrapping_sub(splat(0x20)) & !word & splat(0x80);
        if control | zero_bytes(word ^ splat(b'"')) | zero_bytes(word ^ splat(b'\\')) != 0 {
            return true;
        }
        at += 8;
    }
    bytes[at..]
        .iter()
        .any(|b| *b < 0x20 || matches!(b, b'"' | b'\\'))
}

/// Eight bytes at `at`, little-endian; `None` where fewer remain.
#[inline]
fn word_at(bytes: &[u8], at: usize) -> Option<u64> {
    let chunk: [u8; 8] = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(chunk))
}

#[inline]
fn splat(byte: u8) -> u64 {
    u64::from(byte) * 0x0101_0101_0101_0101
}

/// The high bit of each zero byte of `word`. Bytes above the first zero byte may be flagged
/// wrongly (a borrow), the first never is: only [`first_byte`] of it is used.
#[inline]
fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(splat(1)) & !word & splat(0x80)
}

/// The index of the first flagged byte.
#[inline]
fn first_byte(flags: u64) -> usize {
    (flags.trailing_zeros() / 8) as usize
}

/// The end of a number or literal starting at `start`.
pub(crate) fn scalar_end(bytes: &[u8], start: usize) -> usize {
    let mut at = start;
    while at < bytes.len()
        && !matches!(
            bytes[at],
            b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r' | b':'
        )
    {
        at += 1;
    }
    at
}

/// The end of the value starting at `start`.
pub(crate) fn value_end(bytes: &[u8], start: usize) -> usize {
    match bytes.get(start) {
        Some(b'"') => string_end(bytes, start),
        Some(b'{' | b'[') => blocks::container_end(bytes, start),
        Some(_) => scalar_end(bytes, start),
        None => start,
    }
}

/// The end of the string at `start`, checking that every `\u` escape in it is a character or
/// a surrogate pair (serde_json refuses unpaired surrogates in a `Value`).
fn check_string(bytes: &[u8], start: usize) -> Result<usize, Unclean> {
    let mut at = start + 1;
    while let Some(found) = quote_or_backslash(bytes, at) {
        at = found;
        if bytes[at] == b'"' {
            return Ok(at + 1);
        }
        if bytes.get(at + 1) != Some(&b'u') {
            at += 2;
            continue;
        }
        let unit = hex4(bytes, at + 2).ok_or(Unclean)?;
        match unit {
            0xD800..=0xDBFF => {
                let low = (bytes.get(at + 6..at + 8) == Some(b"\\u"))
                    .then(|| hex4(bytes, at + 8))
                    .flatten();
                if !matches!(low, Some(0xDC00..=0xDFFF)) {
                    return Err(Unclean);
                }
                at += 12;
            }
            0xDC00..=0xDFFF => return Err(Unclean),
            _ => at += 6,
        }
    }
    Err(Unclean)
}

/// The end of the number at `at`, unless serde could read it differently: too long to be
/// sure of `f64`'s range, or with an exponent.
fn check_number(bytes: &[u8], at: usize) -> Result<usize, Unclean> {
    let end = scalar_end(bytes, at);
    let number = &bytes[at..end];
    if number.len() > MAX_NUMBER_LEN || number.iter().any(|b| matches!(b, b'e' | b'E')) {
        return Err(Unclean);
    }
    Ok(end)
}

fn hex4(bytes: &[u8], at: usize) -> Option<u16> {
    let digits = std::str::from_utf8(bytes.get(at..at + 4)?).ok()?;
    u16::from_str_radix(digits, 16).ok()
}

/// The lenient readings of [`crate::compat::lenient`], on a value inside a field that
/// [`top_level`] has checked.
pub(crate) mod lenient {
    use super::{Json, Kind, Unclean};

    /// `lenient::option::<String>`.
    pub(crate) fn string(value: Json<'_>) -> Result<Option<String>, Unclean> {
        Ok(value.string()?.map(|text| text.into_owned()))
    }

    /// `lenient::number`.
    pub(crate) fn number(value: Json<'_>) -> Result<Option<i64>, Unclean> {
        Ok(match value.kind() {
            Kind::Number => {
                let number: serde_json::Value =
                    serde_json::from_str(value.0).map_err(|_| Unclean)?;
                crate::compat::lenient::whole_number(&number)
            }
            Kind::String => value
                .string()?
                .and_then(|text| crate::compat::lenient::whole_number_text(&text)),
            _ => None,
        })
    }

    /// `lenient::id`.
    pub(crate) fn id(value: Json<'_>) -> Result<Option<String>, Unclean> {
        Ok(match value.kind() {
            Kind::String => value.string()?.map(|text| text.into_owned()),
            Kind::Number => Some(
                serde_json::from_str::<serde_json::Number>(value.0)
                    .map_err(|_| Unclean)?
                    .to_string(),
            ),
            _ => None,
        })
    }

    /// `lenient::flag`.
    pub(crate) fn flag(value: Json<'_>) -> Result<bool, Unclean> {
        Ok(match value.kind() {
            Kind::Bool(flag) => flag,
            Kind::String => value
                .string()?
                .is_some_and(|text| text.eq_ignore_ascii_case("true")),
            _ => false,
        })
    }

    /// `lenient::option::<T>` for a struct `T` whose fields are all lenient: read from an
    /// object (a repeated member: the last one, as `serde_json::Value` keeps it); absent for
    /// anything else.
    pub(crate) fn object<'a, T: Default>(
        value: Json<'a>,
        mut field: impl FnMut(&mut T, &'a str, Json<'a>) -> Result<(), Unclean>,
    ) -> Result<Option<T>, Unclean> {
        if value.kind() != Kind::Object {
            return Ok(None);
        }
        let mut read = T::default();
        for member in value.members() {
            let (key, item) = member?;
            field(&mut read, key, item)?;
        }
        Ok(Some(read))
    }

    /// `lenient::list::<T>` for such a struct: its objects, in order; an array among them is
    /// left to serde (which reads a struct from an array by position).
    pub(crate) fn list<'a, T: Default>(
        value: Json<'a>,
        mut field: impl FnMut(&mut T, &'a str, Json<'a>) -> Result<(), Unclean>,
    ) -> Result<Vec<T>, Unclean> {
        let mut list = Vec::new();
        for item in value.items() {
            match item.kind() {
                Kind::Object => {
                    if let Some(read) = object(item, &mut field)? {
                        list.push(read);
                    }
                }
                Kind::Array => return Err(Unclean),
                _ => {}
            }
        }
        Ok(list)
    }
}

/// The members of a top-level head struct, read as serde reads a struct from text: a field
/// named twice is an error there, so it is [`Unclean`] here. Each field found is checked
/// ([`Json::check`]): serde reads it as a `Value` first.
pub(crate) fn top_level<'a, const N: usize>(
    value: Json<'a>,
    names: [&str; N],
) -> Result<[Option<Json<'a>>; N], Unclean> {
    let mut found = [None; N];
    for member in value.members() {
        let (key, item) = member?;
        if let Some(index) = names.iter().position(|name| *name == key) {
            if found[index].is_some() {
                return Err(Unclean);
            }
            found[index] = Some(if value.1.is_some() {
                item
            } else {
                item.check()?
            });
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_and_items_of_nested_values() {
        let json = Json::new(r#" {"a" : [1, {"b":"x\"}"}, "c"], "d":{"e":null} , "f":-1.5} "#);
        let members: Vec<_> = json
            .members()
            .map(|m| m.map(|(k, v)| (k, v.0)))
            .collect::<Result<_, _>>()
            .expect("clean");
        assert_eq!(
            members,
            [
                ("a", r#"[1, {"b":"x\"}"}, "c"]"#),
                ("d", r#"{"e":null}"#),
                ("f", "-1.5")
            ]
        );
        let items: Vec<_> = Json::new(members[0].1).items().map(|i| i.0).collect();
        assert_eq!(items, ["1", r#"{"b":"x\"}"}"#, r#""c""#]);
        assert_eq!(Json::new("{}").members().count(), 0);
        assert_eq!(Json::new("[ ]").items().count(), 0);
    }

    proptest::proptest! {
        /// The word-at-a-time searches find what a byte-by-byte search finds, at every offset,
        /// with bytes that differ from the ones searched for by one bit and UTF-8 high bytes.
        #[test]
        fn word_searches_find_the_first_byte_a_plain_search_finds(
            bytes in proptest::collection::vec(proptest::sample::select(
                b"\"\\{}[]a\x02\x7a\x7c\x5a\x5c\xdb\xdd\xfb\xfd\xa2\x80\xff".to_vec()), 0..200),
            from in 0..210usize,
            run in 0..150usize,
        ) {
            // A long run without a match first: the memchr path of long strings.
            let bytes = [vec![b'a'; run], bytes].concat();
            let from = from.min(bytes.len());
            let plain = |set: &[u8]| bytes.get(from..).and_then(|rest| rest.iter().position(|b| set.contains(b))).map(|at| from + at);
            proptest::prop_assert_eq!(quote_or_backslash(&bytes, from), plain(b"\"\\"));
        }

        /// The word-at-a-time test finds what serde_json escapes, wherever it is.
        #[test]
        fn needs_escape_is_what_serde_escapes(text in "[a-z\\x00-\\x21\"\\\\ä\\u{7f}\\u{1f600}]{0,40}") {
            let escaped = serde_json::to_string(&text).expect("a string");
            proptest::prop_assert_eq!(needs_escape(&text), escaped.len() != text.len() + 2);
        }
    }

    #[test]
    fn spans_end_every_nested_value_where_walking_ends_it() {
        let text = r#" {"a" : [1, {"b":"x\"}]"}, [ ]], "d":{"e":{"f":[{}]}} , "g":"}"} "#;
        let spans = Spans::check(text).expect("clean");
        let json = Json::checked(text, &spans);
        let bytes = json.0.as_bytes();
        let mut containers = 0;
        for start in 0..bytes.len() {
            if matches!(bytes[start], b'{' | b'[') && spans.end(json.0, start).is_some() {
                containers += 1;
                assert_eq!(json.value_end(start), value_end(bytes, start), "at {start}");
            }
        }
        assert_eq!(containers, 8, "brackets inside strings are not containers");
        assert!(Spans::check(&"[".repeat(101)).is_err());
        assert!(Spans::check(r#"{"unread":"\udc00"}"#).is_err());
    }

    #[test]
    fn what_serde_reads_differently_is_unclean() {
        assert!(Json::new(r#"{"a":"\ud800"}"#).check().is_err());
        assert!(Json::new(r#"{"a":"\udc00\ud800"}"#).check().is_err());
        assert!(Json::new(r#"{"a":1e400}"#).check().is_err());
        assert!(Json::new(&"[".repeat(101)).check().is_err());
        assert!(
            Json::new(r#"{"a":"\ud83d\ude00 \u00e4 \" \\"}"#)
                .check()
                .is_ok()
        );
        assert!(
            Json::new(r#"{"a\u0062":1}"#)
                .members()
                .next()
                .expect("a member")
                .is_err()
        );
        assert!(top_level(Json::new(r#"{"a":1,"a":2}"#), ["a"]).is_err());
        assert_eq!(
            Json::new(r#""\u00e4\n""#)
                .string()
                .expect("clean")
                .as_deref(),
            Some("ä\n")
        );
    }
}
