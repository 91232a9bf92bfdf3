//! A strict first reading of a head that validates its item's JSON as it reads, without serde
//! (issue 20): the one pass that serde's strict reading ([`crate::compat::strict`]) makes, with
//! strings passed 16 bytes at a time and no second look at skipped values.
//!
//! It reads only what it is sure of, and sure means: serde_json accepts the whole text, and
//! serde's strict reading of the head reads the same fields from it. Everything else is
//! [`Unsure`] (invalid JSON among it), and the caller goes on to serde's strict reading, which
//! decides, and refuses what serde refuses. So a value this reader skips must be one that
//! [`crate::compat::strict::plain`] accepts (a surrogate escape only in a pair, no exponent, no
//! number of more than 300 characters), strings it returns hold no escape, keys it matches hold
//! none, and nothing nests deeper than [`DEPTH`].

use wide::u8x16;

/// The reader cannot say what serde would read here: serde's readings decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unsure;

pub(crate) type Read<T> = Result<T, Unsure>;

/// Nesting deeper than this, counted from the item's top, is left to serde (its limit is 128;
/// [`crate::compat::strict::plain`] allows 32 inside a skipped value).
const DEPTH: usize = 32;

/// The longest number read: only a longer one could lie beyond `f64` (as in `plain`).
const MAX_NUMBER_LEN: usize = 300;

