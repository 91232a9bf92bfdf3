#!/usr/bin/env bash
# The deterministic simulation's long run: `scripts/simulate.sh [SEEDS] [FIRST_SEED]`
# (default 100,000 seeds from 1,000,001, release build). The test command runs 2,000 seeds from 1
# in every `cargo test`; this explores further. A failing seed prints the command that replays it
# with its whole trace.
set -euo pipefail
cd "$(dirname "$0")/.."
SIM_SEEDS="${1:-100000}" SIM_FIRST_SEED="${2:-1000001}" \
  cargo test --release -p shared --test simulation thousands_of_seeded_runs_keep_every_promise \
  -- --nocapture
