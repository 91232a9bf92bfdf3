#!/usr/bin/env bash
# The ingress core beside the floor and the official LINE SDKs, on the same bodies, in one run.
#   scripts/bench-peers.sh [SECONDS_PER_MEASUREMENT] [ROUNDS]
# Every harness reports, for each body, the best of ROUNDS (default 3) counts of SECONDS each:
# on a shared VM a busy moment would otherwise fall on one harness and not the others.
# Installs line-bot-sdk (Python) and @line/bot-sdk (Node.js), pinned, into .tools/peers (ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-2}"
ROUNDS="${2:-3}"
PEERS=.tools/peers
BODIES=target/peers
mkdir -p "$PEERS" "$BODIES"

[ -x "$PEERS/venv/bin/python" ] || python3 -m venv "$PEERS/venv"
"$PEERS/venv/bin/python" -m pip install --quiet --disable-pip-version-check "line-bot-sdk==3.27.0"
if [ ! -d "$PEERS/node/node_modules/@line/bot-sdk" ]; then
  mkdir -p "$PEERS/node"
  (cd "$PEERS/node" && npm install --silent --no-audit --no-fund "@line/bot-sdk@11.2.0" >/dev/null)
fi

python3 scripts/peers/make_bodies.py "$BODIES"
cargo build --quiet --release -p shared --features bench-readers --example ingress_throughput
RUST=$(target/release/examples/ingress_throughput "$BODIES" "$SECONDS_EACH" "$ROUNDS")
PYTHON=$("$PEERS/venv/bin/python" scripts/peers/python_sdk.py "$BODIES" "$SECONDS_EACH" "$ROUNDS")
# ES modules resolve imports from the script's own folder: run it beside the installed SDK.
cp scripts/peers/node_sdk.mjs "$PEERS/node/node_sdk.mjs"
NODE=$(node "$PEERS/node/node_sdk.mjs" "$BODIES" "$SECONDS_EACH" "$ROUNDS")

python3 - "$RUST" "$PYTHON" "$NODE" <<'PY'
import json, sys
rows = lambda text: {r["name"]: r for r in map(json.loads, filter(None, text.splitlines()))}
rust, python, node = map(rows, sys.argv[1:4])
print("| body | bytes | gateway ops/s | floor ops/s | gateway time / floor time | gateway / Python SDK throughput | gateway / Node.js SDK throughput |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for name, r in rust.items():
    g, f = r["gateway_ops_per_s"], r["floor_ops_per_s"]
    py = python.get(name, {}).get("ops_per_s")
    nd = node.get(name, {}).get("ops_per_s")
    print(f"| {name} | {r['bytes']:,} | {g:,.0f} | {f:,.0f} | {f / g:.2f}× | "
          + (f"{g / py:.1f}× (SDK {py:,.0f} ops/s)" if py else "n/a (the SDK parses LINE only)") + " | "
          + (f"{g / nd:.2f}× (SDK {nd:,.0f} ops/s)" if nd else "n/a") + " |")
PY
