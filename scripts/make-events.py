#!/usr/bin/env python3
"""Writes the sample events in events/: API Gateway HTTP API (payload 2.0) events for the ingress,
signed with the documented test secrets, for `sam local invoke -e`, `cargo lambda invoke
--data-file` and the tests. Run it again after changing a body; the output is deterministic.

Test secrets (README, "Sample events"):
  LINE_CHANNEL_SECRET=test-line-channel-secret
  META_APP_SECRET=test-meta-app-secret
  META_VERIFY_TOKEN=test-meta-verify-token
"""
import base64, hashlib, hmac, json, os

LINE_SECRET = b"test-line-channel-secret"
META_SECRET = b"test-meta-app-secret"
VERIFY_TOKEN = "test-meta-verify-token"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "events")

BOT = "Uf00000000000000000000000000000b0"
USER = "U4af4980629000000000000000000c0de"
GROUP = "Ca56f94637c00000000000000000000gg"
PAGE = "106000000000001"
PSID = "2460000000000001"
IG = "17841400000000001"
IGSID = "1234567890123456"
T = 1763715600000  # 2025-11-21T09:00:00Z


def line_sig(body):
    return base64.b64encode(hmac.new(LINE_SECRET, body, hashlib.sha256).digest()).decode()


def meta_sig(body):
    return "sha256=" + hmac.new(META_SECRET, body, hashlib.sha256).hexdigest()


def apigw(method, path, headers, body=None, query="", b64=False, user_agent="LineBotWebhook/2.0"):
    h = {"host": "abcdef1234.execute-api.us-east-1.amazonaws.com", "user-agent": user_agent,
         "x-forwarded-for": "203.0.113.7", "x-forwarded-port": "443", "x-forwarded-proto": "https"}
    h.update(headers)
    event = {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": h,
        "requestContext": {
            "accountId": "123456789012", "apiId": "abcdef1234",
            "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com", "domainPrefix": "abcdef1234",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7",
                     "userAgent": user_agent},
            "requestId": "req-" + hashlib.sha256((method + path + query + (body or b"").decode("latin-1")).encode()).hexdigest()[:12],
            "routeKey": f"{method} {path}", "stage": "$default",
            "time": "21/Nov/2025:09:00:00 +0000", "timeEpoch": T,
        },
        "isBase64Encoded": b64,
    }
    if query:
        params = {}
        for pair in query.split("&"):
            k, _, v = pair.partition("=")
            params[k] = v if k not in params else params[k] + "," + v
        event["queryStringParameters"] = params
    if body is not None:
        event["body"] = base64.b64encode(body).decode() if b64 else body.decode("utf-8")
    return event


def line_event(i, kind, extra, source=None, redelivery=False, reply=True):
    e = {"type": kind}
    e.update(extra)
    e["webhookEventId"] = "01JDEMO%019d" % i
    e["deliveryContext"] = {"isRedelivery": redelivery}
    e["timestamp"] = T + i
    e["source"] = source or {"type": "user", "userId": USER}
    if reply:
        e["replyToken"] = "b60d432864f44d079f6d8efe86cf404b%d" % i
    e["mode"] = "active"
    return e


def compact(obj, ascii_only):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=ascii_only).encode()


def line_request(name, events, signature=None, b64=False):
    # LINE sends UTF-8 as is; the signature covers those bytes.
    body = compact({"destination": BOT, "events": events}, ascii_only=False)
    sig = signature or line_sig(body)
    write(name, apigw("POST", "/line", {"content-type": "application/json; charset=utf-8",
                                        "x-line-signature": sig}, body, b64=b64))


def meta_request(name, obj):
    # Meta escapes non-ASCII (\u00e4) and slashes; the signature covers the escaped bytes.
    body = compact(obj, ascii_only=True).replace(b"/", b"\\/")
    write(name, apigw("POST", "/meta", {"content-type": "application/json",
                                        "x-hub-signature-256": meta_sig(body),
                                        "x-hub-signature": "sha1=" + hmac.new(META_SECRET, body, hashlib.sha1).hexdigest()},
                      body, user_agent="facebookexternalua"))


def write(name, event):
    with open(os.path.join(OUT, name), "w") as f:
        json.dump(event, f, indent=2, ensure_ascii=False)
        f.write("\n")


text = line_event(1, "message", {"message": {"type": "text", "id": "560000000000000001",
       "quoteToken": "q3Plxr4AgKd-demo-quote-token-1", "text": "Hello, äöå 🤨 https://example.com/x"}})
follow = line_event(2, "follow", {"follow": {"isUnblocked": False}})
unsend = line_event(3, "unsend", {"unsend": {"messageId": "560000000000000001"}}, reply=False)
mention = line_event(4, "message", {"message": {"type": "text", "id": "560000000000000004",
          "quoteToken": "q3Plxr4AgKd-demo-quote-token-4", "text": "@Gateway bot what time is it?",
          "mention": {"mentionees": [{"index": 0, "length": 12, "type": "user", "userId": BOT, "isSelf": True}]}}},
          source={"type": "group", "groupId": GROUP, "userId": USER})
