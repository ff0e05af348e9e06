#!/usr/bin/env bash
# ft-stream's GPU check and benchmark, one command on a machine with one GPU, torch, transformers
# and accelerate but no network (carry .gpu from benchmarks/gpu/prepare.sh). Writes
# $OUT/stream_gpu.json; pass --quick to skip the 7B benchmark.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/wheels/*.whl
PYTHONPATH=/tmp/site python3 benchmarks/gpu/stream_gpu.py --out "${OUT:-out}" "$@"
