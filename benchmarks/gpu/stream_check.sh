#!/usr/bin/env bash
# ft-stream's GPU check and benchmark (issue 11), one command on a machine with one GPU, torch,
# transformers and accelerate but no network (carry .gpu from benchmarks/gpu/prepare.sh). Writes
# $OUT/stream_gpu.json and the gpu-marked tests' log; about 4 minutes on an H100.
exec bash "$(dirname "$0")/check_all.sh" stream