/// A reading position in one item's JSON text.
pub(crate) struct Reader<'a> {
    text: &'a str,
    at: usize,
    depth: usize,
    /// Where the bytes whose [`specials`] are known start: most strings are short, and one
    /// block's mask serves every string that ends in it.
    block: usize,
    /// How many bytes from `block` are known: 64, or 0 before the first.
    known: usize,
    /// Bit `i` set: byte `block + i` is a quote, a backslash or a control character, or lies
    /// past the end of the text.
    specials: u64,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(text: &'a str) -> Reader<'a> {
        Self::at(text, 0)
    }

    /// A reader of the value that starts at `at` in `text` (a body's event).
    pub(crate) fn at(text: &'a str, at: usize) -> Reader<'a> {
        Reader {
            text,
            at,
            depth: 0,
            block: 0,
            known: 0,
            specials: 0,
        }
    }

    /// Where the reader is: after the last value read.
    pub(crate) fn position(&self) -> usize {
        self.at
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// The next byte that is not JSON white space, left unread; `None` at the end.
    #[inline]
    fn next(&mut self) -> Option<u8> {
        let bytes = self.bytes();
        while let Some(&byte) = bytes.get(self.at) {
            if !matches!(byte, b' ' | b'\n' | b'\t' | b'\r') {
                return Some(byte);
            }
            self.at += 1;
        }
        None
    }

    #[inline]
    fn peek(&mut self) -> Read<u8> {
        self.next().ok_or(Unsure)
    }

    /// `byte` next, read.
    #[inline]
    fn expect(&mut self, byte: u8) -> Read<()> {
        if self.peek()? == byte {
            self.at += 1;
            Ok(())
        } else {
            Err(Unsure)
        }
    }

    /// Nothing but white space left: the text was one value.
    pub(crate) fn end(mut self) -> Read<()> {
        match self.next() {
            None => Ok(()),
            Some(_) => Err(Unsure),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Read<()> {
        if self
            .bytes()
            .get(self.at..)
            .is_some_and(|rest| rest.starts_with(word))
        {
            self.at += word.len();
            Ok(())
        } else {
            Err(Unsure)
        }
    }

    /// `null` next (read, `true`) or another value (left unread, `false`).
    #[inline]
    fn null(&mut self) -> Read<bool> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// The members of an object, each key (one without escapes) given to `member` with the
    /// reader at its value, which `member` must read; `false` for `null`.
    pub(crate) fn object(
        &mut self,
        member: impl FnMut(&mut Self, &'a str) -> Read<()>,
    ) -> Read<bool> {
        if self.null()? {
            return Ok(false);
        }
        self.members(member, false)?;
        Ok(true)
    }

    /// The item itself: an object, as `ObjectOnly` reads it (not `null`).
    pub(crate) fn item(&mut self, member: impl FnMut(&mut Self, &'a str) -> Read<()>) -> Read<()> {
        self.members(member, false)
    }

    /// An object's members; keys with escapes are `Unsure` unless `any_key` (a skipped object,
    /// whose keys are only validated).
    fn members(
        &mut self,
        mut member: impl FnMut(&mut Self, &'a str) -> Read<()>,
        any_key: bool,
    ) -> Read<()> {
        self.expect(b'{')?;
        self.deeper()?;
        if self.peek()? == b'}' {
            self.at += 1;
            self.depth -= 1;
            return Ok(());
        }
        loop {
            let (key, escaped) = self.string()?;
            if escaped && !any_key {
                return Err(Unsure);
            }
            self.expect(b':')?;
            member(self, key)?;
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    self.depth -= 1;
                    return Ok(());
                }
                _ => return Err(Unsure),
            }
        }
    }

    /// The elements of an array, `element` called with the reader at each; `false` for `null`.
    pub(crate) fn array(&mut self, mut element: impl FnMut(&mut Self) -> Read<()>) -> Read<bool> {
        if self.null()? {
            return Ok(false);
        }
        self.expect(b'[')?;
        self.deeper()?;
        if self.peek()? == b']' {
            self.at += 1;
            self.depth -= 1;
            return Ok(true);
        }
        loop {
            element(self)?;
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    self.depth -= 1;
                    return Ok(true);
                }
                _ => return Err(Unsure),
            }
        }
    }

    fn deeper(&mut self) -> Read<()> {
        self.depth += 1;
        if self.depth > DEPTH {
            Err(Unsure)
        } else {
            Ok(())
        }
    }

    /// Any value, validated and passed over (see the module for which ones it is sure of).
    pub(crate) fn skip(&mut self) -> Read<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => self.members(|reader, _| reader.skip(), true),
            b'[' => self.array(Self::skip).map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number().map(drop),
            _ => Err(Unsure),
        }
    }

    /// `Option<Text>` of the strict reading: a string without escapes (borrowed), or `null`.
    pub(crate) fn text(&mut self) -> Read<Option<&'a str>> {
        if self.null()? {
            return Ok(None);
        }
        match self.string()? {
            (text, false) => Ok(Some(text)),
            (_, true) => Err(Unsure),
        }
    }

    /// An object whose members `names` are each an `Option<Text>` (read once), every other
    /// member skipped: their texts in the order of `names`; `None` for `null`.
    pub(crate) fn texts<const N: usize>(
        &mut self,
        names: [&str; N],
    ) -> Read<Option<[Option<&'a str>; N]>> {
        let mut texts = [None; N];
        let present = self.object(|reader, key| match names.iter().position(|n| *n == key) {
            Some(index) => once(&mut texts[index], reader.text()?),
            None => reader.skip(),
        })?;
        Ok(present.then(|| texts.map(Option::flatten)))
    }

    /// `Option<bool>`: `true`, `false` or `null`.
    pub(crate) fn boolean(&mut self) -> Read<Option<bool>> {
        match self.peek()? {
            b't' => self.literal(b"true").map(|()| Some(true)),
            b'f' => self.literal(b"false").map(|()| Some(false)),
            _ => self.literal(b"null").map(|()| None),
        }
    }

    /// `Option<i64>` as serde reads one: an integer in range, or `null`. (serde reads `-0` as
    /// a float, which an `i64` refuses.) Its digits are summed as they are read: finding the
    /// number's end and then parsing its text took a twentieth of the Meta batch's reading.
    pub(crate) fn integer(&mut self) -> Read<Option<i64>> {
        if self.null()? {
            return Ok(None);
        }
        let bytes = self.bytes();
        let negative = bytes.get(self.at) == Some(&b'-');
        let first = self.at + usize::from(negative);
        let (mut at, mut value) = (first, 0i64);
        while let Some(&digit @ b'0'..=b'9') = bytes.get(at) {
            // 18 digits always fit an `i64`; longer numbers are left to serde.
            if at - first == 18 {
                return Err(Unsure);
            }
            value = value * 10 + i64::from(digit - b'0');
            at += 1;
        }
        let leading_zero = at - first > 1 && bytes.get(first) == Some(&b'0');
        if at == first
            || leading_zero
            || (negative && value == 0)
            || matches!(bytes.get(at), Some(b'.' | b'e' | b'E'))
        {
            return Err(Unsure);
        }
        self.at = at;
        Ok(Some(if negative { -value } else { value }))
    }

    /// `Option<Whole>` of the strict reading: an integer in range or a numeric string (read by
    /// `whole`), or `null`.
    pub(crate) fn whole(
        &mut self,
        whole: impl Fn(&str) -> Option<i64>,
    ) -> Read<Option<Option<i64>>> {
        if self.peek()? == b'"' {
            return self.text().map(|text| text.map(whole));
        }
        self.integer().map(|number| number.map(Some))
    }

    /// A string, validated as serde validates one (no control character, each escape one of
    /// JSON's) and as `plain` wants it (a surrogate escape only in a pair): the text between
    /// its quotes, and whether it holds an escape.
    fn string(&mut self) -> Read<(&'a str, bool)> {
        self.expect(b'"')?;
        let bytes = self.bytes();
        let start = self.at;
        let mut at = start;
        let mut escaped = false;
        loop {
            at = self.special(at);
            match bytes.get(at) {
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    at = escape_end(bytes, at)?;
                }
                _ => return Err(Unsure),
            }
        }
        self.at = at + 1;
        // Both ends are quotes, so on character boundaries.
        Ok((self.text.get(start..at).ok_or(Unsure)?, escaped))
    }

    /// The first quote, backslash or control character from `from`: the text's length if
    /// there is none.
    #[inline]
    fn special(&mut self, mut from: usize) -> usize {
        loop {
            let offset = from.wrapping_sub(self.block);
            if offset < self.known {
                let found = self.specials >> offset;
                if found != 0 {
                    return from + found.trailing_zeros() as usize;
                }
                from = self.block + 64;
            }
            let bytes = self.bytes();
            self.block = from;
            self.known = 64;
            self.specials = match bytes.get(from..from + 64) {
                Some(block) => specials(block),
                None => {
                    // The last bytes, the rest of the block marked as past the end.
                    let mut block = [0u8; 64];
                    let rest = bytes.get(from..).unwrap_or_default();
                    block[..rest.len()].copy_from_slice(rest);
                    specials(&block)
                }
            };
        }
    }

    /// A number, validated as serde validates one, without an exponent and of at most
    /// [`MAX_NUMBER_LEN`] characters: its text.
    fn number(&mut self) -> Read<&'a str> {
        let bytes = self.bytes();
        let start = self.at;
        let digits = |mut at: usize| {
            while matches!(bytes.get(at), Some(b'0'..=b'9')) {
                at += 1;
            }
            at
        };
        let mut at = start + usize::from(bytes.get(start) == Some(&b'-'));
        at = match bytes.get(at) {
            Some(b'0') => at + 1,
            Some(b'1'..=b'9') => digits(at + 1),
            _ => return Err(Unsure),
        };
        if bytes.get(at) == Some(&b'.') {
            let fraction = digits(at + 1);
            if fraction == at + 1 {
                return Err(Unsure);
            }
            at = fraction;
        }
        if matches!(bytes.get(at), Some(b'e' | b'E')) || at - start > MAX_NUMBER_LEN {
            return Err(Unsure);
        }
        self.at = at;
        self.text.get(start..at).ok_or(Unsure)
    }
}

