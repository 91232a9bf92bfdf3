//! Messages a bot sends, built in Rust: [`line::Message`] for LINE's reply and push,
//! [`meta::Message`] for Messenger's and Instagram's Send API. Each serialises exactly as its
//! API expects; anything they do not cover can be given as JSON (`Message::raw`).

pub mod line;
pub mod meta;
