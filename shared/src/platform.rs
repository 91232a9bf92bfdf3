//! The chat platforms the gateway serves, and the error for a body that is not theirs.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A chat platform whose webhooks the gateway receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// LINE Messaging API.
    Line,
    /// Meta: Messenger, Instagram messaging and the WhatsApp Cloud API.
    Meta,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Line => "line",
            Platform::Meta => "meta",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A verified body that is not the platform's webhook envelope. The ingress answers `400`.
#[derive(Debug, thiserror::Error)]
#[error("{platform} webhook body is not the platform's envelope: {reason}")]
pub struct MalformedBody {
    pub platform: Platform,
    /// What is wrong and where, never a value from the body.
    pub reason: crate::json_error::JsonError,
}

impl MalformedBody {
    pub(crate) fn new(platform: Platform, reason: crate::json_error::JsonError) -> Self {
        Self { platform, reason }
    }
}
