#!/usr/bin/env python3
"""Lambda-level benchmarks of the two functions (issue 8). Prints Markdown tables; asserts nothing.

1. Sizes: the release bootstraps (stripped), built the way `cargo lambda` builds them.
2. Cold start: process start until the function's first poll of the Lambda runtime API, and peak
   memory (VmHWM) after a 1000-item Meta batch (ingress) and after its 1000 queued events
   (worker, in batches of 10 as the template configures, and in one batch of 1000), served by a
   minimal runtime API in this script, with SQS and DynamoDB on moto and a fake Meta API.
3. End to end through the Lambda runtime: the ingress under `cargo lambda watch --release`
   against moto, requests posted to its invoke endpoint: p50 / p99 / max per request for one
   LINE event and for the 1000-item batch, and how much of it was the ingress's own work (its
   `RequestTime` minus `EnqueueTime` EMF metrics) rather than SQS calls.

Run through scripts/bench-lambda.sh, which installs the tools and starts moto.
"""
import base64
import hashlib
import hmac
import json
import os
import queue
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from e2e import aws_resources, free_port, sqs_event  # the end-to-end test's helpers, same folder

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
LINE_SECRET = "test-line-channel-secret"
META_SECRET = "test-meta-app-secret"
ONE_EVENT_REQUESTS = int(os.environ.get("BENCH_ONE_EVENT_REQUESTS", "300"))
BATCH_REQUESTS = int(os.environ.get("BENCH_BATCH_REQUESTS", "5"))
COLD_STARTS = int(os.environ.get("BENCH_COLD_STARTS", "10"))


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round((len(ordered) - 1) * p))]


# ---- request bodies (the same shapes as shared/benches/ingress_core.rs) ----

def line_body(i):
    event = {
        "type": "message",
        "message": {"type": "text", "id": f"56000000000{i:07}", "quoteToken": f"q3Plxr4AgKd-bench{i}",
                    "markAsReadToken": f"30yhdy232-bench{i}",
                    "text": f"Hello, this is message {i} with some text, long enough to bring a one-event "
                            "request to about one kilobyte, as a typical LINE text message with a "
                            "mention, quote and read tokens is. @Bot",
                    "mention": {"mentionees": [{"index": 150, "length": 4, "type": "user",
                                                "userId": "Uf00000000000000000000000000000b0", "isSelf": True}]}},
        "webhookEventId": f"01JBENCHL{time.time_ns() % 10**9:09}{i:08}",
        "deliveryContext": {"isRedelivery": False}, "timestamp": 1763715600000 + i,
        "source": {"type": "group", "groupId": "Ca56f94637c00000000000000000000gg",
                   "userId": f"U4af4980629000000000000000000c{i % 1000:03}"},
        "replyToken": f"b60d432864f44d079f6d8efe86cf404b{i}", "mode": "active"}
    return json.dumps({"destination": "Uf00000000000000000000000000000b0", "events": [event]},
                      separators=(",", ":")).encode()


def meta_body(run, items=1000):
    messaging = []
    for i in range(items):
        item = {"sender": {"id": f"24600000000{i % 97:05}"}, "recipient": {"id": "106000000000001"},
                "timestamp": 1763715600000 + i}
        if i % 4 == 3:
            item["read"] = {"watermark": 1763715600000 + i}
        else:
            item["message"] = {"mid": f"m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_bench{run}_{i}", "text": f"hello number {i}"}
        messaging.append(item)
    body = {"object": "page", "entry": [{"id": "106000000000001", "time": 1763715600000, "messaging": messaging}]}
    return json.dumps(body, separators=(",", ":")).encode()


def apigw(path, body, headers):
    return {
        "version": "2.0", "routeKey": f"POST {path}", "rawPath": path, "rawQueryString": "",
        "headers": dict({"host": "abcdef1234.execute-api.us-east-1.amazonaws.com",
                         "content-type": "application/json"}, **headers),
        "requestContext": {"accountId": "123456789012", "apiId": "abcdef1234",
                           "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
                           "domainPrefix": "abcdef1234",
                           "http": {"method": "POST", "path": path, "protocol": "HTTP/1.1",
                                    "sourceIp": "203.0.113.7", "userAgent": "bench"},
                           "requestId": "bench", "routeKey": f"POST {path}", "stage": "$default",
                           "time": "21/Nov/2026:09:00:00 +0000", "timeEpoch": 1763715600000},
        "isBase64Encoded": False, "body": body.decode()}