sticker = line_event(5, "message", {"message": {"type": "sticker", "id": "560000000000000005",
          "quoteToken": "q-5", "packageId": "446", "stickerId": "1988", "stickerResourceType": "ANIMATION",
          "keywords": ["happy"]}})
image = line_event(6, "message", {"message": {"type": "image", "id": "560000000000000006",
        "quoteToken": "q-6", "contentProvider": {"type": "line"}}})
future = line_event(7, "reactionAdded", {"reaction": {"messageId": "560000000000000001", "emoji": "👍"},
         "futureField": {"nested": [1, 2, 3]}}, reply=False)

line_request("line-text-message.json", [text])
line_request("line-text-message-base64.json", [text], b64=True)
line_request("line-follow.json", [follow])
line_request("line-unsend.json", [unsend])
line_request("line-group-mention.json", [mention])
line_request("line-several-events.json", [text, sticker, image, future])
redelivered = json.loads(json.dumps(text))
redelivered["deliveryContext"]["isRedelivery"] = True
line_request("line-redelivered.json", [redelivered])
line_request("line-verify-empty.json", [])
line_request("line-wrong-signature.json", [text], signature=line_sig(b"{}"))

write("meta-verify-accepted.json", apigw("GET", "/meta", {}, None,
      query=f"hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444",
      user_agent="facebookplatform/1.0"))
write("meta-verify-refused.json", apigw("GET", "/meta", {}, None,
      query="hub.mode=subscribe&hub.verify_token=not-the-token&hub.challenge=1158201444",
      user_agent="facebookplatform/1.0"))


def messaging(i, sender, recipient, body):
    e = {"sender": {"id": sender}, "recipient": {"id": recipient}, "timestamp": T + i}
    e.update(body)
    return e


meta_request("meta-messenger-message.json", {"object": "page", "entry": [{"id": PAGE, "time": T + 100, "messaging": [
    messaging(1, PSID, PAGE, {"message": {"mid": "m_demo-messenger-1", "text": "Hello from Messenger, äöå https://example.com/x"}})]}]})
meta_request("meta-instagram-message.json", {"object": "instagram", "entry": [{"id": IG, "time": T + 200, "messaging": [
    messaging(2, IGSID, IG, {"message": {"mid": "aWdfZAG1faXRlbTpkZW1vLWluc3RhZ3JhbS0x", "text": "Hello from Instagram"}})]}]})
meta_request("meta-whatsapp-message.json", {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [
    {"field": "messages", "value": {"messaging_product": "whatsapp",
     "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
     "contacts": [{"profile": {"name": "Kerry Fisher"}, "wa_id": "16315551181"}],
     "messages": [{"from": "16315551181", "id": "wamid.DEMO1", "timestamp": str((T + 300) // 1000),
                   "type": "text", "text": {"body": "Hello from WhatsApp"}}]}}]}]})
def whatsapp(name, i, messages=(), statuses=()):
    """A WhatsApp `messages` notification from the demo user to the demo number."""
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"}}
    if messages:
        value["contacts"] = [{"profile": {"name": "Kerry Fisher"}, "wa_id": "16315551181"}]
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    meta_request(name, {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [
        {"field": "messages", "value": value}]}]})


