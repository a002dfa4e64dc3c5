#!/usr/bin/env bash
# Install carseg into .venv and serve the Gradio demo with the bundled default model on http://127.0.0.1:7860.
# Extra arguments go to `carseg demo`, e.g. `bash scripts/demo.sh --model path/to/checkpoint --port 8000`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/bootstrap.sh
exec carseg demo "$@"
