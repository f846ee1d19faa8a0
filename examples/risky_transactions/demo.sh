#!/usr/bin/env bash
# The bundled example end to end: generate data, train, init, pack, sign, sign off, verify,
# evaluate, repro, serve, monitor, and verify again with the repro and monitor records.
set -euo pipefail
cd "$(dirname "$0")"
WORK=work
BUNDLE="$WORK/dist/risky-transactions-1.0.0"

step() { printf '\n\033[1m== %s ==\033[0m\n' "$*"; }

step "1/5 generate synthetic transactions (seed 42)"
python generate.py --rows 60000 --seed 42 --out "$WORK"

step "2/5 train the model"
python train.py --train "$WORK/train.parquet" --test "$WORK/test.parquet" --out "$WORK/model.skops" --seed 42

step "3/5 init: infer a data contract from the training sample and the test split (scaffold only; the example ships a complete spec)"
mlhandoff init --model "$WORK/model.skops" --sample "$WORK/sample.parquet" --eval "$WORK/test.parquet" \
  --label is_fraud --code train.py --seed 42 \
  --command "python train.py --train $WORK/train.parquet --test $WORK/test.parquet --out $WORK/model.skops --seed 42" \
  --name risky-transactions --out "$WORK/handoff.init.yaml" --force
mlhandoff check "$WORK/handoff.init.yaml" | tail -3 || true   # the TODOs a person still fills in
mlhandoff check handoff.yaml                                    # the complete spec: nothing left

step "4/5 pack the complete spec (handoff.yaml) into a bundle, sign it, sign off on it"
# One key pair per person (demo keys; real ones stay with their owners). The spec's
# security.keyring (work/keys) names whose public keys may sign off; pack copies them into keys/.
for who in dana eli pat; do
  [ -f "$WORK/keys/$who.key" ] || mlhandoff keygen "$WORK/keys/$who.key"
done
mlhandoff pack handoff.yaml --out "$WORK/dist" --force
mlhandoff sign "$BUNDLE" --key "$WORK/keys/eli.key"   # OpenSSF model signing: signatures/model.sig
mlhandoff signoff "$BUNDLE" --role ds --name "Dana Scientist" --key "$WORK/keys/dana.key" --comment "metrics and guardrails reviewed"
mlhandoff signoff "$BUNDLE" --role eng --name "Eli Engineer" --key "$WORK/keys/eli.key" --comment "serving and rollback reviewed"
mlhandoff signoff "$BUNDLE" --role pm --name "Pat Manager" --key "$WORK/keys/pat.key"
TRUST=(--public-key "$WORK/keys/eli.pub" --keyring "$WORK/keys")
if command -v model_signing >/dev/null 2>&1; then  # the OpenSSF CLI checks the same signature
  model_signing verify key "$BUNDLE" --signature "$BUNDLE/signatures/model.sig" \
    --public_key "$WORK/keys/eli.pub" --ignore-paths "$BUNDLE/signatures"
fi

step "5/5 verify the bundle as the receiving engineer would (signature, sign-offs, ML Test Score)"
mlhandoff verify "$BUNDLE" "${TRUST[@]}"

step "acceptance: verdicts with 95% paired bootstrap intervals, guardrails by country, latency budget"
mlhandoff evaluate "$BUNDLE" --junit "$WORK/acceptance.xml" || true

step "repro dry run: fresh venv from env/requirements.txt, re-measure, retrain from the bundled code"
mlhandoff repro "$BUNDLE" --retrain || true   # recorded beside the bundle: $BUNDLE.repro.json

step "serve the bundle, send valid and invalid requests, run a short load test"
PORT="${MLHANDOFF_DEMO_PORT:-8765}"
mlhandoff serve "$BUNDLE" --public-key "$WORK/keys/eli.pub" --port "$PORT" --log-dir "$WORK/predictions" --log-level warning &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  python -c "import httpx,sys; sys.exit(httpx.get('http://127.0.0.1:$PORT/readyz').status_code != 200)" 2>/dev/null && break
  sleep 0.2
done
python client.py --url "http://127.0.0.1:$PORT"
mlhandoff loadtest "http://127.0.0.1:$PORT" --bundle "$BUNDLE" --concurrency 8 --duration 5 || true
kill $SERVER && wait $SERVER 2>/dev/null || true
trap - EXIT
echo "prediction log:  examples/risky_transactions/$WORK/predictions/ (PII redacted)"
mlhandoff logs prune --dir "$WORK/predictions" --bundle "$BUNDLE"   # privacy.log_retention: 30d

step "monitor: two days of traffic replayed into a prediction log, drift injected halfway (day 2)"
# Day 1 fills the rules' 1-day windows; from local midnight of day 2 on, amounts triple and cards
# transact twice as often. The alert is pending at the first hour whose 1-day PSI breaches and
# fires one hour later (its for: 1h); the table shows the hours around it. Exit 1: an alert fired.
rm -rf "$WORK/replay"
python replay.py --bundle "$BUNDLE" --out "$WORK/replay" --labels "$WORK/chargebacks.parquet"
mlhandoff monitor "$BUNDLE" --data "$WORK/replay" --window 1h \
  --labels "$WORK/chargebacks.parquet" --join-key transaction_id \
  --since 2026-04-21T08:00Z --until 2026-04-21T14:00Z --html "$WORK/monitor.html" --no-record \
  && echo "no alert fired" || echo "exit $?: an alert fired, as the injected drift should make it"
# Both days, recorded beside the bundle for verify ($BUNDLE.monitor.json): windows and rules
# judged, realised and estimated ROC AUC against the pack-time value, NaN/inf outputs.
mlhandoff monitor "$BUNDLE" --data "$WORK/replay" --labels "$WORK/chargebacks.parquet" \
  --join-key transaction_id --json > "$WORK/monitor.json" || true
if command -v promtool >/dev/null 2>&1; then
  step "the same rules for Prometheus: promtool checks them and runs their unit tests"
  (cd "$BUNDLE/docs" && promtool check rules alerts.yaml && promtool test rules alerts.test.yaml)
fi

step "verify again: the ML Test Score now counts what the repro and monitor runs recorded"
mlhandoff verify "$BUNDLE" "${TRUST[@]}"

echo
echo "bundle:          examples/risky_transactions/$BUNDLE"
echo "handoff README:  examples/risky_transactions/$BUNDLE/docs/README.md"
echo "model card:      examples/risky_transactions/$BUNDLE/docs/MODEL_CARD.md"
echo "runbook, alerts: examples/risky_transactions/$BUNDLE/docs/RUNBOOK.md, alerts.yaml, dashboard.json"
echo "monitor report:  examples/risky_transactions/$WORK/monitor.html"
