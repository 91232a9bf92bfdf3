#!/usr/bin/env python3
"""End-to-end test: both Lambda functions under `cargo lambda watch`, SQS and DynamoDB on moto,
a fake LINE and Meta API on loopback.

1. Every ingress event in events/ is sent to the ingress twice with `cargo lambda invoke`, and
   each answer is checked.
2. The messages that landed in SQS (two of every event) are fed to the worker in batches of ten,
   as Lambda's SQS event source would.
3. The fake API must have seen exactly one reply per event the example bot answers, and the
   worker must report no failures.
4. A LINE event over SQS's 1 MiB limit goes through the claim-check bucket (written before the
   200, read and deleted by the worker), and a record that is not an envelope is dead-lettered
   by the worker itself with its reason.

It fails if an event is lost, a signature check is skipped, or a reply is sent twice.
Run by scripts/test.sh, which starts moto and sets GATEWAY_TEST_AWS_ENDPOINT.
"""
import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
EVENTS = os.path.join(ROOT, "events")

# Each ingress sample: (HTTP status, events queued per delivery).
EXPECTED = {
    "line-text-message.json": (200, 1),
    "line-text-message-base64.json": (200, 1),
    "line-follow.json": (200, 1),
    "line-unsend.json": (200, 1),
    "line-group-mention.json": (200, 1),
    "line-several-events.json": (200, 4),
    "line-redelivered.json": (200, 1),
    "line-verify-empty.json": (200, 0),
    "line-wrong-signature.json": (401, 0),
    "meta-verify-accepted.json": (200, 0),
    "meta-verify-refused.json": (403, 0),
    "meta-messenger-message.json": (200, 1),
    "meta-instagram-message.json": (200, 1),
    "meta-whatsapp-message.json": (200, 1),
    "meta-whatsapp-image.json": (200, 1),
    "meta-whatsapp-interactive-reply.json": (200, 1),
    "meta-whatsapp-status-read.json": (200, 1),
    "meta-whatsapp-status-failed.json": (200, 1),
    "meta-whatsapp-revoke.json": (200, 1),
    "meta-batch.json": (200, 6),
}
# What the example bot must send, once each: LINE replies to the text message (the same
# webhookEventId in five files), the follow and the group mention; Messenger and Instagram text
# messages, and the batch's first message (not the echo, not the standby one).
EXPECTED_REPLIES = 3
EXPECTED_SENDS = 3
EXPECTED_PROFILES = 1


def fail(message):
    print("E2E FAILED: " + message, file=sys.stderr)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeApi(BaseHTTPRequestHandler):
    calls = []
    lock = threading.Lock()

    def _record(self):
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        with FakeApi.lock:
            FakeApi.calls.append((self.command, self.path, body))
        return body

    def _answer(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        self._record()
        if self.path == "/v2/bot/message/reply":
            self._answer(200, {"sentMessages": [{"id": "1", "quoteToken": "q"}]})
        elif self.path == "/me/messages":
            self._answer(200, {"recipient_id": "1", "message_id": "m_1"})
        else:
            self._answer(404, {"message": "not found"})

    def do_GET(self):
        self._record()
        if self.path.startswith("/v2/bot/profile/"):
            self._answer(200, {"userId": self.path.rsplit("/", 1)[-1], "displayName": "Taro"})
        else:
            self._answer(404, {"message": "not found"})

    def log_message(self, *args):
        pass


def invoke(port, function, data_file):
    result = subprocess.run(
        ["cargo", "lambda", "invoke", "--invoke-port", str(port), "--output-format", "json",
         function, "--data-file", data_file],
        capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        fail(f"cargo lambda invoke {function} {os.path.basename(data_file)}: {result.stderr.strip()[-2000:]}")
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError:
        fail(f"{function} answered something that is not JSON: {result.stdout[-500:]}")


def drain(sqs, url):
    messages = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=900,
                                    MessageAttributeNames=["All"], AttributeNames=["All"])
        if not batch.get("Messages"):
            return messages
        messages.extend(batch["Messages"])


def sqs_event(messages, queue_arn):
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}),
        "messageAttributes": {k: {"stringValue": v.get("StringValue"), "stringListValues": [],
                                  "binaryListValues": [], "dataType": v["DataType"]}
                              for k, v in m.get("MessageAttributes", {}).items()},
        "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs", "eventSourceARN": queue_arn,
        "awsRegion": "us-east-1"} for m in messages]}


