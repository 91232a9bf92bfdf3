#!/usr/bin/env python3
"""The destinations as a bot team uses them, with the examples they copy, against chat-gateway.

1. HTTPS (Standard Webhooks): `examples/https-receiver/receiver.py`, which verifies every request
   with the `standardwebhooks` library (an implementation independent of the gateway's), receives
   events from `chat-gateway serve --destination https`. The gateway signs with two secrets (a
   rotation), the receiver knows the old one. Checks: every request verified, one delivery per
   event (a resent webhook is not delivered again), a conversation's events in the order sent, the
   webhook-id is the event's id; then a receiver with the wrong secret answers 401 and the event is
   dead-lettered at once, its reason naming the status.
2. EventBridge: `chat-gateway serve --destination eventbridge` puts events on a bus in moto; a rule
   on `detail-type` `line.message.text` sends them to a queue; the example function
   `examples/eventbridge-line-python/app.py` runs on what the rule delivered and replies with the
   official LINE SDK to the gateway's fake LINE API, which accepts only the reply token LINE handed
   out for that event.

Needs GATEWAY_TEST_AWS_ENDPOINT (moto) and .tools/examples-venv (scripts/tools.sh).
"""
import base64
import json
import os
import pathlib
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
BINARY = TARGET / "debug" / "chat-gateway"
EXAMPLES_PYTHON = ROOT / ".tools" / "examples-venv" / "bin" / "python"
PROCESSES = []


