//! The peer benchmark's bodies as `scripts/peers/make_bodies.py` writes them (a folder with the
//! bodies and `manifest.json`), read once for every harness that times the ingress on them.

// Each harness uses its own part of what is read here.
#![allow(dead_code)]

use shared::signature::Secrets;
use std::path::PathBuf;

/// One body of the manifest.
pub struct Body {
    pub name: String,
    pub bytes: Vec<u8>,
    /// A LINE body; otherwise a Meta one.
    pub line: bool,
    /// The value of its platform's signature header.
    pub signature: String,
}

/// The folder, its secret, and its bodies in the manifest's order.
pub struct Peers {
    pub folder: PathBuf,
    pub secret: String,
    pub secrets: Secrets,
    pub bodies: Vec<Body>,
}

impl Peers {
    /// The folder named by the first argument, `target/peers` without one.
    pub fn from_args() -> Peers {
        Self::read(
            std::env::args()
                .nth(1)
                .map_or_else(|| "target/peers".into(), PathBuf::from),
        )
    }

    pub fn read(folder: PathBuf) -> Peers {
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(folder.join("manifest.json")).expect("manifest"))
                .expect("json");
        let secret = manifest["secret"].as_str().expect("secret").to_owned();
        let secrets = Secrets::from_list(&secret).expect("secrets");
        let bodies = (manifest["bodies"].as_array().expect("bodies").iter())
            .map(|body| {
                let line = body["platform"] == "line";
                let header = if line {
                    "line_signature"
                } else {
                    "meta_signature"
                };
                Body {
                    name: body["name"].as_str().expect("name").to_owned(),
                    bytes: std::fs::read(folder.join(body["file"].as_str().expect("file")))
                        .expect("body"),
                    line,
                    signature: body[header].as_str().expect("signature").to_owned(),
                }
            })
            .collect();
        Peers {
            folder,
            secret,
            secrets,
            bodies,
        }
    }
}