def aws_resources(endpoint, prefix):
    """Clients for moto, a new queue and a new idempotency table as the template defines it:
    (sqs, dynamodb, queue URL, queue ARN, table name)."""
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name="us-east-1")
    sqs = session.client("sqs", endpoint_url=endpoint)
    dynamodb = session.client("dynamodb", endpoint_url=endpoint)
    suffix = str(os.getpid())
    queue_url = sqs.create_queue(QueueName=f"{prefix}-events-{suffix}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    table = f"{prefix}-idempotency-{suffix}"
    dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                          AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                          KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    return sqs, dynamodb, queue_url, queue_arn, table


def dead_letters_and_claims(endpoint, prefix):
    """A dead-letter queue and a claim-check bucket on moto: (s3, dead-letter queue URL, bucket)."""
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name="us-east-1")
    suffix = str(os.getpid())
    sqs = session.client("sqs", endpoint_url=endpoint)
    s3 = session.client("s3", endpoint_url=endpoint)
    dlq = sqs.create_queue(QueueName=f"{prefix}-dead-letters-{suffix}")["QueueUrl"]
    bucket = f"{prefix}-claims-{suffix}"
    s3.create_bucket(Bucket=bucket)
    return s3, dlq, bucket


def signed_line_event(body):
    """An API Gateway HTTP API event for POST /line with `body`, signed with the test secret."""
    signature = base64.b64encode(hmac.new(b"test-line-channel-secret", body.encode(), hashlib.sha256).digest()).decode()
    return {"version": "2.0", "routeKey": "POST /line", "rawPath": "/line", "rawQueryString": "",
            "headers": {"content-type": "application/json", "x-line-signature": signature},
            "requestContext": {"http": {"method": "POST", "path": "/line", "protocol": "HTTP/1.1",
                                        "sourceIp": "127.0.0.1", "userAgent": "LineBotWebhook/2.0"},
                               "requestId": "e2e-large", "routeKey": "POST /line", "stage": "$default",
                               "accountId": "123456789012", "apiId": "e2e", "domainName": "e2e",
                               "domainPrefix": "e2e", "time": "21/Nov/2026:00:00:00 +0000", "timeEpoch": 0},
            "body": body, "isBase64Encoded": False}


