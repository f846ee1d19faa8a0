#!/usr/bin/env bash
# Creates the peer tools' virtual environments the benchmarks compare against, under
# bench/.venvs/<peer>. Peers never go into mlhandoff's own dependencies.
#
#   bash bench/setup.sh            # all peers
#   bash bench/setup.sh pandera    # one
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PYTHON="${PYTHON:-python3}"
PEERS=("$@")
[ ${#PEERS[@]} -eq 0 ] && PEERS=(pandera evidently)

for peer in "${PEERS[@]}"; do
  venv="$HERE/.venvs/$peer"
  case "$peer" in
    # pandera on pandas 3, reading the benchmark's Parquet files with pyarrow
    pandera) packages=("pandera>=0.24" "pandas>=3" "pyarrow>=15" "numpy") ;;
    # Evidently 0.7 (DataDriftPreset) needs pandas 2
    evidently) packages=("evidently>=0.7,<0.8" "pandas>=2,<3" "pyarrow>=15") ;;
    *) echo "unknown peer '$peer'; known: pandera evidently" >&2; exit 2 ;;
  esac
  if [ ! -x "$venv/bin/python" ]; then
    "$PYTHON" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
  fi
  "$venv/bin/python" -m pip install -q "${packages[@]}"
  PEER="$peer" "$venv/bin/python" - <<'PY'
import importlib, os
import pandas
peer = importlib.import_module(os.environ["PEER"])
print(f"{os.environ['PEER']} {peer.__version__} on pandas {pandas.__version__}")
PY
done
