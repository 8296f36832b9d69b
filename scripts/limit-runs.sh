#!/usr/bin/env bash
# The rate-distortion runners (issue 12) on the default model, appended to the ledger named
# by EVLEDGER_LEDGER (or the current git root), signed with EVLEDGER_KEY (scripts/example-ledger.sh
# runs it after the demo job). To add them to the example ledger: EVLEDGER_LEDGER=. bash scripts/limit-runs.sh
set -euo pipefail
for target in 0.99 0.94; do
  echo "== evledger run ecsq target_cos=$target"
  evledger run ecsq --param "target_cos=$target"
  echo "== evledger run tcq target_cos=$target"
  evledger run tcq --param "target_cos=$target"
done
echo "== evledger run ecsq feedback=gptq (entropy-coded GPTQ at the 0.99 grid)"
evledger run ecsq --param target_cos=0.99 --param feedback=gptq
echo "== evledger run ecsq feedback=gptq target_embedding_cos=0.985 (the functional target: ≈3.6x)"
evledger run ecsq --param target_embedding_cos=0.985 --param feedback=gptq
echo "== evledger run tcq states=64 (the 64-state trellis at cos 0.99)"
evledger run tcq --param target_cos=0.99 --param states=64
echo "== evledger run pareto budget_ratio=3.55 (continuous allocation at the b4g64 size)"
evledger run pareto --param budget_ratio=3.55
