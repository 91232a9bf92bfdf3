//! Webhook signatures: LINE `x-line-signature` and Meta `X-Hub-Signature-256`, both an
//! HMAC-SHA256 of the exact request body bytes.
//!
//! Comparison is constant-time by construction: the computed MAC is compared with
//! [`hmac::Mac::verify_slice`], which uses `subtle`; the verify token with
//! [`subtle::ConstantTimeEq`] over SHA-256 digests, so neither its content nor its length leaks.
//! Several secrets may be configured (rotation, several channels on one URL): a request is genuine
//! when any of them verifies it. A LINE secret may be bound to its bot (`DESTINATION:SECRET`,
//! where `DESTINATION` is the bot's user id `U` + 32 hex digits): it then verifies only requests
//! whose `destination` is that bot ([`Verified::allows`]), so one channel's secret cannot speak
//! for another channel on the same URL.
//!
//! ```
//! use shared::signature::{Secrets, sign_line, verify_line};
//! let body = br#"{"destination":"U0","events":[]}"#;
//! let header = sign_line("old-secret", body);
//! let secrets = Secrets::from_list("new-secret, old-secret").unwrap();
//! assert!(verify_line(&secrets, body, Some(header.as_bytes())).is_ok());
//! assert!(verify_line(&secrets, body, None).is_err());
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The length of an HMAC-SHA256.
const MAC_LEN: usize = 32;

/// Why a request's signature was not accepted. Every variant answers `401`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is missing")]
    Missing,
    #[error("the signature header is not a well-formed signature")]
    Malformed,
    #[error("the signature does not match the body with any configured secret")]
    Mismatch,
}

impl SignatureError {
    /// A short label for logs and metrics.
    pub fn reason(self) -> &'static str {
        match self {
            SignatureError::Missing => "signature_missing",
            SignatureError::Malformed => "signature_malformed",
            SignatureError::Mismatch => "signature_mismatch",
        }
    }
}

/// One or more HMAC keys, each bound to a bot or to none. Keyed once, when configuration is
/// read, and never printed.
#[derive(Clone)]
pub struct Secrets {
    keys: Vec<(Option<String>, HmacSha256)>,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bound = self.keys.iter().filter(|(b, _)| b.is_some()).count();
        write!(f, "Secrets({} configured, {bound} bound)", self.keys.len())
    }
}

/// Which of the configured secrets verified a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verified {
    /// The bots whose bound secrets verified it.
    bound_to: Vec<String>,
    /// True when an unbound secret verified it.
    unbound: bool,
}

impl Verified {
    /// True when a secret that verified the request may speak for `destination`: an unbound
    /// secret for any bot, a bound one for its own. A body without a destination names no bot to
    /// speak for (its conversations carry no bot id), so any verified request may send one.
    pub fn allows(&self, destination: Option<&str>) -> bool {
        self.unbound || destination.is_none_or(|d| self.bound_to.iter().any(|b| b == d))
    }
}

