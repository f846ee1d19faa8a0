#!/usr/bin/env bash
# Virtual environments for the serving benchmark's peers (bench/serve.py), under bench/.venvs/:
#   mlflow   MLflow with its model server (`mlflow models serve --env-manager local`)
#   bentoml  BentoML
#   tools    py-spy, to profile `mlhandoff serve` under load (optional)
# Each peer gets the scikit-learn / skops / pandas / numpy / scipy versions of the project's
# .venv so that it loads the example model exactly as mlhandoff does. The peers never go into
# mlhandoff's own dependencies. Idempotent: an environment whose import check passes is skipped.
#
#   bash bench/setup_serve.sh              # mlflow, bentoml, tools
#   bash bench/setup_serve.sh bentoml      # one
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
PYTHON="${PYTHON:-python3}"
PROJECT_PIP="$ROOT/.venv/bin/pip"
PEERS=("$@")
[ ${#PEERS[@]} -eq 0 ] && PEERS=(mlflow bentoml tools)

if [ ! -x "$PROJECT_PIP" ]; then
  echo "no project venv at $ROOT/.venv: run 'make demo' or 'make test' first" >&2
  exit 2
fi

# The exact versions the model was trained and is served with, from the project's venv.
pins=()
for pkg in scikit-learn skops pandas numpy scipy joblib threadpoolctl; do
  line="$("$PROJECT_PIP" freeze 2>/dev/null | grep -i "^${pkg}==" || true)"
  [ -n "$line" ] && pins+=("$line")
done
echo "model stack pins: ${pins[*]}"

check() {  # check VENV MODULE...: every module imports and every pin above is installed
  local venv="$1"; shift
  [ -x "$venv/bin/python" ] || return 1
  PINS="${pins[*]}" "$venv/bin/python" - "$@" <<'PY' >/dev/null 2>&1
import importlib, importlib.metadata, os, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
for pin in os.environ["PINS"].split():
    name, _, version = pin.partition("==")
    if importlib.metadata.version(name) != version:
        sys.exit(f"{name} {importlib.metadata.version(name)} != {version}")
PY
}

for peer in "${PEERS[@]}"; do
  venv="$HERE/.venvs/$peer"
  case "$peer" in
    mlflow) packages=("mlflow>=3" "${pins[@]}"); modules=(mlflow mlflow.pyfunc.scoring_server sklearn skops) ;;
    bentoml) packages=("bentoml>=1.4" "${pins[@]}"); modules=(bentoml sklearn skops) ;;
    tools) packages=("py-spy"); modules=() ;;
    *) echo "unknown peer '$peer'; known: mlflow bentoml tools" >&2; exit 2 ;;
  esac
  if [ "$peer" = tools ] && [ -x "$venv/bin/py-spy" ]; then
    echo "tools: ready ($("$venv/bin/py-spy" --version))"; continue
  fi
  if [ "$peer" != tools ] && check "$venv" "${modules[@]}"; then
    echo "$peer: ready ($("$venv/bin/python" -m pip freeze 2>/dev/null | grep -iE "^($peer|scikit-learn|pandas)==" | tr '\n' ' '))"
    continue
  fi
  [ -x "$venv/bin/python" ] || "$PYTHON" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  echo "$peer: installing ${packages[*]}"
  "$venv/bin/python" -m pip install -q "${packages[@]}"
  if [ "$peer" != tools ]; then
    check "$venv" "${modules[@]}" || { echo "$peer: import check failed" >&2; exit 1; }
  fi
  echo "$peer: installed ($("$venv/bin/python" -m pip freeze 2>/dev/null | grep -iE "^($peer|py-spy|scikit-learn|pandas)==" | tr '\n' ' '))"
done
