#!/usr/bin/env bash
# Create (or reuse) the project virtual environment at ${CARSEG_VENV:-.venv} and install carseg with its dev extra
# (which includes the demo extra, gradio).
# Sourced by scripts/demo.sh and scripts/test.sh; safe to run again (it only installs what is missing).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CARSEG_VENV:-$root/.venv}"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
stamp="$venv/.carseg-installed"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
    "$venv/bin/python" -m pip install -q --upgrade pip
    # torch 2.14.1 and torchvision 0.29.1 are the releases this project is tested with.
    "$venv/bin/python" -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
    "$venv/bin/python" -m pip install -q -e "$root[dev]"
    touch "$stamp"
fi
export PATH="$venv/bin:$PATH"