def main():
    endpoint = os.environ.get("GATEWAY_TEST_AWS_ENDPOINT")
    if not endpoint:
        fail("GATEWAY_TEST_AWS_ENDPOINT is not set (scripts/test.sh starts moto and sets it)")
    samples = sorted(f for f in os.listdir(EVENTS) if f.startswith(("line-", "meta-")))
    if samples != sorted(EXPECTED):
        fail(f"events/ and this script disagree: {sorted(set(samples) ^ set(EXPECTED))}")

    sqs, dynamodb, queue_url, queue_arn, table = aws_resources(endpoint, "e2e")
    s3, dlq_url, bucket = dead_letters_and_claims(endpoint, "e2e")

    api = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    api_url = f"http://127.0.0.1:{api.server_address[1]}"

    port = free_port()
    env = dict(os.environ,
               AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_REGION="us-east-1", QUEUE_URL=queue_url, IDEMPOTENCY_TABLE=table,
               DEAD_LETTER_QUEUE_URL=dlq_url, CLAIM_CHECK_BUCKET=bucket,
               LINE_CHANNEL_SECRET="test-line-channel-secret", META_APP_SECRET="test-meta-app-secret",
               META_VERIFY_TOKEN="test-meta-verify-token",
               LINE_CHANNEL_ACCESS_TOKEN="e2e-line-token", META_PAGE_ACCESS_TOKEN="e2e-page-token",
               LINE_API_BASE_URL=api_url, LINE_DATA_API_BASE_URL=api_url, META_GRAPH_API_BASE_URL=api_url,
               SQS_ATTEMPT_TIMEOUT_MS="20000", SQS_MAX_PARALLEL_CALLS="4", ENQUEUE_BUDGET_MS="60000",
               RUST_LOG=os.environ.get("E2E_RUST_LOG", "warn"),
               # The gateway's own test bot, whatever bot functions/worker/src/bot.rs holds.
               GATEWAY_TEST_BOT="1")
    # `cargo lambda watch` builds each function on its first invoke with `cargo run --bin NAME`,
    # which resolves features for that package alone: build both the same way first, so that no
    # invoke waits for (or times out on) a compile.
    for binary in ("ingress", "worker"):
        build = subprocess.run(["cargo", "build", "--bin", binary], cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=1800)
        if build.returncode != 0:
            fail(f"cargo build --bin {binary}: {build.stderr[-3000:]}")
    os.makedirs(os.path.join(ROOT, "target", "logs"), exist_ok=True)
    log = open(os.path.join(ROOT, "target", "logs", "cargo-lambda-watch.log"), "w")
    watch = subprocess.Popen(["cargo", "lambda", "watch", "--invoke-port", str(port), "--ignore-changes", "--timeout", "60"],
                             cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                if watch.poll() is not None:
                    fail("cargo lambda watch exited; see target/logs/cargo-lambda-watch.log")
                time.sleep(0.5)
        else:
            fail("cargo lambda watch did not start")

        # Warm-up: each function answers a harmless request before the test proper starts.
        with tempfile.TemporaryDirectory() as tmp:
            empty_batch = os.path.join(tmp, "empty.json")
            with open(empty_batch, "w") as f:
                json.dump({"Records": []}, f)
            for function, data_file in (("ingress", os.path.join(EVENTS, "meta-verify-refused.json")),
                                        ("worker", empty_batch)):
                for attempt in range(30):
                    result = subprocess.run(
                        ["cargo", "lambda", "invoke", "--invoke-port", str(port), "--output-format", "json",
                         function, "--data-file", data_file], capture_output=True, text=True, timeout=600)
                    if result.returncode == 0:
                        break
                    time.sleep(2)
                else:
                    fail(f"{function} never answered its warm-up request: {result.stderr[-1000:]}")

        # 1. Every ingress event, twice.
        for name in samples:
            status, _ = EXPECTED[name]
            for delivery in (1, 2):
                answer = invoke(port, "ingress", os.path.join(EVENTS, name))
                if answer.get("statusCode") != status:
                    fail(f"{name} (delivery {delivery}): status {answer.get('statusCode')}, expected {status}")
        if "1158201444" not in json.dumps(invoke(port, "ingress", os.path.join(EVENTS, "meta-verify-accepted.json"))):
            fail("the Meta challenge was not echoed")

        # 2. Two of every event in the queue, then to the worker in batches of ten.
        messages = drain(sqs, queue_url)
        expected_messages = 2 * sum(n for _, n in EXPECTED.values())
        if len(messages) != expected_messages:
            fail(f"{len(messages)} messages in the queue, expected {expected_messages}")
        failures = []
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(0, len(messages), 10):
                path = os.path.join(tmp, f"batch-{i}.json")
                with open(path, "w") as f:
                    json.dump(sqs_event(messages[i:i + 10], queue_arn), f)
                answer = invoke(port, "worker", path)
                failures.extend(answer.get("batchItemFailures", []))
        if failures:
            fail(f"the worker reported failures: {failures}")

        # 3. One reply per answered event.
        replies = [c for c in FakeApi.calls if c[1] == "/v2/bot/message/reply"]
        sends = [c for c in FakeApi.calls if c[1] == "/me/messages"]
        profiles = [c for c in FakeApi.calls if c[1].startswith("/v2/bot/profile/")]
        tokens = [json.loads(body)["replyToken"] for _, _, body in replies]
        if len(set(tokens)) != len(tokens):
            fail(f"a LINE reply was sent twice: {tokens}")
        counts = (len(replies), len(sends), len(profiles))
        if counts != (EXPECTED_REPLIES, EXPECTED_SENDS, EXPECTED_PROFILES):
            fail(f"(replies, sends, profile lookups) = {counts}, expected "
                 f"{(EXPECTED_REPLIES, EXPECTED_SENDS, EXPECTED_PROFILES)}")
        completed = dynamodb.scan(TableName=table)["Items"]
        unique_events = len({json.loads(m["Body"])["key"] for m in messages})
        if len(completed) != unique_events or any(i["status"]["S"] != "COMPLETED" for i in completed):
            fail(f"{len(completed)} idempotency records, expected {unique_events} COMPLETED")
        print(f"e2e: {len(samples)} sample requests sent twice; {len(messages)} messages queued for "
              f"{unique_events} events; {counts[0]} LINE replies, {counts[1]} Meta sends, "
              f"{counts[2]} profile lookup: each once")

        # 4. A 1.1 MiB event by claim check, and a poison record dead-lettered by the worker.
        large = {"type": "message", "webhookEventId": "01JE2ELARGE0000000000000001", "timestamp": 1763715600000,
                 "mode": "active", "deliveryContext": {"isRedelivery": False}, "replyToken": "r-large",
                 "source": {"type": "user", "userId": "U4af4980629000000000000000000c0de"},
                 "message": {"type": "text", "id": "large1", "text": "large", "quoteToken": "q-large"},
                 "padding": "x" * (1100 * 1024)}
        body = json.dumps({"destination": "Uf00000000000000000000000000000b0", "events": [large]})
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "large.json")
            with open(path, "w") as f:
                json.dump(signed_line_event(body), f)
            answer = invoke(port, "ingress", path)
            if answer.get("statusCode") != 200:
                fail(f"the large event: status {answer.get('statusCode')}")
            queued = drain(sqs, queue_url)
            if len(queued) != 1 or "claim" not in json.loads(queued[0]["Body"]):
                fail("the large event was not queued as one claim-checked message")
            claim = json.loads(queued[0]["Body"])["claim"]
            stored = s3.get_object(Bucket=bucket, Key=claim["object"])["Body"].read()
            if stored != json.dumps(large).encode():
                fail("the claim-check object is not the event's exact bytes")
            poison = dict(queued[0], MessageId="e2e-poison", Body="not an envelope")
            path = os.path.join(tmp, "worker.json")
            with open(path, "w") as f:
                json.dump(sqs_event([queued[0], poison], queue_arn), f)
            answer = invoke(port, "worker", path)
            if answer.get("batchItemFailures"):
                fail(f"the worker reported failures: {answer['batchItemFailures']}")
        if len([c for c in FakeApi.calls if c[1] == "/v2/bot/message/reply"]) != EXPECTED_REPLIES + 1:
            fail("the large event was not answered once")
        if s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) != 0:
            fail("the claim-check object was not deleted after the event was handled")
        dead = drain(sqs, dlq_url)
        if [m["Body"] for m in dead] != ["not an envelope"] or \
                not dead[0]["MessageAttributes"]["failure"]["StringValue"].startswith("not an envelope"):
            fail(f"the poison record was not dead-lettered with its reason: {dead}")
        print("e2e: a 1.1 MiB event by claim check, answered once, its object deleted; "
              "a poison record dead-lettered with its reason")
        print("1 passed, 0 failed")
    finally:
        os.killpg(watch.pid, signal.SIGTERM)
        try:
            watch.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(watch.pid, signal.SIGKILL)
        api.shutdown()


if __name__ == "__main__":
    main()
