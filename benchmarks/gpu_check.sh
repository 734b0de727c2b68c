#!/usr/bin/env bash
# Deep hashing on the GPU against the CPU (see benchmarks/gpu_check.py): trains DSH on mnist5k on
# both, prints the share of items with the same code and the images/s of each; without a GPU it
# says so and exits 0 after the CPU part. Under 5 minutes on a GPU machine.
#
#   bash benchmarks/gpu_check.sh [--epochs 6] [--min-share 0.5]
#
# PYTHON picks the interpreter (default: python3); the package is taken from src/ when it is not
# installed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"
exec timeout 300 "${PYTHON:-python3}" benchmarks/gpu_check.py "$@"
