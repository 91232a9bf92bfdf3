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
  echo "tools: already installed (${PINS[*]})"
  exit 0
fi
if ! python3 -m venv --help > /dev/null 2>&1; then
  echo "tools: python3's venv module is missing (Debian and Ubuntu: apt install python3-venv)" >&2
  exit 1
fi
echo "tools: installing ${PINS[*]} into $VENV (about 90 s the first time)"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PINS[@]}"
echo "tools: installed"
echo "${PINS[*]}" > "$STAMP"