def line_request(i):
    body = line_body(i)
    signature = base64.b64encode(hmac.new(LINE_SECRET.encode(), body, hashlib.sha256).digest()).decode()
    return apigw("/line", body, {"x-line-signature": signature})


def meta_request(run):
    body = meta_body(run)
    signature = "sha256=" + hmac.new(META_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return apigw("/meta", body, {"x-hub-signature-256": signature})


class NoDelay(BaseHTTPRequestHandler):
    """http.server writes headers and body separately: without TCP_NODELAY each answer waits
    for the client's delayed ACK (40 ms), which would be measured as the gateway's time."""

    def setup(self):
        super().setup()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# ---- a fake Meta Graph API for the example bot's sends ----

class FakeApi(NoDelay):
    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        data = b'{"recipient_id":"1","message_id":"m_1"}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


# ---- SQS at a fixed latency: how the ingress's parallel calls fare when SQS is not moto ----

SQS_LATENCY_MS = float(os.environ.get("BENCH_SQS_LATENCY_MS", "20"))


class FixedLatencySqs(NoDelay):
    """Answers SendMessageBatch (AWS JSON protocol) after SQS_LATENCY_MS, every entry accepted."""
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        request = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
        time.sleep(SQS_LATENCY_MS / 1000)
        entries = request.get("Entries", [])
        data = json.dumps({"Successful": [{
            "Id": e["Id"], "MessageId": f"fixed-{time.monotonic_ns()}-{e['Id']}",
            "MD5OfMessageBody": hashlib.md5(e["MessageBody"].encode()).hexdigest()} for e in entries],
            "Failed": []}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/x-amz-json-1.0")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


# ---- a minimal Lambda runtime API: one function process at a time ----

class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a function killed mid-poll resets its connection; expected here


class Runtime:
    def __init__(self):
        self.events = queue.Queue()
        self.responses = queue.Queue()
        self.first_poll = None
        runtime = self

        class Handler(NoDelay):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                if not self.path.endswith("/runtime/invocation/next"):
                    return self._send(404, b"{}")
                if runtime.first_poll is None:
                    runtime.first_poll = time.monotonic()
                try:
                    request_id, payload = runtime.events.get(timeout=600)
                except queue.Empty:
                    return self._send(500, b"{}")
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("lambda-runtime-aws-request-id", request_id)
                self.send_header("lambda-runtime-deadline-ms", str(int(time.time() * 1000) + 60_000))
                self.send_header("lambda-runtime-invoked-function-arn",
                                 "arn:aws:lambda:us-east-1:123456789012:function:bench")
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                runtime.responses.put((self.path, body))
                self._send(202, b'{"status":"OK"}')

            def _send(self, status, data):
                self.send_response(status)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def invoke(self, payload, timeout=600):
        self.events.put((f"req-{time.monotonic_ns()}", payload))
        path, body = self.responses.get(timeout=timeout)
        if not path.endswith("/response"):
            raise RuntimeError(f"the function reported an error: {body[:500]!r}")
        return json.loads(body)


def lambda_env(runtime, name, base):
    return dict(base, AWS_LAMBDA_RUNTIME_API=runtime.address, AWS_LAMBDA_FUNCTION_NAME=name,
                AWS_LAMBDA_FUNCTION_VERSION="$LATEST", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="128",
                AWS_LAMBDA_LOG_STREAM_NAME="bench", AWS_LAMBDA_LOG_GROUP_NAME=f"/aws/lambda/{name}")


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def stop(process):
    process.kill()
    process.wait(timeout=10)


def cold_starts(binary, name, env):
    """Milliseconds from spawning the bootstrap to its first poll of the runtime API."""
    times = []
    for _ in range(COLD_STARTS):
        runtime = Runtime()
        started = time.monotonic()
        process = subprocess.Popen([binary], env=lambda_env(runtime, name, env),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while runtime.first_poll is None:
            if process.poll() is not None:
                sys.exit(f"{name} exited during its cold start")
            time.sleep(0.0002)
        times.append((runtime.first_poll - started) * 1000)
        stop(process)
        runtime.server.shutdown()
    return times


def main():
    endpoint = os.environ.get("GATEWAY_TEST_AWS_ENDPOINT")
    if not endpoint:
        sys.exit("GATEWAY_TEST_AWS_ENDPOINT is not set (scripts/bench-lambda.sh starts moto)")
    sqs, _, queue_url, queue_arn, table = aws_resources(endpoint, "bench")
    suffix = str(os.getpid())
    api = ThreadingHTTPServer(("127.0.0.1", 0), FakeApi)
    api.daemon_threads = True
    threading.Thread(target=api.serve_forever, daemon=True).start()
    api_url = f"http://127.0.0.1:{api.server_address[1]}"
    # moto serves about 20 SendMessageBatch calls a second, one at a time: the budget and the
    # per-call timeout are raised so that moto's pace is measured rather than refused.
    env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing",
               AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1", QUEUE_URL=queue_url,
               IDEMPOTENCY_TABLE=table, LINE_CHANNEL_SECRET=LINE_SECRET, META_APP_SECRET=META_SECRET,
               META_VERIFY_TOKEN="bench-verify-token", META_PAGE_ACCESS_TOKEN="bench-page-token",
               META_GRAPH_API_BASE_URL=api_url, ENQUEUE_BUDGET_MS="60000", SQS_ATTEMPT_TIMEOUT_MS="30000",
               GATEWAY_METRICS="emf", RUST_LOG="warn")

    # 1. Sizes, built per package as `cargo lambda build --release` does.
    for binary in ("ingress", "worker"):
        subprocess.run(["cargo", "build", "--release", "--locked", "--bin", binary], cwd=ROOT, env=env, check=True)
    binaries = {name: os.path.join(TARGET, "release", name) for name in ("ingress", "worker")}
    print(f"\n## Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on "
          f"{os.cpu_count()} CPUs ({cpu_model()})\n")
    print("| function | bootstrap size (stripped) | cold start p50 | cold start max | peak memory |")
    print("| --- | ---: | ---: | ---: | --- |")

    # 2. Cold start and peak memory.
    rows = {}
    for name, binary in binaries.items():
        rows[name] = (os.path.getsize(binary), cold_starts(binary, name, env))

    runtime = Runtime()
    process = subprocess.Popen([binaries["ingress"]], env=lambda_env(runtime, "ingress", env),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    answer = runtime.invoke(meta_request("mem"))
    if answer.get("statusCode") != 200:
        sys.exit(f"ingress answered {answer.get('statusCode')} to the 1000-item batch: {answer}")
    ingress_peak = peak_rss_mib(process.pid)
    stop(process)
    runtime.server.shutdown()
    messages = []
    while len(messages) < 1000:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=900)
        if not batch.get("Messages"):
            break
        messages.extend(batch["Messages"])
    if len(messages) != 1000:
        sys.exit(f"{len(messages)} messages queued for the 1000-item batch")

    worker_peaks = []
    for label, size, records in (("batches of 10", 10, messages), ("one batch of 1000", 1000, messages)):
        if size == 1000:  # fresh keys, so that the second run is not all duplicates
            records = [dict(m, Body=m["Body"].replace('"key":"meta:', '"key":"meta:again:', 1)) for m in messages]
        runtime = Runtime()
        process = subprocess.Popen([binaries["worker"]], env=lambda_env(runtime, "worker", env),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started = time.monotonic()
        failures = 0
        for i in range(0, len(records), size):
            failures += len(runtime.invoke(sqs_event(records[i:i + size], queue_arn)).get("batchItemFailures", []))
        elapsed = time.monotonic() - started
        worker_peaks.append(f"{peak_rss_mib(process.pid):.1f} MiB ({label}, {len(records) / elapsed:.0f} events/s"
                            f"{f', {failures} failed' if failures else ''})")
        stop(process)
        runtime.server.shutdown()

    for name, (size, times) in rows.items():
        peak = (f"{ingress_peak:.1f} MiB (1000-item Meta batch)" if name == "ingress"
                else "; ".join(worker_peaks))
        print(f"| {name} | {size / 1e6:.1f} MB | {statistics.median(times):.1f} ms | {max(times):.1f} ms | {peak} |")

    # 3. The ingress under cargo lambda watch. moto's SendMessageBatch slows down as a queue fills
    # (about 30 ms a call on an empty queue, 160 ms with 800 messages in it), so every run gets a
    # fresh queue: the one-event requests one, each 1000-item batch its own.
    def fresh_queue(label):
        return sqs.create_queue(QueueName=f"bench-{label}-{suffix}")["QueueUrl"]

    one, one_emf = under_watch(dict(env, QUEUE_URL=fresh_queue("one")),
                               [line_request(1000 + i) for i in range(ONE_EVENT_REQUESTS)])
    batch, batch_emf = [], []
    for i in range(BATCH_REQUESTS):
        walls, emf = under_watch(dict(env, QUEUE_URL=fresh_queue(f"batch{i}")), [meta_request(f"e2e{i}")])
        batch += walls
        batch_emf += emf
    fixed = QuietServer(("127.0.0.1", 0), FixedLatencySqs)
    threading.Thread(target=fixed.serve_forever, daemon=True).start()
    fixed_env = dict(env, AWS_ENDPOINT_URL_SQS=f"http://127.0.0.1:{fixed.server_address[1]}", QUEUE_URL=queue_url)
    fixed_one, fixed_one_emf = under_watch(fixed_env, [line_request(5000 + i) for i in range(ONE_EVENT_REQUESTS)])
    fixed_batch, fixed_batch_emf = under_watch(fixed_env, [meta_request(f"fixed{i}") for i in range(20)])
    fixed.shutdown()
    api.shutdown()

    print("\n| request through `cargo lambda watch` | requests | p50 | p99 | max | handler's own time (p50 / p99) "
          "| runtime and transport (p50) | share outside SQS calls (p50) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, walls, emf in (("LINE, 1 event; SQS on moto", one, one_emf),
                              ("Meta, 1000 items; SQS on moto", batch, batch_emf),
                              (f"LINE, 1 event; SQS at {SQS_LATENCY_MS:.0f} ms a call", fixed_one, fixed_one_emf),
                              (f"Meta, 1000 items; SQS at {SQS_LATENCY_MS:.0f} ms a call", fixed_batch, fixed_batch_emf)):
        own = [r["RequestTime"] - r.get("EnqueueTime", 0) for r in emf]
        overhead = [wall - r["RequestTime"] for wall, r in zip(walls, emf)]
        share = [(wall - r.get("EnqueueTime", 0)) / wall for wall, r in zip(walls, emf)]
        print(f"| {label} | {len(walls)} | {fmt(percentile(walls, .5))} | {fmt(percentile(walls, .99))} | "
              f"{fmt(max(walls))} | {fmt(percentile(own, .5))} / {fmt(percentile(own, .99))} | "
              f"{fmt(percentile(overhead, .5))} | {statistics.median(share) * 100:.0f} % |")


def under_watch(env, payloads):
    """Posts each payload to the ingress under `cargo lambda watch --release` after 20 warm-up
    requests; the wall time of each and the EMF record the function wrote for it."""
    port = free_port()
    log_path = os.path.join(TARGET, "bench-lambda-watch.log")
    log = open(log_path, "w")
    watch = subprocess.Popen(["cargo", "lambda", "watch", "--release", "--invoke-port", str(port),
                              "--ignore-changes", "--timeout", "300"],
                             cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/2015-03-31/functions/ingress/invocations"

    def post(payload):
        data = json.dumps(payload).encode()
        started = time.perf_counter()
        with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST"), timeout=300) as r:
            answer = json.loads(r.read())
        elapsed = (time.perf_counter() - started) * 1000
        if answer.get("statusCode") != 200:
            sys.exit(f"ingress answered {answer}; see {log_path}")
        return elapsed

    try:
        for attempt in range(600):
            try:
                post(line_request(attempt))
                break
            except (OSError, ValueError):
                if watch.poll() is not None:
                    sys.exit(f"cargo lambda watch exited; see {log_path}")
                time.sleep(1)
        for i in range(20):
            post(line_request(i))
        log.flush()
        time.sleep(0.5)
        skip = len(emf_records(log_path))
        walls = [post(payload) for payload in payloads]
        time.sleep(1)
        records = emf_records(log_path)[skip:]
    finally:
        os.killpg(watch.pid, signal.SIGTERM)
        try:
            watch.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(watch.pid, signal.SIGKILL)
        log.close()
    if len(records) != len(walls):
        sys.exit(f"{len(records)} EMF records for {len(walls)} requests; see {log_path}")
    return walls, records


def emf_records(path):
    records = []
    with open(path, errors="replace") as f:
        for line in f:
            if '"RequestTime"' in line and '"_aws"' in line:
                try:
                    records.append(json.loads(line[line.index("{"):]))
                except ValueError:
                    pass
    return records


def fmt(ms):
    return f"{ms * 1000:.0f} µs" if ms < 1 else f"{ms:.1f} ms"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
