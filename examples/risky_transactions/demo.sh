#!/usr/bin/env bash
# The bundled example end to end: generate data, train, init, pack, verify.
set -euo pipefail
cd "$(dirname "$0")"
WORK=work
BUNDLE="$WORK/dist/risky-transactions-1.0.0"

step() { printf '\n\033[1m== %s ==\033[0m\n' "$*"; }

step "1/5 generate synthetic transactions (seed 42)"
python generate.py --rows 60000 --seed 42 --out "$WORK"

step "2/5 train the model"
python train.py --train "$WORK/train.parquet" --test "$WORK/test.parquet" --out "$WORK/model.skops" --seed 42

step "3/5 init: infer a data contract from the sample (scaffold only; the example ships a complete spec)"
mlhandoff init --model "$WORK/model.skops" --sample "$WORK/sample.parquet" --label is_fraud \
  --name risky-transactions --out "$WORK/handoff.init.yaml" --force

step "4/5 pack the complete spec (handoff.yaml) into a bundle"
mlhandoff pack handoff.yaml --out "$WORK/dist" --force

step "5/5 verify the bundle as the receiving engineer would"
mlhandoff verify "$BUNDLE"

echo
echo "bundle:          examples/risky_transactions/$BUNDLE"
echo "handoff README:  examples/risky_transactions/$BUNDLE/docs/README.md"
echo "model card:      examples/risky_transactions/$BUNDLE/docs/MODEL_CARD.md"