def fail(message):
    print(f"destinations: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args, log, env=None, cwd=None):
    process = subprocess.Popen(
        args, stdout=log, stderr=subprocess.STDOUT, env=env or os.environ.copy(), cwd=cwd
    )
    PROCESSES.append(process)
    return process


def wait_for(what, predicate, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    fail(f"timed out waiting for {what}")


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def gateway_env(work):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINE_", "META_", "GATEWAY_", "DESTINATION"))}
    port = free_port()
    env.update(
        GATEWAY_LISTEN=f"127.0.0.1:{port}", GATEWAY_URL=f"http://127.0.0.1:{port}",
        GATEWAY_DATA=str(work / "gateway.db"), RUST_LOG="warn",
    )
    return env, port


def gateway(work, env, port, *args):
    log = open(work / f"gateway-{port}.log", "w+")
    process = start([str(BINARY), "serve", *args], log, env=env, cwd=work)
    wait_for(f"chat-gateway on {port}", lambda: listening(port) or (process.poll() is not None and fail(log_text(log))))
    return process, log


def log_text(log):
    log.flush()
    log.seek(0)
    return log.read()


def send(env, work, *args):
    result = subprocess.run([str(BINARY), *args], env=env, cwd=work, capture_output=True, text=True)
    if result.returncode != 0:
        fail(f"send {args}: {result.stdout}{result.stderr}")


def new_secret():
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def lines(log, key):
    out = []
    for line in log_text(log).splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if key in record:
            out.append(record)
    return out


def https(work):
    old, new = new_secret(), new_secret()
    receiver_port = free_port()
    receiver_log = open(work / "receiver.log", "w+")
    receiver_env = dict(os.environ, WEBHOOK_SECRET=old)
    receiver = start(
        [str(EXAMPLES_PYTHON), str(ROOT / "examples/https-receiver/receiver.py"), "--port", str(receiver_port)],
        receiver_log,
        env=receiver_env,
    )
    wait_for("the receiver", lambda: listening(receiver_port))
    env, port = gateway_env(work)
    # Rotation: the gateway signs with the new and the old secret; this receiver knows the old.
    env["DESTINATION_SIGNING_SECRETS"] = f"{new} {old}"
    url = f"http://127.0.0.1:{receiver_port}/webhook"
    process, log = gateway(work, env, port, "--destination", "https", "--destination-url", url)

    texts = ["first", "second", "third"]
    for text in texts:
        send(env, work, "send", "--text", text)
    sample = str(ROOT / "events/line-text-message.json")
    send(env, work, "send", sample)
    send(env, work, "send", sample)  # LINE's retry of the same webhook: delivered once.
    received = wait_for("4 deliveries", lambda: (r := lines(receiver_log, "received")) and len(r) >= 4 and r)
    time.sleep(1)
    received = lines(receiver_log, "received")
    refused = lines(receiver_log, "refused")
    if refused:
        fail(f"the receiver refused signatures: {refused}")
    if len(received) != 4:
        fail(f"expected 4 deliveries (3 texts, 1 sample sent twice), got {len(received)}: {received}")
    ids = [r["id"] for r in received]
    if len(set(ids)) != 4:
        fail(f"webhook ids are not one per event: {ids}")
    if any(r["received"] != "line.message.text" for r in received):
        fail(f"types: {[r['received'] for r in received]}")
    # `send --text` numbers its messages by time: the conversation's order is theirs.
    played = [r["message_id"] for r in received if r["conversation"] == received[0]["conversation"]][:3]
    if played != sorted(played):
        fail(f"the conversation's events arrived out of order: {played}")
    print(f"destinations: https: 4 deliveries verified by standardwebhooks, ids unique, in order: {ids}")

    # A receiver that does not know the secret: 401, and the gateway dead-letters the event at once.
    receiver.terminate()
    receiver.wait(timeout=10)
    wrong_env = dict(os.environ, WEBHOOK_SECRET=new_secret())
    wrong_log = open(work / "receiver-wrong.log", "w+")
    start(
        [str(EXAMPLES_PYTHON), str(ROOT / "examples/https-receiver/receiver.py"), "--port", str(receiver_port)],
        wrong_log,
        env=wrong_env,
    )
    wait_for("the second receiver", lambda: listening(receiver_port))
    send(env, work, "send", "--text", "fourth")
    wait_for("the refusal", lambda: lines(wrong_log, "refused"))

    def dead_letters():
        result = subprocess.run(
            [str(BINARY), "dead-letters"],
            env=env, cwd=work, capture_output=True, text=True,
        )
        return "401" in result.stdout and result.stdout

    listed = wait_for("the dead letter", dead_letters, seconds=20)
    if "permanent" not in listed:
        fail(f"the dead letter does not say the refusal was permanent: {listed}")
    print("destinations: https: a 401 from the receiver dead-lettered the event at once")
    process.terminate()
    process.wait(timeout=10)


def eventbridge(work):
    endpoint = os.environ.get("GATEWAY_TEST_AWS_ENDPOINT")
    if not endpoint:
        fail("GATEWAY_TEST_AWS_ENDPOINT is not set (scripts/test.sh starts moto)")
    aws = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    events, sqs = boto3.client("events", **aws), boto3.client("sqs", **aws)
    bus = f"chat-{secrets.token_hex(4)}"
    events.create_event_bus(Name=bus)
    queue = sqs.create_queue(QueueName=f"line-texts-{secrets.token_hex(4)}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    # The rule of examples/eventbridge-line-python/template.yaml, with a queue in the function's place.
    events.put_rule(
        Name="line-texts", EventBusName=bus,
        EventPattern=json.dumps({"source": ["my-gateway"], "detail-type": ["line.message.text"]}),
    )
    events.put_targets(Rule="line-texts", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])

    env, port = gateway_env(work)
    env.update(
        AWS_ENDPOINT_URL=endpoint, AWS_REGION="us-east-1", AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing", DESTINATION_EVENT_BUS=bus, DESTINATION_SOURCE="my-gateway",
    )
    process, log = gateway(work, env, port, "--destination", "eventbridge")
    send(env, work, "send", "--text", "hello from python")
    send(env, work, "send", str(ROOT / "events/line-follow.json"))  # Not a text: the rule skips it.

    def delivered():
        answer = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return answer.get("Messages")

    messages = wait_for("the rule's delivery", delivered)
    time.sleep(1)
    messages += delivered() or []
    if len(messages) != 1:
        fail(f"the rule should deliver the one text message, it delivered {len(messages)}")
    event = json.loads(messages[0]["Body"])
    run = subprocess.run(
        [str(EXAMPLES_PYTHON), "-c", "import json, sys, app; app.handler(json.load(sys.stdin), None)"],
        input=json.dumps(event), text=True, capture_output=True,
        cwd=ROOT / "examples/eventbridge-line-python",
        env=dict(
            os.environ, LINE_CHANNEL_ACCESS_TOKEN="playground-line-token",
            LINE_API_BASE_URL=f"http://127.0.0.1:{port}/fake/line",
        ),
    )
    if run.returncode != 0:
        fail(f"the example function failed: {run.stdout}{run.stderr}")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/fake/calls") as answer:
        calls = json.load(answer)
    replies = [c for c in calls if c.get("api") == "line.reply"]
    texts = [m.get("text") for c in replies for m in c.get("messages", [])]
    if texts != ["hello from python"]:
        fail(f"the example's reply did not reach LINE's API as expected: {calls}")
    print("destinations: eventbridge: rule on detail-type delivered the text; the example replied with the LINE SDK")
    process.terminate()
    process.wait(timeout=10)


def main():
    if not EXAMPLES_PYTHON.exists():
        fail(f"{EXAMPLES_PYTHON} is missing: run scripts/tools.sh")
    subprocess.run(["cargo", "build", "--quiet", "--locked", "-p", "local"], cwd=ROOT, check=True)
    work = pathlib.Path(tempfile.mkdtemp(prefix="destinations-"))
    try:
        https(work)
        work_eb = pathlib.Path(tempfile.mkdtemp(prefix="destinations-eb-"))
        eventbridge(work_eb)
    finally:
        for process in PROCESSES:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
    print("destinations: all passed")


if __name__ == "__main__":
    main()
