//! Where an object or array ends in valid JSON text, found 64 bytes at a time (simdjson's first
//! stage, for skipping only): one SIMD comparison per byte class gives bit masks of the block's
//! quotes, backslashes and brackets; a prefix XOR of the unescaped quotes marks the bytes inside
//! strings, and the brackets outside them are counted; a block wholly inside one string (a long
//! text) is passed over on its quote and backslash masks alone. Skipping a LINE event this way
//! is four times as fast as finding each string's end in turn (issue 20).
//!
//! `wide` maps the comparisons to SSE2 on x86-64 and NEON on aarch64 (both baseline there).

use wide::u8x16;

/// Bytes per block: one bit of each mask per byte.
const BLOCK: usize = 64;

/// One block's quotes and backslashes, bit `i` standing for byte `i`.
struct Strings {
    quote: u64,
    backslash: u64,
}

/// One block's opening and closing brackets (of either kind).
struct Brackets {
    open: u64,
    close: u64,
}

/// `found` of each 16 lanes of `block`, as one bit per byte.
#[inline]
fn bits(block: &[u8; BLOCK], found: impl Fn(u8x16) -> u8x16) -> u64 {
    let mut bits = 0;
    for (index, lanes) in block.as_chunks::<16>().0.iter().enumerate() {
        bits |= u64::from(found(u8x16::from(*lanes)).to_bitmask()) << (index * 16);
    }
    bits
}

impl Strings {
    #[inline]
    fn of(block: &[u8; BLOCK]) -> Strings {
        let (quote, backslash) = (u8x16::splat(b'"'), u8x16::splat(b'\\'));
        Strings {
            quote: bits(block, |lanes| lanes.simd_eq(quote)),
            backslash: bits(block, |lanes| lanes.simd_eq(backslash)),
        }
    }
}

impl Brackets {
    #[inline]
    fn of(block: &[u8; BLOCK]) -> Brackets {
        // `{` and `}` are `[` and `]` with bit 5 set: one fold finds both pairs.
        let fold = u8x16::splat(0xDF);
        let (open, close) = (u8x16::splat(b'['), u8x16::splat(b']'));
        Brackets {
            open: bits(block, |lanes| (lanes & fold).simd_eq(open)),
            close: bits(block, |lanes| (lanes & fold).simd_eq(close)),
        }
    }
}

/// The bytes escaped by a backslash (the byte after each backslash that is not itself escaped);
/// `carry` says the block's first byte is, and is set when its last byte escapes the next
/// block's. Backslashes are rare in webhook bodies: one step per backslash.
#[inline]
fn escaped(backslash: u64, carry: &mut bool) -> u64 {
    let mut escaped = u64::from(*carry);
    *carry = false;
    let mut escapes = backslash & !escaped;
    while escapes != 0 {
        let at = escapes.trailing_zeros();
        escapes &= escapes - 1;
        if at == 63 {
            *carry = true;
        } else {
            escaped |= 1 << (at + 1);
            escapes &= !(1 << (at + 1));
        }
    }
    escaped
}

/// Bit `i` set when an odd number of bits `0..=i` of `bits` are.
#[inline]
fn prefix_xor(mut bits: u64) -> u64 {
    for shift in [1, 2, 4, 8, 16, 32] {
        bits ^= bits << shift;
    }
    bits
}

/// The 64 bytes at `at`, padded with spaces past the end of `bytes`.
#[inline]
fn block_at(bytes: &[u8], at: usize) -> [u8; BLOCK] {
    let rest = bytes.get(at..).unwrap_or_default();
    match rest.first_chunk::<BLOCK>() {
        Some(block) => *block,
        None => {
            let mut block = [b' '; BLOCK];
            block[..rest.len()].copy_from_slice(rest);
            block
        }
    }
}

