#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 120) each, with corpora seeded from events/.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# Needs the nightly toolchain; installs cargo-fuzz if it is missing. Crashes land in
# fuzz/artifacts/TARGET/; keep each as a regression test (shared/tests/fuzz_regressions.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-120}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(line_webhook meta_webhook event_models envelope_decode meta_verification)

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

# Seed corpora from the sample events: request bodies, single events and items, queue bodies and
# verification queries.
python3 - <<'PY'
import base64, hashlib, json, os
root = "fuzz/corpus"
def put(target, data):
    folder = os.path.join(root, target)
    os.makedirs(folder, exist_ok=True)
    data = data if isinstance(data, bytes) else data.encode()
    with open(os.path.join(folder, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)
for name in sorted(os.listdir("events")):
    event = json.load(open(os.path.join("events", name)))
    if name.startswith(("line-", "meta-")):
        if event.get("rawQueryString"):
            put("meta_verification", event["rawQueryString"])
        body = event.get("body")
        if not body:
            continue
        body = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
        put("line_webhook" if name.startswith("line-") else "meta_webhook", body)
        parsed = json.loads(body)
        for item in parsed.get("events", []):
            put("event_models", json.dumps(item))
        for entry in parsed.get("entry", []):
            for items in (entry.get("messaging", []), entry.get("standby", []), entry.get("changes", [])):
                for item in items:
                    put("event_models", json.dumps(item))
    elif name.startswith("sqs-"):
        for record in event["Records"]:
            put("envelope_decode", record["body"])
PY

for target in "${TARGETS[@]}"; do
  echo "==> fuzzing $target for ${SECONDS_EACH}s"
  cargo +nightly fuzz run --fuzz-dir fuzz "$target" "fuzz/corpus/$target" -- \
    -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -print_final_stats=1 2>&1 \
    | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::new_units_added|==[0-9]+==|SUMMARY|Test unit written|artifact_prefix)" || true
  if ls "fuzz/artifacts/$target"/crash-* >/dev/null 2>&1; then
    echo "crashes in fuzz/artifacts/$target" >&2
    exit 1
  fi
done
