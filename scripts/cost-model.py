#!/usr/bin/env python3
"""Cost per million events of the deployed gateway (issue 8), from measured figures and list prices.

Prints a Markdown table. Every input is a flag, so the model can be rerun with new measurements
or prices: `scripts/cost-model.py --help`. Defaults: us-east-1 list prices (November 2026) and the
figures in BENCHMARKS.md.
"""
import argparse

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
# List prices, us-east-1.
p.add_argument("--lambda-gb-second", type=float, default=0.0000133334, help="arm64 $/GB-s (x86_64: 0.0000166667)")
p.add_argument("--lambda-request", type=float, default=0.20e-6, help="$ per invocation")
p.add_argument("--http-api-request", type=float, default=1.00e-6, help="API Gateway HTTP API $ per request")
p.add_argument("--sqs-request", type=float, default=0.40e-6, help="standard queue $ per request (FIFO 0.50e-6)")
p.add_argument("--dynamodb-write", type=float, default=0.625e-6, help="on-demand $ per write request unit")
p.add_argument("--dynamodb-read", type=float, default=0.125e-6, help="on-demand $ per read request unit")
p.add_argument("--s3-put", type=float, default=0.005e-3, help="$ per PUT")
p.add_argument("--logs-gb", type=float, default=0.50, help="CloudWatch Logs ingestion $ per GB")
# Measured (BENCHMARKS.md) and assumed figures.
p.add_argument("--memory-mb", type=int, default=128, help="both functions (peak measured: 13-15 MiB)")
p.add_argument("--ingress-own-ms", type=float, default=0.1, help="ingress's own time per request (measured p99 under 0.1 ms)")
p.add_argument("--sqs-call-ms", type=float, default=15.0, help="assumed SendMessageBatch latency in-region")
p.add_argument("--events-per-request", type=float, default=1.0, help="LINE usually sends one event per request")
p.add_argument("--batch", type=float, default=10.0, help="events per worker invocation (10 when busy, 1 when quiet)")
p.add_argument("--store-call-ms", type=float, default=5.0, help="assumed DynamoDB PutItem latency in-region")
p.add_argument("--worker-concurrency", type=float, default=8.0)
p.add_argument("--log-bytes-per-event", type=float, default=1000.0, help="ingress line + EMF + worker line")
p.add_argument("--archive", action="store_true", help="add the archive: one GetItem, one 2 KB PutItem per message")
p.add_argument("--media-share", type=float, default=0.1, help="with --archive: share of messages with a file (2 objects each)")
a = p.parse_args()

M = 1_000_000
gb = a.memory_mb / 1024
requests = M / a.events_per_request
batches = M / a.batch

# Ingress: one invocation per request; its own work plus the SQS calls (10 events per call, up to
# 16 in parallel), billed per millisecond with at least 1 ms.
ingress_ms = max(1.0, a.ingress_own_ms + a.sqs_call_ms * max(1.0, a.events_per_request / 160))
rows = [
    ("API Gateway HTTP API", requests * a.http_api_request, f"{requests:,.0f} requests"),
    ("ingress Lambda", requests * (a.lambda_request + ingress_ms / 1000 * gb * a.lambda_gb_second),
     f"{requests:,.0f} invocations × {ingress_ms:.0f} ms at {a.memory_mb} MB"),
]
# SQS: one send per 10 events of a request, one receive and one delete batch per worker batch.
sends = requests * max(1.0, a.events_per_request / 10)
sqs = sends + 2 * batches
rows.append(("SQS", sqs * a.sqs_request, f"{sqs:,.0f} requests (send, receive, delete)"))
# Worker: two store writes per event (claim, complete), events of a batch 8 at a time.
rounds = max(1.0, a.batch / a.worker_concurrency)
worker_ms = max(1.0, rounds * 2 * a.store_call_ms)
rows.append(("worker Lambda (gateway's part)", batches * (a.lambda_request + worker_ms / 1000 * gb * a.lambda_gb_second),
             f"{batches:,.0f} invocations × {worker_ms:.0f} ms"))
rows.append(("DynamoDB idempotency", 2 * M * a.dynamodb_write, "2 write units per new event (claim, complete)"))
rows.append(("CloudWatch Logs", M * a.log_bytes_per_event / 1e9 * a.logs_gb, f"{a.log_bytes_per_event:.0f} bytes per event"))
if a.archive:
    rows.append(("archive records", M * (a.dynamodb_read + 2 * a.dynamodb_write),
                 "1 read + 2 write units per message (a 1-2 KB record)"))
    files = M * a.media_share * 2
    rows.append(("archive media", files * (a.s3_put + a.dynamodb_read + 2 * a.dynamodb_write),
                 f"{files:,.0f} files: a PUT and a record update each (storage extra)"))

total = sum(cost for _, cost, _ in rows)
print(f"| per million events ({a.events_per_request:g} per request, worker batches of {a.batch:g}) | $ | basis |")
print("| --- | ---: | --- |")
for name, cost, basis in rows:
    print(f"| {name} | {cost:.2f} | {basis} |")
print(f"| **total** | **{total:.2f}** | without free tiers; the bot's own API calls extra |")
