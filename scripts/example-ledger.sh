#!/usr/bin/env bash
# Regenerate the example ledger at the project root from the current runners, under the key
# named by EVLEDGER_KEY (created in this HOME's key store if missing; only its public half is
# copied into keys/). Builds the ledger in a temporary folder: the demo job (nine runners, the
# legacy samples), scripts/limit-runs.sh, a reproduction of the static claim and a checkpoint;
# then replaces evidence/, keys/ and checkpoints/ here and regenerates the README results.
# Usage: EVLEDGER_KEY=evledger-example-3 bash scripts/example-ledger.sh   (about 10 min)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
key=${EVLEDGER_KEY:?name the signing key: EVLEDGER_KEY=...}
py="$root/.venv/bin/python"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
led="$tmp/ledger"
cd "$tmp"
PATH="$root/.venv/bin:$PATH" "$py" -m evledger.demo "$led" --key "$key"
EVLEDGER_LEDGER="$led" EVLEDGER_KEY="$key" PATH="$root/.venv/bin:$PATH" bash "$root/scripts/limit-runs.sh"
static_seq=$("$py" -m evledger --ledger "$led" log --json | "$py" -c \
  'import json,sys; print(next(e["seq"] for e in json.load(sys.stdin) if e.get("runner") == "static"))')
EVLEDGER_KEY="$key" "$py" -m evledger --ledger "$led" reproduce "$static_seq"
EVLEDGER_KEY="$key" "$py" -m evledger --ledger "$led" checkpoint
"$py" -m evledger --ledger "$led" verify
cd "$root"
rm -rf evidence keys checkpoints
git -C "$led" archive HEAD evidence keys checkpoints | tar -x -C "$root"
"$py" scripts/readme-results.py
echo "example ledger regenerated under key $key: review, then commit evidence/ keys/ checkpoints/ README.md docs/"
