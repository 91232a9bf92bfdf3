//! Prints one of every LINE message builder as JSON lines, inside the reply request LINE takes:
//! the input of `scripts/check_messages.py`, which checks them against LINE's OpenAPI definition.

fn main() {
    for (name, message) in shared::messages::line::catalogue() {
        let request = serde_json::json!({"replyToken": "nHuyWiB7yP5Zw52FIkcQobQuGDXCTA", "messages": [message]});
        println!("{}", serde_json::json!({"name": name, "request": request}));
    }
}
