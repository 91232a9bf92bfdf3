#!/usr/bin/env bash
# Installs the pinned tools the tests use into .tools/venv (ignored by git): moto (local SQS and
# DynamoDB), cargo-lambda (Lambda runtime emulator and builder), the AWS SAM CLI and cfn-lint.
# Safe to run again: it installs only what is missing or at another version.
set -euo pipefail
cd "$(dirname "$0")/.."

PINS=(
  "moto[server]==5.2.5"
  "cargo-lambda==1.9.2"
  "aws-sam-cli==1.170.0"
  "cfn-lint==1.58.0"
)
VENV=.tools/venv
STAMP="$VENV/.pins"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "${PINS[*]}" ]; then
  exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PINS[@]}"
echo "${PINS[*]}" > "$STAMP"
