//! Fetching a URL that arrived in a webhook payload (a Messenger or Instagram attachment, a
//! WhatsApp media URL) without letting the payload point the worker at anything but the
//! platform's media servers: the checks a server-side fetch needs.
//!
//! - **Scheme**: `https` only.
//! - **Host**: a name under one of the allowed domains (Meta's CDNs by default, configurable with
//!   `MEDIA_ALLOWED_HOSTS`); no IP literals.
//! - **Address**: every address the name resolves to must be public: loopback, private,
//!   carrier-grade NAT, link-local (the instance metadata service at 169.254.169.254, Lambda's
//!   runtime API), unique-local, multicast, documentation and reserved ranges are refused, after
//!   DNS, by the client's own resolver, so a name that resolves to a private address is caught
//!   and so is every redirect hop.
//! - **Redirects**: at most [`MAX_REDIRECTS`], each target checked like the first URL.
//! - **No proxy**: a proxy would resolve names where this resolver cannot check them.
//! - **Size**: capped while streaming (see [`super::download`]); the content type is sniffed from
//!   the bytes, not taken from the answer ([`sniff_content_type`]).

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Redirects followed at most.
pub const MAX_REDIRECTS: usize = 3;

/// Meta's media hosts: Messenger and Instagram attachments (`*.fbcdn.net`, `*.cdninstagram.com`),
/// files and WhatsApp media (`*.fbsbx.com`, `lookaside.fbsbx.com`).
pub const DEFAULT_ALLOWED_HOSTS: [&str; 3] = ["fbcdn.net", "fbsbx.com", "cdninstagram.com"];

/// Where payload URLs may point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPolicy {
    /// Domains whose names (the domain itself and its subdomains) may be fetched.
    pub allowed_hosts: Vec<String>,
    /// Tests only: also allow `http` and the loopback IP literals `127.0.0.1` and `[::1]` (a
    /// fake server's address). Names are still resolved to public addresses only, so a redirect
    /// to `localhost` is refused even then. Never set from configuration.
    pub allow_loopback_for_tests: bool,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy {
            allowed_hosts: DEFAULT_ALLOWED_HOSTS
                .iter()
                .map(|h| (*h).to_owned())
                .collect(),
            allow_loopback_for_tests: false,
        }
    }
}

impl FetchPolicy {
    /// The default hosts, or `MEDIA_ALLOWED_HOSTS` (comma-separated domains) read through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> FetchPolicy {
        let allowed_hosts: Vec<String> = var("MEDIA_ALLOWED_HOSTS")
            .map(|list| {
                list.split(',')
                    .map(|h| {
                        h.trim()
                            .trim_start_matches("*.")
                            .trim_matches('.')
                            .to_ascii_lowercase()
                    })
                    .filter(|h| !h.is_empty())
                    .collect()
            })
            .filter(|hosts: &Vec<String>| !hosts.is_empty())
            .unwrap_or_else(|| FetchPolicy::default().allowed_hosts);
        FetchPolicy {
            allowed_hosts,
            allow_loopback_for_tests: false,
        }
    }

    /// A policy for tests against a fake server on loopback.
    pub fn allowing_loopback_for_tests() -> FetchPolicy {
        FetchPolicy {
            allow_loopback_for_tests: true,
            ..FetchPolicy::default()
        }
    }

    /// Why `url` may not be fetched, if it may not.
    pub fn refuse(&self, url: &reqwest::Url) -> Option<String> {
        let local = self.allow_loopback_for_tests;
        match url.scheme() {
            "https" => {}
            "http" if local => {}
            other => return Some(format!("scheme {other:?} is not https")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Some("URLs with credentials are not fetched".into());
        }
        match url.host() {
            None => Some("no host".into()),
            Some(url::Host::Ipv4(ip)) if local && ip.is_loopback() => None,
            Some(url::Host::Ipv6(ip)) if local && ip.is_loopback() => None,
            Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => {
                Some("an IP address, not a media host".into())
            }
            Some(url::Host::Domain(name)) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                let allowed = self
                    .allowed_hosts
                    .iter()
                    .any(|domain| name == *domain || name.ends_with(&format!(".{domain}")));
                (!allowed).then(|| format!("host {name} is not an allowed media host"))
            }
        }
    }

    /// The HTTP client for payload URLs: checking resolver, checked redirects, no proxy.
    pub fn client(&self) -> reqwest::Client {
        let policy = self.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error(Refused(format!("more than {MAX_REDIRECTS} redirects")))
            } else if let Some(reason) = policy.refuse(attempt.url()) {
                attempt.error(Refused(format!("redirect refused: {reason}")))
            } else {
                attempt.follow()
            }
        });
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(10))
            .redirect(redirects)
            .no_proxy()
            .dns_resolver(Arc::new(PublicOnly))
            .build()
            .unwrap_or_default()
    }
}