/// A named member's value, read once: serde refuses a struct that names one of its fields
/// twice (the strict reading then reads nothing).
pub(crate) fn once<T>(slot: &mut Option<T>, value: T) -> Read<()> {
    match slot {
        Some(_) => Err(Unsure),
        None => {
            *slot = Some(value);
            Ok(())
        }
    }
}

/// The quotes, backslashes and control characters of 64 bytes, one bit each, 16 at a time.
#[inline]
fn specials(block: &[u8]) -> u64 {
    let (quote, backslash, high) = (u8x16::splat(b'"'), u8x16::splat(b'\\'), u8x16::splat(0xE0));
    let mut mask = 0;
    for (index, chunk) in block.as_chunks::<16>().0.iter().take(4).enumerate() {
        let lanes = u8x16::from(*chunk);
        // A control character is a byte below 0x20: none of its top three bits set.
        let found =
            lanes.simd_eq(quote) | lanes.simd_eq(backslash) | (lanes & high).simd_eq(u8x16::ZERO);
        mask |= u64::from(found.to_bitmask() as u16) << (index * 16);
    }
    mask
}

/// The end of the escape at `at` (a backslash): JSON's escapes, a `\u` surrogate only as a
/// high one followed at once by a low one.
fn escape_end(bytes: &[u8], at: usize) -> Read<usize> {
    match bytes.get(at + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(at + 2),
        Some(b'u') => match hex(bytes, at + 2)? {
            0xD800..=0xDBFF => {
                if bytes.get(at + 6..at + 8) == Some(b"\\u")
                    && matches!(hex(bytes, at + 8)?, 0xDC00..=0xDFFF)
                {
                    Ok(at + 12)
                } else {
                    Err(Unsure)
                }
            }
            0xDC00..=0xDFFF => Err(Unsure),
            _ => Ok(at + 6),
        },
        _ => Err(Unsure),
    }
}

