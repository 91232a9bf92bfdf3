#!/usr/bin/env bash
# The project's one test command (README "Testing"; .ci/run runs exactly this).
#
# It installs the pinned tools it needs (scripts/tools.sh), checks formatting, lints and the SAM
# template, starts moto on a free loopback port, runs every test and the end-to-end test against
# it, builds both functions with `sam build`, and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# One target directory for every step, so the AWS SDK is compiled once.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
# A cold run compiles everything once: incremental caches would only take disk (2.4 GB of it).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export PATH="$ROOT/.tools/venv/bin:$PATH"
export SAM_CLI_TELEMETRY=0

step() { printf '\n==> %s\n' "$*"; }
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_http() { # url, what
  for _ in $(seq 1 150); do
    if curl -s -o /dev/null "$1"; then return 0; fi
    sleep 0.2
  done
  echo "$2 did not start at $1" >&2
  return 1
}

# The disk this run had, at its start and end: a CI machine once ran out of it mid-build.
disk() { df -h "$ROOT" | awk 'NR == 2 { print "disk: " $4 " free of " $2 " at '"$1"'" }'; }
disk start

step "formatting (cargo fmt --check)"
cargo fmt --all -- --check

step "one build of every dependency (features unified across the workspace)"
python3 scripts/check_unified.py

step "lints (cargo clippy -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tools (pinned, in .tools/venv)"
scripts/tools.sh

step "SAM template (sam validate --lint)"
AWS_REGION=us-east-1 sam validate --lint
AWS_REGION=us-east-1 sam validate --lint -t examples/eventbridge-line-python/template.yaml
# What the linter cannot see: alarms that can notify, one secret per function, the alarms and
# dashboard the gateway needs, naming metrics the code emits.
"$ROOT/.tools/venv/bin/python" scripts/check_template.py
# Every LINE message builder against LINE's own OpenAPI definition of the Messaging API.
"$ROOT/.tools/venv/bin/python" scripts/check_messages.py

step "moto (local SQS, DynamoDB and Secrets Manager)"
MOTO_PORT=$(free_port)
mkdir -p target/logs
"$ROOT/.tools/venv/bin/python" scripts/moto_server.py -H 127.0.0.1 -p "$MOTO_PORT" > target/logs/moto.log 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$MOTO_PORT/moto-api/" "moto"
export GATEWAY_TEST_AWS_ENDPOINT="http://127.0.0.1:$MOTO_PORT"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1

step "unit, integration and property tests (cargo test)"
# Tests that need moto are ignored by a plain `cargo test` (listed as ignored, not passed); here
# moto is up, so they run.
cargo test --workspace --locked -- --include-ignored

step "end to end: both functions under cargo lambda watch, every sample event twice"
"$ROOT/.tools/venv/bin/python" scripts/e2e.py

step "destinations: the examples' HTTPS receiver and EventBridge bot against chat-gateway"
"$ROOT/.tools/venv/bin/python" scripts/destinations_test.py

step "README: the local walkthrough as documented, and the minimal bot in place of the example bot"
"$ROOT/.tools/venv/bin/python" scripts/readme_test.py

step "deployable build (sam build, x86_64: the only target these machines have)"
# The check builds with a quicker release profile (no LTO, parallel codegen): it proves that SAM
# builds both functions, and saves two single-unit LTO links on a cold machine. `sam build` for a
# deployment uses Cargo.toml's release profile as it is.
( while sleep 30; do echo "sam build: still building ($SECONDS s since the test command started)"; done ) &
TICKER=$!
PIDS+=($TICKER)
CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
  sam build --parameter-overrides Architecture=x86_64
kill "$TICKER" 2>/dev/null || true
for function in IngressFunction WorkerFunction; do
  test -x ".aws-sam/build/$function/bootstrap" || { echo "sam build did not produce $function/bootstrap" >&2; exit 1; }
done
ls -l .aws-sam/build/*/bootstrap

disk end; du -sh "$CARGO_TARGET_DIR" | awk '{ print "disk: the target directory holds " $1 }'
step "all checks passed"