/// Why a fetch was stopped on its way (a redirect, a resolved address): permanent, not retried.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// A resolver that answers only with public addresses. (IP literals never reach a resolver:
/// [`FetchPolicy::refuse`] judges those.)
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let public: Vec<SocketAddr> = resolved.filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(
                    Box::new(Refused(format!("{host} resolves to no public address"))) as _,
                );
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// True for addresses a payload URL may reach: not loopback, private, carrier-grade NAT,
/// link-local (metadata services), unique-local, multicast, broadcast, unspecified, documentation,
/// benchmarking or reserved; IPv4-mapped and NAT64 IPv6 addresses are judged by their IPv4.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let segments = v6.segments();
            // NAT64 (64:ff9b::/96) reaches whatever IPv4 it embeds.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = segments[6].to_be_bytes();
                let [c, d] = segments[7].to_be_bytes();
                return is_public_v4(Ipv4Addr::new(a, b, c, d));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (segments[0] & 0xfe00) == 0xfc00 // unique local, fd00:ec2::254 among them
                || (segments[0] & 0xffc0) == 0xfe80 // link-local
                || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || segments[0] == 0x2001 && segments[1] == 0x0db8 // documentation
                || segments[..2] == [0x100, 0]) // discard-only 100::/64
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b & 0xfe) == 18) // benchmarking
        || a >= 240) // reserved
}

/// The content type of a file, from its first bytes: images, video, audio, documents and
/// archives by their kind, anything else (HTML, scripts, unknown bytes) as
/// `application/octet-stream`. The platform's own `Content-Type` is not trusted: the archive
/// would otherwise store, and later serve, whatever type a URL claimed.
pub fn sniff_content_type(bytes: &[u8]) -> String {
    passive_kind(bytes)
        .map(|kind| kind.mime_type().to_owned())
        .unwrap_or_else(|| "application/octet-stream".to_owned())
}

/// The usual file extension of a file of the kinds [`sniff_content_type`] names.
pub fn file_extension(bytes: &[u8]) -> Option<&'static str> {
    passive_kind(bytes).map(|kind| kind.extension())
}

/// The kind of a file when it is one that nothing executes or renders as a page.
fn passive_kind(bytes: &[u8]) -> Option<infer::Type> {
    use infer::MatcherType;
    infer::get(bytes).filter(|kind| {
        matches!(
            kind.matcher_type(),
            MatcherType::Image
                | MatcherType::Video
                | MatcherType::Audio
                | MatcherType::Doc
                | MatcherType::Archive
                | MatcherType::Book
        )
    })
}

/// The IPv6 address of the instance metadata service (for tests and documentation).
pub const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254);

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> reqwest::Url {
        reqwest::Url::parse(text).expect("url")
    }

    #[test]
    fn only_https_urls_on_allowed_hosts_pass() {
        let policy = FetchPolicy::default();
        assert_eq!(
            policy.refuse(&url("https://scontent.xx.fbcdn.net/v/t1/a.jpg")),
            None
        );
        assert_eq!(
            policy.refuse(&url(
                "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1"
            )),
            None
        );
        assert_eq!(policy.refuse(&url("https://fbcdn.net/a")), None);
        for refused in [
            "http://scontent.xx.fbcdn.net/a.jpg",
            "https://127.0.0.1/a",
            "https://169.254.169.254/latest/meta-data/",
            "https://[::1]/a",
            "https://localhost/a",
            "https://evilfbcdn.net/a",
            "https://fbcdn.net.evil.example/a",
            "https://user:pw@scontent.xx.fbcdn.net/a",
            "file:///etc/passwd",
            "ftp://scontent.xx.fbcdn.net/a",
        ] {
            assert!(policy.refuse(&url(refused)).is_some(), "{refused}");
        }
        let custom = FetchPolicy::from_vars(|_| Some("*.example.com, media.test".into()));
        assert_eq!(custom.refuse(&url("https://cdn.example.com/a")), None);
        assert!(
            custom
                .refuse(&url("https://scontent.xx.fbcdn.net/a"))
                .is_some()
        );
    }

    #[test]
    fn private_loopback_link_local_and_metadata_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.0.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2001:db8::1",
        ] {
            let ip: IpAddr = ip.parse().expect("ip");
            assert!(!is_public(ip), "{ip}");
        }
        assert!(!is_public(IpAddr::V6(METADATA_V6)));
        for ip in [
            "157.240.1.35",
            "31.13.71.36",
            "2a03:2880:f12f:83:face:b00c:0:25de",
        ] {
            let ip: IpAddr = ip.parse().expect("ip");
            assert!(is_public(ip), "{ip}");
        }
    }

    #[test]
    fn content_types_come_from_the_bytes() {
        assert_eq!(sniff_content_type(b"\xFF\xD8\xFF\xE0rest"), "image/jpeg");
        assert_eq!(sniff_content_type(b"\x89PNG\r\n\x1a\nrest"), "image/png");
        assert_eq!(sniff_content_type(b"%PDF-1.7\n"), "application/pdf");
        for active in [
            b"<html><script>".as_slice(),
            b"<?xml version=\"1.0\"?><svg onload=\"alert(1)\"/>",
            b"#!/bin/sh\nrm -rf /",
            b"",
        ] {
            assert_eq!(sniff_content_type(active), "application/octet-stream");
        }
    }
}