/// The four hex digits at `at`.
fn hex(bytes: &[u8], at: usize) -> Read<u16> {
    let digits = bytes.get(at..at + 4).ok_or(Unsure)?;
    digits.iter().try_fold(0u16, |value, &digit| {
        let nibble = (digit as char).to_digit(16).ok_or(Unsure)?;
        Ok(value << 4 | nibble as u16)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the reader is sure of `text` as one skipped value.
    fn skips(text: &str) -> bool {
        let mut reader = Reader::new(text);
        reader.skip().is_ok() && reader.end().is_ok()
    }

    #[test]
    fn what_it_skips_serde_accepts_and_plain_reads() {
        for text in [
            r#"{"a":[1,-2.5,0,true,false,null,"x\"\\\/\b\f\n\r\t\u00e4\ud83d\ude00"],"b":{}}"#,
            " [ ] ",
            r#""a long string past sixteen bytes, with ä and 🤨 in it""#,
            "-0.001",
        ] {
            assert!(skips(text), "{text}");
            assert!(serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok());
            assert!(crate::compat::strict::plain(text.trim().as_bytes()));
        }
    }

    #[test]
    fn it_is_unsure_of_what_serde_refuses_or_plain_leaves_to_the_lenient_readings() {
        let deep = format!("{}1{}", "[".repeat(DEPTH + 1), "]".repeat(DEPTH + 1));
        let long = "9".repeat(MAX_NUMBER_LEN + 1);
        for text in [
            "{\"a\":1,}",
            "[1,]",
            "{\"a\" 1}",
            "{1:1}",
            "01",
            "1.",
            "-",
            ".5",
            "1e3",
            "2E-1",
            "\"\u{1f}\"",
            "\"\\x\"",
            "\"\\u00g0\"",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\ud800\\u0041\"",
            "\"open",
            "[1 2]",
            "tru",
            "nul",
            "{\"a\":1}}",
            "",
            "  ",
            &deep,
            &long,
        ] {
            assert!(!skips(text), "{text:?}");
        }
    }

    #[test]
    fn strings_find_their_specials_in_every_lane_block_and_tail() {
        for at in 0..150 {
            for special in [b'"', b'\\', 0x1f, 0x00] {
                let mut bytes = vec![b'a'; 150];
                bytes[at] = special;
                let text = String::from_utf8(bytes).expect("ASCII");
                for from in [0, at / 2, at.saturating_sub(1), at] {
                    let mut reader = Reader::new(&text);
                    assert_eq!(reader.special(from), at, "{at} from {from}");
                    // Again, from the block now known.
                    assert_eq!(reader.special(from), at, "{at} from {from}, known");
                }
            }
        }
        let plain = "ä🤨ÿ".repeat(20);
        let mut reader = Reader::new(&plain);
        assert_eq!(reader.special(0), plain.len());
        assert_eq!(reader.special(plain.len() + 5), plain.len() + 5);
    }

    #[test]
    fn integers_are_read_as_serde_reads_an_i64() {
        let read = |text: &str| Reader::new(text).integer();
        assert_eq!(read("null"), Ok(None));
        assert_eq!(read("-17"), Ok(Some(-17)));
        assert_eq!(
            read("999999999999999999"),
            Ok(Some(999_999_999_999_999_999))
        );
        assert_eq!(read("0"), Ok(Some(0)));
        assert_eq!(
            read("-999999999999999999"),
            Ok(Some(-999_999_999_999_999_999))
        );
        for unsure in [
            "-0",
            "1.0",
            "1e2",
            "1E2",
            "9223372036854775807",
            "1000000000000000000",
            "\"1\"",
            "true",
            "-",
            "01",
            "-01",
            "00",
            "-0.0",
            "- 1",
        ] {
            assert_eq!(read(unsure), Err(Unsure), "{unsure}");
        }
    }
}