def wa_message(i, body):
    m = {"from": "16315551181", "id": f"wamid.DEMO{i}", "timestamp": str((T + 300 + i) // 1000)}
    m.update(body)
    return m


def wa_status(i, status, errors=None):
    s = {"id": "wamid.OUT1", "status": status, "timestamp": str((T + 300 + i) // 1000),
         "recipient_id": "16315551181",
         "pricing": {"billable": True, "pricing_model": "PMP", "category": "utility", "type": "regular"}}
    if errors:
        s["errors"] = errors
    return s


whatsapp("meta-whatsapp-image.json", 2, messages=[wa_message(2, {"type": "image", "image": {
    "caption": "the receipt", "mime_type": "image/jpeg",
    "sha256": "Ttq/3oLvRVd5PCl7xo8TJx1wTSeXxs0UKEHjj0QNmXs=", "id": "1013859600285441"}})])
whatsapp("meta-whatsapp-interactive-reply.json", 3, messages=[wa_message(3, {
    "context": {"from": "15550783881", "id": "wamid.OUT1"},
    "type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}}})])
whatsapp("meta-whatsapp-status-read.json", 4, statuses=[wa_status(4, "read")])
whatsapp("meta-whatsapp-status-failed.json", 5, statuses=[wa_status(5, "failed", errors=[{
    "code": 131026, "title": "Message undeliverable", "message": "Message undeliverable",
    "error_data": {"details": "Message Undeliverable."}}])])
whatsapp("meta-whatsapp-revoke.json", 6, messages=[wa_message(6, {
    "type": "revoke", "revoke": {"original_message_id": "wamid.DEMO2"}})])
meta_request("meta-batch.json", {"object": "page", "entry": [
    {"id": PAGE, "time": T + 400, "messaging": [
        messaging(3, PSID, PAGE, {"message": {"mid": "m_demo-batch-1", "text": "first"}}),
        messaging(4, PSID, PAGE, {"read": {"watermark": T + 2}}),
        messaging(5, PAGE, PSID, {"message": {"mid": "m_demo-echo-1", "is_echo": True, "app_id": 1517776481860111, "text": "echo"}})]},
    {"id": PAGE, "time": T + 401, "messaging": [
        messaging(6, "2460000000000002", PAGE, {"postback": {"mid": "m_demo-postback-1", "title": "Start", "payload": "GET_STARTED"}}),
        messaging(7, "2460000000000002", PAGE, {"reaction": {"mid": "m_demo-batch-1", "action": "react", "emoji": "❤"}})]},
    {"id": PAGE, "time": T + 402, "standby": [
        messaging(8, "2460000000000003", PAGE, {"message": {"mid": "m_demo-standby-1", "text": "for the other app"}})]}]})


# SQS events for the worker: what the ingress puts in the queue (the envelope of
# shared/src/envelope.rs), as Lambda's SQS event source delivers it. The tests check that each
# envelope's key and conversation are what the ingress computes for its event.
def line_envelope(event, conversation):
    return {"version": 1, "platform": "line", "key": "line:" + event["webhookEventId"],
            "conversation": conversation, "timestamp": event["timestamp"], "received_at": T + 1000,
            "line": {"destination": BOT}, "event": event}


def meta_envelope(obj, entry, list_name, item, key, conversation, timestamp):
    ctx = {"object": obj, "entry_id": entry["id"], "list": list_name}
    if "time" in entry:
        ctx["entry_time"] = entry["time"]
    return {"version": 1, "platform": "meta", "key": key, "conversation": conversation,
            "timestamp": timestamp, "received_at": T + 1000, "meta": ctx, "event": item}


def sqs(name, bodies, fifo_groups=None):
    records = []
    for i, body in enumerate(bodies):
        text = body if isinstance(body, str) else compact(body, ascii_only=False).decode()
        digest = hashlib.sha256((name + str(i)).encode()).hexdigest()
        attributes = {"ApproximateReceiveCount": "1", "SentTimestamp": str(T + 1000 + i),
                      "SenderId": "AROAEXAMPLE:ingress", "ApproximateFirstReceiveTimestamp": str(T + 1100 + i)}
        queue = "events"
        if fifo_groups:
            attributes["MessageGroupId"] = fifo_groups[i]
            attributes["MessageDeduplicationId"] = json.loads(text).get("key", digest)
            attributes["SequenceNumber"] = str(18800000000000000000 + i)
            queue = "events.fifo"
        platform = json.loads(text).get("platform", "line") if text.startswith("{") else "line"
        records.append({
            "messageId": "%s-%s-%s-%s-%s" % (digest[0:8], digest[8:12], digest[12:16], digest[16:20], digest[20:32]),
            "receiptHandle": "AQEB" + digest,
            "body": text,
            "attributes": attributes,
            "messageAttributes": {"platform": {"stringValue": platform, "stringListValues": [],
                                               "binaryListValues": [], "dataType": "String"}},
            "md5OfBody": hashlib.md5(text.encode()).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:" + queue,
            "awsRegion": "us-east-1",
        })
    write(name, {"Records": records})


user_conversation = "line:%s:user:%s" % (BOT, USER)
group_conversation = "line:%s:group:%s" % (BOT, GROUP)
sqs("sqs-line-text-message.json", [line_envelope(text, user_conversation)])
sqs("sqs-line-duplicates.json", [line_envelope(text, user_conversation), line_envelope(redelivered, user_conversation),
                                 line_envelope(text, user_conversation), line_envelope(mention, group_conversation)])
sqs("sqs-line-fifo.json", [line_envelope(e, user_conversation) for e in (text, sticker, image)],
    fifo_groups=[user_conversation] * 3)
sqs("sqs-poison.json", [line_envelope(follow, user_conversation), "this is not an envelope",
                        {"version": 1, "platform": "line", "key": "k"}])
messenger_entry = {"id": PAGE, "time": T + 100}
messenger_item = messaging(1, PSID, PAGE, {"message": {"mid": "m_demo-messenger-1", "text": "Hello from Messenger"}})
sqs("sqs-meta-messenger-message.json", [meta_envelope("page", messenger_entry, "messaging", messenger_item,
    "meta:m_demo-messenger-1", "meta:%s:%s" % (PAGE, PSID), T + 1)])
print("wrote", len(os.listdir(OUT)), "files to events/")
