//! A registry of three tenants, as the tests of the channel registry ([`shared::tenants`]) use
//! it: three LINE channels, three Facebook pages across two Meta apps, one Instagram account
//! (Instagram Login: an app of its own) and two WhatsApp numbers.
//!
//! | tenant | LINE | Meta app 1001 | app 2001 | Instagram app 1002 |
//! | --- | --- | --- | --- | --- |
//! | alpha | `ALPHA_BOT` | page 111 | | account 17841400000000001 |
//! | bravo | `BRAVO_BOT` | page 222 | WABA 300000000000001, number 400000000000001 | |
//! | charlie | `CHARLIE_BOT` | | page 333, WABA 300000000000002, number 400000000000002 | |
//!
//! App 1001 serves two tenants: its secret verifies alpha's and bravo's requests alike, and only
//! the registry keeps one from speaking for the other's page.

use serde_json::{Value, json};

pub const TENANTS: [&str; 3] = ["alpha", "bravo", "charlie"];
pub const ALPHA_BOT: &str = "Ua0000000000000000000000000000001";
pub const BRAVO_BOT: &str = "Ub0000000000000000000000000000002";
pub const CHARLIE_BOT: &str = "Uc0000000000000000000000000000003";
pub const APP_ONE_SECRET: &str = "app-one-secret";
pub const APP_TWO_SECRET: &str = "app-two-secret";
pub const INSTAGRAM_APP_SECRET: &str = "instagram-app-secret";
pub const ALPHA_PAGE: &str = "111";
pub const BRAVO_PAGE: &str = "222";
pub const CHARLIE_PAGE: &str = "333";
pub const ALPHA_INSTAGRAM: &str = "17841400000000001";
pub const BRAVO_WABA: &str = "300000000000001";
pub const BRAVO_NUMBER: &str = "400000000000001";
pub const CHARLIE_WABA: &str = "300000000000002";
pub const CHARLIE_NUMBER: &str = "400000000000002";

/// A tenant's LINE bot, channel secret and channel access token.
pub fn line_channel(tenant: &str) -> (&'static str, String, String) {
    let bot = match tenant {
        "alpha" => ALPHA_BOT,
        "bravo" => BRAVO_BOT,
        _ => CHARLIE_BOT,
    };
    (
        bot,
        format!("{tenant}-line-secret"),
        format!("{tenant}-line-token"),
    )
}

/// The registry document (`TENANTS`), both halves.
pub fn registry() -> Value {
    let line = |tenant: &str| {
        let (bot, secret, token) = line_channel(tenant);
        json!({"bot_user_id": bot, "channel_id": format!("{tenant}-channel"),
               "channel_secrets": [secret], "channel_access_token": token})
    };
    json!({
        "alpha": {
            "line": line("alpha"),
            "meta": {"verify_token": "alpha-verify",
                "apps": [
                    {"app_id": "1001", "app_secrets": [APP_ONE_SECRET], "pages": [ALPHA_PAGE]},
                    {"app_id": "1002", "app_secrets": [INSTAGRAM_APP_SECRET],
                     "instagram_accounts": [ALPHA_INSTAGRAM]}],
                "access_tokens": {ALPHA_PAGE: "alpha-page-token", ALPHA_INSTAGRAM: "alpha-instagram-token"}}},
        "bravo": {
            "line": line("bravo"),
            "meta": {"verify_token": "bravo-verify",
                "apps": [
                    {"app_id": "1001", "app_secrets": [APP_ONE_SECRET], "pages": [BRAVO_PAGE]},
                    {"app_id": "2001", "app_secrets": [APP_TWO_SECRET],
                     "whatsapp_business_accounts": [BRAVO_WABA], "phone_number_ids": [BRAVO_NUMBER]}],
                "access_tokens": {BRAVO_PAGE: "bravo-page-token"},
                "whatsapp_access_token": "bravo-whatsapp-token"},
            "limits": {"requests_per_second": 50, "concurrency": 4}},
        "charlie": {
            "line": line("charlie"),
            "meta": {"verify_token": "charlie-verify",
                "apps": [
                    {"app_id": "2001", "app_secrets": [APP_TWO_SECRET], "pages": [CHARLIE_PAGE],
                     "whatsapp_business_accounts": [CHARLIE_WABA], "phone_number_ids": [CHARLIE_NUMBER]}],
                "access_tokens": {CHARLIE_PAGE: "charlie-page-token"},
                "whatsapp_access_token": "charlie-whatsapp-token"}}
    })
}

/// A LINE body to `bot` with one text message `id` (see [`crate::line_text_event`]).
pub fn line_body(bot: &str, id: &str) -> String {
    json!({"destination": bot, "events": [crate::line_text_event(id, json!({}))]}).to_string()
}

