#!/usr/bin/env python3
"""The ingress's cold path as a platform waits for it (issue 20): from process start through its
first invocation's SendMessageBatch, against a stand-in for Secrets Manager and SQS over TLS
(a self-signed certificate the process trusts through SSL_CERT_FILE), and the minimal Lambda
runtime API of bench-lambda.py. Prints a Markdown table per build; asserts nothing.

Phases, timed from the stand-in's and the runtime API's side (no timer in the function):
- start: process start until the secret's connection is accepted (runtime, logging, AWS config)
- secret: that connection's TLS handshake, and the GetSecretValue call until its answer is sent
- rest of init: until the function's first poll of the runtime API
- first invocation: the event handed over until SQS's connection is accepted (or, pre-warmed,
  its request arrives), its TLS handshake, the SendMessageBatch call, and the answer posted back
- total: process start until the invocation's answer

Usage: scripts/bench-cold.py BINARY LABEL [COLD_STARTS] [ENV=VALUE ...]
Run through scripts/bench-cold.sh, which builds the variants.
"""
import datetime
import hashlib
import importlib.util
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
_spec = importlib.util.spec_from_file_location("bench_lambda", os.path.join(HERE, "bench-lambda.py"))
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

SECRET_ID = "bench-cold-secret"


def self_signed(folder):
    """A private CA (what the process trusts, through SSL_CERT_FILE) and a certificate it signed
    for localhost and 127.0.0.1, as PEM files: (ca, certificate, key)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress
    now = datetime.datetime.now(datetime.timezone.utc)

    def certificate(subject, key, issuer, issuer_key, ca):
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=30))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), True))
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate("bench-cold CA", ca_key, "bench-cold CA", ca_key, True)
    leaf = certificate("localhost", key, "bench-cold CA", ca_key, False)
    paths = [os.path.join(folder, name) for name in ("ca.pem", "cert.pem", "key.pem")]
    for path, data in zip(paths, [ca.public_bytes(serialization.Encoding.PEM),
                                  leaf.public_bytes(serialization.Encoding.PEM),
                                  key.private_bytes(serialization.Encoding.PEM,
                                                    serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption())]):
        with open(path, "wb") as f:
            f.write(data)
    return paths


class Log:
    def __init__(self):
        self.lock = threading.Lock()
        self.events = []

    def add(self, *event):
        with self.lock:
            self.events.append(event)

    def first(self, kind, target=None):
        with self.lock:
            for event in self.events:
                if event[0] == kind and (target is None or event[1] == target):
                    return event
        return None


class StandIn(ThreadingHTTPServer):
    """Secrets Manager and SQS (AWS JSON protocol) over TLS; handshakes timed one by one."""
    daemon_threads = True

    def __init__(self, context, log, secret):
        self.context, self.log, self.secret = context, log, secret
        super().__init__(("127.0.0.1", 0), Handler)

    def get_request(self):
        sock, address = self.socket.accept()
        accepted = time.monotonic()
        tls = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        tls.do_handshake()
        # Which service the connection is for is known only at its first request.
        tls.bench_connection = (accepted, time.monotonic())
        return tls, address

    def handle_error(self, request, client_address):
        pass


class Handler(bench.NoDelay):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        received = time.monotonic()
        target = self.headers.get("x-amz-target", "")
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        request = json.loads(body or b"{}")
        connection = getattr(self.connection, "bench_connection", None)
        if connection is not None:
            self.server.log.add("connection", target, *connection)
            self.connection.bench_connection = None
        if target == "secretsmanager.GetSecretValue":
            answer = {"ARN": f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{SECRET_ID}",
                      "Name": SECRET_ID, "VersionId": "v1", "SecretString": self.server.secret}
        elif target == "AmazonSQS.SendMessageBatch":
            answer = {"Successful": [{"Id": e["Id"], "MessageId": f"m-{e['Id']}",
                                      "MD5OfMessageBody": hashlib.md5(e["MessageBody"].encode()).hexdigest()}
                                     for e in request.get("Entries", [])], "Failed": []}
        elif target == "AmazonSQS.GetQueueAttributes":
            answer = {"Attributes": {}}
        else:
            answer = {"__type": "UnknownOperationException"}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("content-type", "application/x-amz-json-1.0")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.server.log.add("request", target, received, time.monotonic())

    def log_message(self, *args):
        pass


def one_cold_start(binary, env, server, log):
    runtime = bench.Runtime()
    log.events.clear()
    started = time.monotonic()
    process = subprocess.Popen([binary], env=bench.lambda_env(runtime, "ingress", env),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while runtime.first_poll is None:
            if process.poll() is not None:
                sys.exit("the ingress exited during its cold start")
            time.sleep(0.0002)
        invoked = time.monotonic()
        answer = runtime.invoke(bench.line_request(0), timeout=30)
        answered = time.monotonic()
        if answer.get("statusCode") != 200:
            sys.exit(f"the first invocation answered {answer.get('statusCode')}: {answer.get('body')}")
    finally:
        bench.stop(process)
        runtime.server.shutdown()
    secret_conn = log.first("connection", "secretsmanager.GetSecretValue")
    secret_call = log.first("request", "secretsmanager.GetSecretValue")
    sqs_conn = log.first("connection", "AmazonSQS.SendMessageBatch") or log.first(
        "connection", "AmazonSQS.GetQueueAttributes")
    sqs_call = log.first("request", "AmazonSQS.SendMessageBatch")
    ms = lambda a, b: (b - a) * 1000
    sqs_in_invocation = sqs_conn is not None and sqs_conn[2] >= invoked
    return {
        "start": ms(started, secret_conn[2]),
        "secret handshake": ms(secret_conn[2], secret_conn[3]),
        "secret call": ms(secret_conn[3], secret_call[3]),
        "rest of init": ms(secret_call[3], runtime.first_poll),
        "init": ms(started, runtime.first_poll),
        "to SQS": ms(invoked, sqs_conn[2] if sqs_in_invocation else sqs_call[2]),
        "SQS handshake": ms(sqs_conn[2], sqs_conn[3]) if sqs_in_invocation else 0.0,
        "SendMessageBatch": ms(sqs_call[2], sqs_call[3]),
        "answer": ms(sqs_call[3], answered),
        "first invocation": ms(invoked, answered),
        "total": ms(started, answered),
    }


def main():
    binary, label = sys.argv[1], sys.argv[2]
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    extra = dict(arg.split("=", 1) for arg in sys.argv[4:])
    folder = tempfile.mkdtemp(prefix="bench-cold-")
    ca, cert, key = self_signed(folder)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    log = Log()
    secret = json.dumps({"LINE_CHANNEL_SECRET": bench.LINE_SECRET, "META_APP_SECRET": bench.META_SECRET,
                         "META_VERIFY_TOKEN": "bench-verify-token"})
    server = StandIn(context, log, secret)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"https://localhost:{server.server_address[1]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LINE_", "META_", "AWS_"))}
    env.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_REGION="us-east-1", SSL_CERT_FILE=ca, GATEWAY_SECRET_ID=SECRET_ID,
               QUEUE_URL=f"{endpoint}/123456789012/bench-cold.fifo", GATEWAY_METRICS="off",
               RUST_LOG="warn")
    env.update(extra)
    runs = [one_cold_start(binary, env, server, log) for _ in range(count)]
    server.shutdown()
    print(f"\n### {label}: {count} cold starts, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}\n")
    print("| phase | p50 (ms) | max (ms) |")
    print("| --- | ---: | ---: |")
    for phase in runs[0]:
        values = [run[phase] for run in runs]
        print(f"| {phase} | {statistics.median(values):.1f} | {max(values):.1f} |")
    print(json.dumps({"label": label, "runs": runs}), file=sys.stderr)


if __name__ == "__main__":
    main()
