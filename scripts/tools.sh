#!/usr/bin/env bash
# Installs the pinned tools the tests use into .tools/venv (ignored by git): moto (local SQS and
# DynamoDB), cargo-lambda (Lambda runtime emulator and builder), the AWS SAM CLI and cfn-lint; and
# what the examples in examples/ import into .tools/examples-venv (apart, so that the LINE SDK's
# dependencies never meet the SAM CLI's).
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

EXAMPLE_PINS=(
  "line-bot-sdk==3.27.0"
  "standardwebhooks==1.1.0"
)
EXAMPLES_VENV=.tools/examples-venv

# install VENV SECONDS PIN...: the pins into VENV unless its stamp says they are there.
install() {
  local venv=$1 seconds=$2
  shift 2
  local pins=("$@")
  if [ -f "$venv/.pins" ] && [ "$(cat "$venv/.pins")" = "${pins[*]}" ]; then
    echo "tools: already installed in $venv (${pins[*]})"
    return 0
  fi
  if ! python3 -m venv --help > /dev/null 2>&1; then
    echo "tools: python3's venv module is missing (Debian and Ubuntu: apt install python3-venv)" >&2
    exit 1
  fi
  echo "tools: installing ${pins[*]} into $venv (about $seconds s the first time)"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${pins[@]}"
  echo "tools: installed"
  echo "${pins[*]}" > "$venv/.pins"
}

install "$VENV" 90 "${PINS[@]}"
install "$EXAMPLES_VENV" 15 "${EXAMPLE_PINS[@]}"