/// One past the bracket that closes the object or array opening at `start` of valid JSON text;
/// the text's length when it never closes (text that is not valid JSON: nonsense, no panic).
pub(super) fn container_end(bytes: &[u8], start: usize) -> usize {
    let mut at = start;
    // All ones while a string is open across a block boundary.
    let mut in_string = 0u64;
    let mut carry = false;
    let mut depth = 0usize;
    while at < bytes.len() {
        let block = block_at(bytes, at);
        let strings = Strings::of(&block);
        if in_string != 0 && strings.quote | strings.backslash == 0 {
            // The whole block inside one string (a long text): no bracket counts.
            carry = false;
            at += BLOCK;
            continue;
        }
        let quotes = strings.quote & !escaped(strings.backslash, &mut carry);
        let inside = prefix_xor(quotes) ^ in_string;
        in_string = 0u64.wrapping_sub(inside >> 63);
        let masks = Brackets::of(&block);
        let mut brackets = (masks.open | masks.close) & !inside;
        while brackets != 0 {
            let bit = brackets.trailing_zeros();
            brackets &= brackets - 1;
            if masks.open >> bit & 1 == 1 {
                depth += 1;
            } else {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return at + bit as usize + 1;
                }
            }
        }
        at += BLOCK;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Where a byte-by-byte walk ends the container at `start`.
    fn walked_end(bytes: &[u8], start: usize) -> usize {
        let (mut depth, mut string, mut escape) = (0usize, false, false);
        for (at, &byte) in bytes.iter().enumerate().skip(start) {
            match (string, escape, byte) {
                (true, true, _) => escape = false,
                (true, false, b'\\') => escape = true,
                (true, false, b'"') => string = false,
                (true, false, _) => {}
                (false, _, b'"') => string = true,
                (false, _, b'{' | b'[') => depth += 1,
                (false, _, b'}' | b']') => {
                    depth -= 1;
                    if depth == 0 {
                        return at + 1;
                    }
                }
                _ => {}
            }
        }
        bytes.len()
    }

    /// Every container of `text` ends where the walk ends it.
    fn ends_agree(text: &str) -> Result<usize, TestCaseError> {
        let bytes = text.as_bytes();
        let (mut containers, mut string, mut escape) = (0, false, false);
        for (at, &byte) in bytes.iter().enumerate() {
            match (string, escape, byte) {
                (true, true, _) => escape = false,
                (true, false, b'\\') => escape = true,
                (true, false, b'"') => string = false,
                (false, _, b'"') => string = true,
                (false, _, b'{' | b'[') => {
                    containers += 1;
                    prop_assert_eq!(container_end(bytes, at), walked_end(bytes, at), "at {}", at);
                }
                _ => {}
            }
        }
        Ok(containers)
    }

    fn json() -> impl Strategy<Value = serde_json::Value> {
        // Strings of the bytes that matter (quotes, backslashes, brackets, control characters
        // written as escapes, multi-byte characters), long enough to cross blocks.
        let text = "[\"\\\\{}\\[\\]a\\u{1}ä😀]{0,100}";
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            text.prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(6, 64, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                prop::collection::vec((text, inner), 0..6)
                    .prop_map(|members| serde_json::Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Wherever a container starts and however its strings fall across blocks, it ends
        /// where walking it byte by byte ends it, compact or pretty.
        #[test]
        fn containers_end_where_a_walk_ends_them(value in json(), indent in 0..70usize) {
            let compact = serde_json::to_string(&[&value]).expect("JSON");
            let pretty = serde_json::to_string_pretty(&[&value]).expect("JSON");
            for text in [compact, pretty] {
                // Shifts where the blocks fall.
                let text = format!("{}{text}", " ".repeat(indent));
                prop_assert_eq!(container_end(text.as_bytes(), indent), text.len());
                ends_agree(&text)?;
            }
        }
    }

    #[test]
    fn escapes_and_quotes_at_every_block_edge() {
        for run in 0..140 {
            for tail in [r#"\""#, r#"\\"#, r#"\\\""#, r#"\\\\"#, r#"]}\"["#] {
                let text = format!(r#"[{{"a":"{}{tail}"}},"{}"]"#, "x".repeat(run), tail);
                assert_eq!(container_end(text.as_bytes(), 0), text.len(), "{text}");
                assert_eq!(
                    container_end(text.as_bytes(), 1),
                    text.find("},").expect("}") + 1
                );
            }
        }
    }

    #[test]
    fn strings_open_across_whole_blocks_after_an_escape_at_a_block_edge() {
        // The escape's carry must not outlive blocks skipped inside the string.
        let head = r#"[{"a":""#;
        for edge in [63, 127] {
            for after in 60..200 {
                let text = format!(
                    r#"{head}{}\n{}"}},"b"] "#,
                    "x".repeat(edge - head.len()),
                    "x".repeat(after)
                );
                assert_eq!(text.as_bytes()[edge], b'\\');
                // A space after the list: text that never closes would end there.
                assert_eq!(container_end(text.as_bytes(), 0), text.len() - 1, "{text}");
                assert_eq!(
                    container_end(text.as_bytes(), 1),
                    text.find("},").expect("}") + 1
                );
            }
        }
    }

    #[test]
    fn text_that_never_closes_ends_at_its_end() {
        for text in ["[", "{\"a\":[1,2", "[\"]", "[\"\\"] {
            assert_eq!(container_end(text.as_bytes(), 0), text.len(), "{text}");
        }
        // Not a container at all: any answer within the text, no panic.
        for text in ["]", "}}}", "", "\"[\""] {
            assert!(container_end(text.as_bytes(), 0) <= text.len(), "{text}");
        }
    }
}