/// A Messenger body: a text from `sender` to `page`.
pub fn messenger_body(page: &str, sender: &str, mid: &str) -> String {
    json!({"object": "page", "entry": [{"id": page, "time": 1_763_715_600_000i64, "messaging": [
        {"sender": {"id": sender}, "recipient": {"id": page}, "timestamp": 1_763_715_600_000i64,
         "message": {"mid": mid, "text": format!("hello {mid}")}}]}]})
    .to_string()
}

/// An Instagram body: a text from `sender` to `account`.
pub fn instagram_body(account: &str, sender: &str, mid: &str) -> String {
    json!({"object": "instagram", "entry": [{"id": account, "time": 1_763_715_600_000i64, "messaging": [
        {"sender": {"id": sender}, "recipient": {"id": account}, "timestamp": 1_763_715_600_000i64,
         "message": {"mid": mid, "text": format!("hello {mid}")}}]}]})
    .to_string()
}

/// A WhatsApp body: under `waba`, a text to `number` from a user.
pub fn whatsapp_body(waba: &str, number: &str, wamid: &str) -> String {
    json!({"object": "whatsapp_business_account", "entry": [{"id": waba, "changes": [
        {"field": "messages", "value": {"messaging_product": "whatsapp",
          "metadata": {"display_phone_number": "15550000000", "phone_number_id": number},
          "contacts": [{"profile": {"name": "Kerry"}, "wa_id": "16315551181"}],
          "messages": [{"from": "16315551181", "id": format!("wamid.{wamid}"),
                        "timestamp": "1763715600", "type": "text", "text": {"body": "hi"}}]}}]}]})
    .to_string()
}

/// A signed `POST` for the ingress.
pub fn post(
    path: &str,
    header: &str,
    signature: String,
    body: String,
) -> http::Request<bytes::Bytes> {
    http::Request::builder()
        .method(http::Method::POST)
        .uri(path)
        .header(header, signature)
        .body(bytes::Bytes::from(body))
        .unwrap_or_else(|e| panic!("request: {e}"))
}

/// `body` to `/line/{tenant}`, signed with `secret`.
pub fn line_post(tenant: &str, secret: &str, body: String) -> http::Request<bytes::Bytes> {
    let signature = shared::signature::sign_line(secret, body.as_bytes());
    post(
        &format!("/line/{tenant}"),
        "x-line-signature",
        signature,
        body,
    )
}

/// `body` to `/meta/{tenant}`, signed with `secret`.
pub fn meta_post(tenant: &str, secret: &str, body: String) -> http::Request<bytes::Bytes> {
    let signature = shared::signature::sign_meta(secret, body.as_bytes());
    post(
        &format!("/meta/{tenant}"),
        "x-hub-signature-256",
        signature,
        body,
    )
}

/// Every tenant's genuine requests, one per channel, page, account and number, with the tenant
/// whose URL each goes to.
pub fn genuine_requests() -> Vec<(&'static str, http::Request<bytes::Bytes>)> {
    let mut requests = Vec::new();
    for tenant in TENANTS {
        let (bot, secret, _) = line_channel(tenant);
        requests.push((tenant, line_post(tenant, &secret, line_body(bot, tenant))));
    }
    requests.extend([
        (
            "alpha",
            meta_post(
                "alpha",
                APP_ONE_SECRET,
                messenger_body(ALPHA_PAGE, "PSID-A", "m-a"),
            ),
        ),
        (
            "alpha",
            meta_post(
                "alpha",
                INSTAGRAM_APP_SECRET,
                instagram_body(ALPHA_INSTAGRAM, "IGSID-A", "ig-a"),
            ),
        ),
        (
            "bravo",
            meta_post(
                "bravo",
                APP_ONE_SECRET,
                messenger_body(BRAVO_PAGE, "PSID-B", "m-b"),
            ),
        ),
        (
            "bravo",
            meta_post(
                "bravo",
                APP_TWO_SECRET,
                whatsapp_body(BRAVO_WABA, BRAVO_NUMBER, "b"),
            ),
        ),
        (
            "charlie",
            meta_post(
                "charlie",
                APP_TWO_SECRET,
                messenger_body(CHARLIE_PAGE, "PSID-C", "m-c"),
            ),
        ),
        (
            "charlie",
            meta_post(
                "charlie",
                APP_TWO_SECRET,
                whatsapp_body(CHARLIE_WABA, CHARLIE_NUMBER, "c"),
            ),
        ),
    ]);
    requests
}

/// The bearer token of a call to a fake API, `-` when there is none.
pub fn bearer_token(headers: &http::HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .trim_start_matches("Bearer ")
        .to_owned()
}
