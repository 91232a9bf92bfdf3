//! Any query string on `GET /meta`: the challenge is echoed only for `hub.mode=subscribe` with
//! the exact token; everything else is refused; never a panic.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use shared::adapters::memory::MemoryQueue;
use shared::ingress::{Ingress, IngressConfig};
use std::sync::{Arc, OnceLock};

fn gateway() -> &'static (tokio::runtime::Runtime, Ingress) {
    static GATEWAY: OnceLock<(tokio::runtime::Runtime, Ingress)> = OnceLock::new();
    GATEWAY.get_or_init(|| {
        let config = IngressConfig::from_vars(|name| match name {
            "META_APP_SECRET" => Some("s".to_owned()),
            "META_VERIFY_TOKEN" => Some("the-token".to_owned()),
            _ => None,
        })
        .expect("config");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
        (runtime, Ingress::new(config, Arc::new(MemoryQueue::new())))
    })
}

fuzz_target!(|query: &str| {
    let Ok(request) = http::Request::builder().uri(format!("/meta?{query}")).body(Bytes::new()) else {
        return;
    };
    let (runtime, ingress) = gateway();
    let handled = runtime.block_on(ingress.handle_request(request));
    let status = handled.response.status().as_u16();
    assert!(status == 200 || status == 403, "{status}");
    // The rule: exactly one each of hub.mode=subscribe, the token and a challenge.
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let one = |name: &str| {
        let mut values = pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
        match (values.next(), values.next()) {
            (Some(value), None) => Some(value.to_owned()),
            _ => None,
        }
    };
    let expected_ok = one("hub.mode").as_deref() == Some("subscribe")
        && one("hub.verify_token").as_deref() == Some("the-token")
        && one("hub.challenge").is_some();
    assert_eq!(status == 200, expected_ok, "{query:?}");
    if expected_ok {
        assert_eq!(Some(handled.response.body().clone()), one("hub.challenge"));
    }
});
