//! JSON errors that never quote the JSON.
//!
//! serde_json's messages quote the value they could not read (`invalid type: string "4111 1111
//! 1111 1111", expected u32`, ``unknown variant `…` ``), and those messages reach logs,
//! dead-letter reasons and archive errors. [`JsonError`] keeps what helps find the problem (what
//! kind of error, what the code expected, which field was missing, line and column) and drops
//! every value.
//!
//! ```
//! use shared::json_error::JsonError;
//! let error = serde_json::from_str::<u32>(r#""4111 1111 1111 1111""#).unwrap_err();
//! let quiet = JsonError::from(error).to_string();
//! assert_eq!(quiet, "unexpected shape (expected u32) at line 1 column 21");
//! assert!(!quiet.contains("4111"));
//! ```

use serde_json::error::Category;
use std::fmt;

/// A JSON error without the values of the JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct JsonError {
    category: &'static str,
    /// What the reader expected or missed: from the code's types, never from the input.
    detail: Option<String>,
    line: usize,
    column: usize,
}

/// Messages of the project's own readers (`compat`, `key`), which never quote input.
const OWN_MESSAGES: &[&str] = &[
    "expected a JSON object",
    "an event without a `type`",
    "nested too deeply",
    "expected an id as a string or number, found ",
];

impl JsonError {
    /// For input that is JSON but not an object where one is required.
    pub fn not_an_object() -> JsonError {
        JsonError {
            category: "unexpected shape",
            detail: Some("expected a JSON object".into()),
            line: 1,
            column: 1,
        }
    }
}

impl From<serde_json::Error> for JsonError {
    fn from(error: serde_json::Error) -> JsonError {
        JsonError::from(&error)
    }
}

impl From<&serde_json::Error> for JsonError {
    fn from(error: &serde_json::Error) -> JsonError {
        let category = match error.classify() {
            Category::Io => "unreadable input",
            Category::Syntax => "not valid JSON",
            Category::Data => "unexpected shape",
            Category::Eof => "JSON cut short",
        };
        let detail = match error.classify() {
            Category::Data => {
                let full = error.to_string();
                let message = match full.rfind(" at line ") {
                    Some(at) if error.line() > 0 => &full[..at],
                    _ => full.as_str(),
                };
                detail_of(message)
            }
            _ => None,
        };
        JsonError {
            category,
            detail,
            line: error.line(),
            column: error.column(),
        }
    }
}

/// The part of a data error's message that comes from the code, not from the input.
fn detail_of(message: &str) -> Option<String> {
    if message.starts_with("missing field `") || message.starts_with("duplicate field `") {
        // Field names the types know of: the code's words.
        return Some(message.to_owned());
    }
    if OWN_MESSAGES.iter().any(|own| {
        message == *own || (own.ends_with(' ') && message.starts_with(own) && message.len() < 80)
    }) {
        return Some(message.to_owned());
    }
    if message.starts_with("unknown variant ") {
        return Some("unknown variant".into());
    }
    if message.starts_with("unknown field ") {
        return Some("unknown field".into());
    }
    if ["invalid type: ", "invalid value: ", "invalid length "]
        .iter()
        .any(|prefix| message.starts_with(prefix))
    {
        // serde ends these with the code's `expecting`, after the quoted value: the last
        // ", expected " is the code's, whatever the value holds.
        return message
            .rsplit_once(", expected ")
            .map(|(_, expected)| format!("expected {expected}"));
    }
    None
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.category)?;
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        if self.line > 0 {
            write!(f, " at line {} column {}", self.line, self.column)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    const SECRET: &str = "4111 1111 1111 1111";

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Strict {
        amount: u32,
        kind: Kind,
        list: Option<[u8; 2]>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    enum Kind {
        Card,
    }

    fn quiet(json: &str) -> String {
        let error = serde_json::from_str::<Strict>(json).expect_err("an error");
        let loud = error.to_string();
        let quiet = JsonError::from(&error).to_string();
        assert_eq!(quiet, JsonError::from(error).to_string());
        assert!(!quiet.contains("4111"), "{quiet} (serde: {loud})");
        quiet
    }

    #[test]
    fn no_value_is_ever_quoted() {
        let cases = [
            (
                format!(r#"{{"amount": "{SECRET}"}}"#),
                "unexpected shape (expected u32) at line 1 column 32",
            ),
            (
                format!(r#"{{"amount": 1, "kind": "{SECRET}"}}"#),
                "unexpected shape (unknown variant) at line 1 column 43",
            ),
            (
                format!(r#"{{"{SECRET}": 1}}"#),
                "unexpected shape (unknown field) at line 1 column 22",
            ),
            (
                format!(r#"{{"amount": 1, "kind": "Card", "list": ["{SECRET}"]}}"#),
                "unexpected shape (expected u8) at line 1 column 60",
            ),
            (
                r#"{"amount": 1, "kind": "Card", "list": [1]}"#.to_owned(),
                "unexpected shape (expected an array of length 2) at line 1 column 41",
            ),
            (
                r#"{"amount": 1}"#.to_owned(),
                "unexpected shape (missing field `kind`) at line 1 column 13",
            ),
            (
                format!(r#"{{"amount": {SECRET}}}"#),
                "not valid JSON at line 1 column 17",
            ),
            (
                format!(r#"{{"amount": "{SECRET}"#),
                "JSON cut short at line 1 column 31",
            ),
            (
                format!(r#"{{"amount": "a, expected {SECRET}"}}"#),
                "unexpected shape (expected u32) at line 1 column 44",
            ),
        ];
        let got: Vec<String> = cases.iter().map(|(json, _)| quiet(json)).collect();
        let expected: Vec<&str> = cases.iter().map(|(_, e)| *e).collect();
        assert_eq!(got, expected);
        let from_value =
            serde_json::from_value::<u32>(serde_json::json!(SECRET)).expect_err("error");
        assert_eq!(
            JsonError::from(from_value).to_string(),
            "unexpected shape (expected u32)"
        );
    }
}
