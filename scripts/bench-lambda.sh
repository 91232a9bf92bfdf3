#!/usr/bin/env bash
# Lambda-level benchmarks (issue 8; figures in BENCHMARKS.md): sizes, cold starts, peak memory,
# the ingress end to end under `cargo lambda watch`, and the worker's throughput per store.
# Installs the pinned tools, starts moto on a free loopback port and stops it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export PATH="$ROOT/.tools/venv/bin:$PATH"
scripts/tools.sh >/dev/null

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$CARGO_TARGET_DIR"
"$ROOT/.tools/venv/bin/python" scripts/moto_server.py -H 127.0.0.1 -p "$PORT" > "$CARGO_TARGET_DIR/bench-moto.log" 2>&1 &
MOTO=$!
trap 'kill $MOTO 2>/dev/null || true; wait $MOTO 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do curl -s -o /dev/null "http://127.0.0.1:$PORT/moto-api/" && break; sleep 0.2; done
export GATEWAY_TEST_AWS_ENDPOINT="http://127.0.0.1:$PORT"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1

"$ROOT/.tools/venv/bin/python" scripts/bench-lambda.py
echo
cargo bench --locked -p worker --bench worker_throughput 2>/dev/null