/// `U` and 32 lowercase hex digits: a LINE user id, the form of `destination`.
pub fn is_line_user_id(text: &str) -> bool {
    text.len() == 33
        && text.starts_with('U')
        && text[1..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Secrets {
    /// Reads a comma-separated list of secrets, each `SECRET` or (LINE) `DESTINATION:SECRET`;
    /// blank items are skipped. `None` when no secret remains: the platform is switched off.
    pub fn from_list(list: &str) -> Option<Secrets> {
        let keys: Vec<(Option<String>, HmacSha256)> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .filter_map(|item| {
                let (bound, secret) = match item.split_once(':') {
                    Some((bot, secret)) if is_line_user_id(bot) && !secret.trim().is_empty() => {
                        (Some(bot.to_owned()), secret.trim())
                    }
                    _ => (None, item),
                };
                HmacSha256::new_from_slice(secret.as_bytes())
                    .ok()
                    .map(|key| (bound, key))
            })
            .collect();
        (!keys.is_empty()).then_some(Secrets { keys })
    }

    /// The number of secrets.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Never true for a value built by [`Secrets::from_list`].
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn verify(&self, body: &[u8], expected: &[u8]) -> Result<Verified, SignatureError> {
        if expected.len() != MAC_LEN {
            return Err(SignatureError::Malformed);
        }
        let mut verified = Verified::default();
        let mut matched = false;
        // Every key is tried, so that the time taken does not tell which one matched.
        for (bound, key) in &self.keys {
            let mut mac = key.clone();
            mac.update(body);
            if mac.verify_slice(expected).is_ok() {
                matched = true;
                match bound {
                    Some(bot) => verified.bound_to.push(bot.clone()),
                    None => verified.unbound = true,
                }
            }
        }
        if matched {
            Ok(verified)
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

/// Verifies a LINE `x-line-signature` header value: base64 of the HMAC-SHA256 of `body`.
pub fn verify_line(
    secrets: &Secrets,
    body: &[u8],
    header: Option<&[u8]>,
) -> Result<Verified, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut decoded = [0u8; MAC_LEN + 3];
    let len = BASE64
        .decode_slice(header.trim_ascii(), &mut decoded)
        .map_err(|_| SignatureError::Malformed)?;
    secrets.verify(body, &decoded[..len])
}

/// Verifies a Meta `X-Hub-Signature-256` header value: `sha256=` and the lowercase hex
/// HMAC-SHA256 of `body` (uppercase hex is accepted too).
pub fn verify_meta(
    secrets: &Secrets,
    body: &[u8],
    header: Option<&[u8]>,
) -> Result<Verified, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?.trim_ascii();
    let hex_part = header
        .strip_prefix(b"sha256=")
        .ok_or(SignatureError::Malformed)?;
    let mut decoded = [0u8; MAC_LEN];
    hex::decode_to_slice(hex_part, &mut decoded).map_err(|_| SignatureError::Malformed)?;
    secrets.verify(body, &decoded)
}

/// The `x-line-signature` value for `body` under `secret`.
pub fn sign_line(secret: &str, body: &[u8]) -> String {
    BASE64.encode(mac(secret, body))
}

/// The `X-Hub-Signature-256` value for `body` under `secret`.
pub fn sign_meta(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(mac(secret, body)))
}

fn mac(secret: &str, body: &[u8]) -> [u8; MAC_LEN] {
    // HMAC takes keys of any length: new_from_slice cannot fail for HMAC-SHA256.
    let mut mac = match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// The Meta verify token, compared in constant time.
#[derive(Clone)]
pub struct VerifyToken {
    digest: [u8; 32],
}

impl fmt::Debug for VerifyToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VerifyToken(..)")
    }
}

impl VerifyToken {
    /// `None` for an empty token: an empty token would let anybody subscribe the callback.
    pub fn new(token: &str) -> Option<VerifyToken> {
        (!token.is_empty()).then(|| VerifyToken {
            digest: Sha256::digest(token.as_bytes()).into(),
        })
    }

    /// True when `candidate` is the token. Compares digests, so that neither the content nor
    /// the length of the token can be learnt from timing.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let candidate: [u8; 32] = Sha256::digest(candidate).into();
        self.digest.ct_eq(&candidate).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "test-line-channel-secret";
    const UNBOUND: Verified = Verified {
        bound_to: Vec::new(),
        unbound: true,
    };

    fn secrets(list: &str) -> Secrets {
        Secrets::from_list(list).expect("secrets")
    }

    #[test]
    fn line_signature_over_escaped_bytes() {
        // Non-ASCII text as \u escapes, escaped slashes and an emoji as a surrogate pair: the
        // signature is over these bytes, not over the decoded text.
        let body = br#"{"destination":"U0","events":[{"text":"\u00e4\u00f6\u00e5 https:\/\/x \uD83E\uDD28"}]}"#;
        let header = sign_line(SECRET, body);
        assert_eq!(
            verify_line(&secrets(SECRET), body, Some(header.as_bytes())),
            Ok(UNBOUND)
        );
        let decoded = "{\"destination\":\"U0\",\"events\":[{\"text\":\"äöå https://x 🤨\"}]}";
        assert_eq!(
            verify_line(
                &secrets(SECRET),
                decoded.as_bytes(),
                Some(header.as_bytes())
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn meta_signature_over_escaped_bytes() {
        let body = br#"{"object":"page","entry":[{"text":"\u00e4\u00f6\u00e5"}]}"#;
        let header = sign_meta("app-secret", body);
        assert!(header.starts_with("sha256="));
        assert_eq!(header.len(), 7 + 64);
        assert_eq!(
            verify_meta(&secrets("app-secret"), body, Some(header.as_bytes())),
            Ok(UNBOUND)
        );
        let upper = format!("sha256={}", header[7..].to_uppercase());
        assert_eq!(
            verify_meta(&secrets("app-secret"), body, Some(upper.as_bytes())),
            Ok(UNBOUND)
        );
    }

    #[test]
    fn known_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
        assert_eq!(
            sign_meta("Jefe", b"what do ya want for nothing?"),
            format!("sha256={expected}")
        );
    }

    #[test]
    fn any_configured_secret_verifies() {
        let body = b"{}";
        let set = secrets(" first ,, second,third ");
        assert_eq!(set.len(), 3);
        for secret in ["first", "second", "third"] {
            let header = sign_line(secret, body);
            assert_eq!(
                verify_line(&set, body, Some(header.as_bytes())),
                Ok(UNBOUND)
            );
        }
        let header = sign_line("fourth", body);
        assert_eq!(
            verify_line(&set, body, Some(header.as_bytes())),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn empty_secret_lists_switch_the_platform_off() {
        assert!(Secrets::from_list("").is_none());
        assert!(Secrets::from_list(" , ,").is_none());
    }

    #[test]
    fn missing_and_malformed_headers() {
        let set = secrets(SECRET);
        let body = b"{}";
        assert_eq!(verify_line(&set, body, None), Err(SignatureError::Missing));
        assert_eq!(verify_meta(&set, body, None), Err(SignatureError::Missing));
        let good_line = sign_line(SECRET, body);
        let truncated = &good_line[..good_line.len() - 4];
        for bad in ["", "not base64!", truncated, "AAAA"] {
            assert_eq!(
                verify_line(&set, body, Some(bad.as_bytes())),
                Err(SignatureError::Malformed),
                "{bad:?}"
            );
        }
        let good_meta = sign_meta(SECRET, body);
        for bad in [
            "",
            "sha256=",
            &good_meta[7..],                   // no prefix
            &good_meta[..good_meta.len() - 2], // truncated
            "sha1=0000000000000000000000000000000000000000",
            &format!("sha256={}", "zz".repeat(32)), // not hex
            &format!("{good_meta}00"),              // too long
        ] {
            assert_eq!(
                verify_meta(&set, body, Some(bad.as_bytes())),
                Err(SignatureError::Malformed),
                "{bad:?}"
            );
        }
        // A LINE signature is no Meta signature, and the other way round.
        assert!(verify_meta(&set, body, Some(good_line.as_bytes())).is_err());
        assert!(verify_line(&set, body, Some(good_meta.as_bytes())).is_err());
    }

    #[test]
    fn wrong_secret_and_changed_body() {
        let set = secrets(SECRET);
        let header = sign_line("other", b"{}");
        assert_eq!(
            verify_line(&set, b"{}", Some(header.as_bytes())),
            Err(SignatureError::Mismatch)
        );
        let header = sign_line(SECRET, b"{}");
        assert_eq!(
            verify_line(&set, b"{} ", Some(header.as_bytes())),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn verify_token() {
        let token = VerifyToken::new("meta-verify-token").expect("token");
        assert!(token.matches(b"meta-verify-token"));
        assert!(!token.matches(b"meta-verify-toke"));
        assert!(!token.matches(b""));
        assert!(VerifyToken::new("").is_none());
        assert_eq!(format!("{token:?}"), "VerifyToken(..)");
        assert_eq!(
            format!("{:?}", secrets("s3cr3t")),
            "Secrets(1 configured, 0 bound)"
        );
    }

    #[test]
    fn bound_secrets_name_their_bot() {
        let bot = "U0123456789abcdef0123456789abcdef";
        let set = secrets(&format!("{bot}:bound, plain, Uxyz:not-a-user-id"));
        assert_eq!(set.len(), 3);
        let verified =
            |secret: &str| verify_line(&set, b"{}", Some(sign_line(secret, b"{}").as_bytes()));
        let bound = verified("bound").expect("verified");
        assert!(bound.allows(Some(bot)) && bound.allows(None));
        assert!(!bound.allows(Some("U00000000000000000000000000000000")));
        assert!(
            verified("plain")
                .expect("verified")
                .allows(Some("Uanything"))
        );
        // Not a user id before the colon: the whole item is the secret.
        assert!(verified("Uxyz:not-a-user-id").is_ok());
        assert!(verified("not-a-user-id").is_err());
        assert_eq!(format!("{set:?}"), "Secrets(3 configured, 1 bound)");
    }
}
