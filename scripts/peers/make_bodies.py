#!/usr/bin/env python3
"""Writes the benchmark bodies and their signatures to DIR: one LINE text event (~1 KB), 100 LINE
events, a 1000-item Meta batch and a ~3 MB WhatsApp notification. Deterministic."""
import base64, hashlib, hmac, json, os, sys

SECRET = b"bench-secret"
out = sys.argv[1]
os.makedirs(out, exist_ok=True)


def line_event(i):
    return {"type": "message", "message": {"type": "text", "id": "5600000000000%05d" % i,
            "quoteToken": "q3Plxr4AgKd-QpHVwCmA6ut7MqBmxl0ZgYxLSr5cFy0mQ3eGm2bHdEUQ-bench%d" % i,
            "markAsReadToken": "30yhdy232-bench%d" % i,
            "text": "Hello, this is message %d with some text äöå 🤨 https://example.com/path, long enough "
                    "to bring a one-event request to about one kilobyte, as a typical LINE text message "
                    "request with a mention, quote and read tokens is. @Bot" % i,
            "mention": {"mentionees": [{"index": 190, "length": 4, "type": "user",
                                        "userId": "Uf00000000000000000000000000000b0", "isSelf": True}]}},
            "webhookEventId": "01JDEMO%019d" % i, "deliveryContext": {"isRedelivery": False},
            "timestamp": 1763715600000 + i,
            "source": {"type": "group", "groupId": "Ca56f94637c00000000000000000000gg",
                       "userId": "U4af4980629000000000000000000c%03d" % (i % 1000)},
            "replyToken": "b60d432864f44d079f6d8efe86cf404b%d" % i, "mode": "active"}


def meta_item(i):
    base = {"sender": {"id": "24600000000%05d" % (i % 97)}, "recipient": {"id": "106000000000001"},
            "timestamp": 1763715600000 + i}
    if i % 4 == 3:
        base["read"] = {"watermark": 1763715600000}
    else:
        base["message"] = {"mid": "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwl%d" % i,
                           "text": "hello äöå number %d" % i}
    return base


def whatsapp(size):
    messages, i = [], 0
    while len(json.dumps(messages)) < size:
        messages.append({"from": "16315551181", "id": "wamid.BENCH%08d" % i, "timestamp": "1763715600",
                         "type": "text", "text": {"body": "x" * 900}})
        i += 1
    changes = [{"field": "messages", "value": {"messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                "contacts": [{"profile": {"name": "Kerry"}, "wa_id": "16315551181"}], "messages": [m]}}
               for m in messages]
    return {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": changes}]}


bodies = {
    "line_1_event": json.dumps({"destination": "Uf00000000000000000000000000000b0", "events": [line_event(0)]},
                               separators=(",", ":"), ensure_ascii=False).encode(),
    "line_100_events": json.dumps({"destination": "Uf00000000000000000000000000000b0",
                                   "events": [line_event(i) for i in range(100)]},
                                  separators=(",", ":"), ensure_ascii=False).encode(),
    "meta_1000_items": json.dumps({"object": "page", "entry": [{"id": "106000000000001", "time": 1763715600000,
                                   "messaging": [meta_item(i) for i in range(1000)]}]},
                                  separators=(",", ":")).encode(),
    "whatsapp_3mb": json.dumps(whatsapp(3_000_000), separators=(",", ":")).encode(),
}
manifest = []
for name, body in bodies.items():
    with open(os.path.join(out, name + ".json"), "wb") as f:
        f.write(body)
    manifest.append({"name": name, "file": name + ".json", "bytes": len(body),
                     "line_signature": base64.b64encode(hmac.new(SECRET, body, hashlib.sha256).digest()).decode(),
                     "meta_signature": "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest(),
                     "platform": "line" if name.startswith("line") else "meta"})
with open(os.path.join(out, "manifest.json"), "w") as f:
    json.dump({"secret": SECRET.decode(), "bodies": manifest}, f, indent=1)
