#!/usr/bin/env bash
# The ingress's cold path (BENCHMARKS.md, "Cold path"): 20 cold starts of each build through its
# first SendMessageBatch, against a TLS stand-in for Secrets Manager and SQS.
#   scripts/bench-cold.sh [COLD_STARTS]
# Builds the ingress as released (.cargo/config.toml: no jitter entropy) and as before the fix
# (AWS_LC_SYS_NO_JITTER_ENTROPY=0, in a target directory of its own), then times both, and the
# released one without the SQS connection opened during init (SQS_PREWARM=off).
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${1:-20}"
TARGET="${CARGO_TARGET_DIR:-target}"
scripts/tools.sh >/dev/null
PYTHON=.tools/venv/bin/python  # moto's venv has `cryptography`, for the stand-in's certificate

cargo build --quiet --release --locked --bin ingress
AWS_LC_SYS_NO_JITTER_ENTROPY=0 CARGO_TARGET_DIR="$TARGET/jitter" \
  cargo build --quiet --release --locked --bin ingress

"$PYTHON" scripts/bench-cold.py "$TARGET/jitter/release/ingress" \
  "before: jitter entropy, SQS connected in the first request" "$COUNT" SQS_PREWARM=off 2>/dev/null
"$PYTHON" scripts/bench-cold.py "$TARGET/release/ingress" \
  "no jitter entropy, SQS connected in the first request" "$COUNT" SQS_PREWARM=off 2>/dev/null
"$PYTHON" scripts/bench-cold.py "$TARGET/release/ingress" \
  "released: no jitter entropy, SQS connected during init" "$COUNT" 2>/dev/null
