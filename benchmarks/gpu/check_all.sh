#!/usr/bin/env bash
# Every GPU check of this repo in one command (carry .gpu, made by benchmarks/gpu/prepare.sh):
#   bash benchmarks/gpu/check_all.sh [stream|sft|serve|fsdp|memory|all, or a comma list: serve,sft]
# stream (issue 11): the gpu-marked tests, ft-stream's correctness across five architectures, the
#   host link and the 7B streaming benchmark (about 4 minutes on an H100);
# sft (issue 10): the LoRA SFT benchmark against plain TRL, its liger-kernel run included (about 4
#   minutes; SFT_TOOLS, SFT_ROUNDS);
# serve (issue 12): the fast test suite on CUDA (the embedded model cannot travel: its tests skip,
#   the carried tokenizer stands in for SmolLM2's), then ft chat / ft export / ft serve / ChatModel
#   on the GPU giving the same greedy answer (serve_check.py); about 3.5 minutes on an H100, where
#   on 2026-11-27 the fast suite gave 348 passed, 13 skipped and all six answers were equal on cuda:0
#   (benchmarks/gpu/results/2026-11-27-h100-*).
# fsdp (issue 10): a LoRA sft run sharded by FSDP2 and by DeepSpeed ZeRO-3 (ft train --nproc 1) saves
#   the adapter the same run saves unsharded, and LoRA+ runs under FSDP (fsdp_check.py; its CPU form
#   on 2026-11-27: ZeRO-3 the same losses within 1e-6 and adapter tensors within 0.1% relative, FSDP
#   ran as DDP there; on an H100 on 2026-11-28, in bf16, both sharded and saved the adapter's keys,
#   but bf16 rounds differently under each: the check now runs in float32, and on an H200 on
#   2026-11-28 both matched the plain run: the same four losses, adapters within 0.0 (FSDP2) and
#   5.1e-6 relative (ZeRO-3); about 3 minutes).
# memory (issue 10): ft_train.memory's estimate against the measured peak at batch 2, 4, 8 and 16
#   (memory_gpu.py, 3 steps each; about 2 minutes): on an H200 on 2026-11-28 the peaks were 4.61,
#   7.87, 14.55 and 27.92 GB, which ft-train 0.12.0's estimate was recalibrated on; and the gpu test
#   of its CUDA-only term (LoRA dropout's one-byte masks), not yet run there.
# Results land in $OUT: memory_gpu.json, stream_gpu.json, gpu_sft.json, serve_check.json, fsdp_check.json, gpu.txt (device and
# versions), *.log (the fast suite's whole log: pytest_fast_cuda.log).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-out}; mkdir -p "$OUT"; export PYTHONUNBUFFERED=1
what=${1:-all}
[[ -d .gpu/tokenizer ]] || tar -C .gpu -xJf .gpu/tokenizer.tar.xz || exit 1
python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .gpu/wheels/*.whl || exit 1
# liger-kernel in a folder of its own: only the runs named -liger put it on their path
if compgen -G ".gpu/liger/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/liger .gpu/liger/*.whl || exit 1
fi
# datasets needs pyarrow >= 24 (the image had 25.0.1): say so plainly where it is older
python3 -c 'import pyarrow, sys; sys.exit(int(pyarrow.__version__.split(".")[0]) < 24)' \
  || { echo "pyarrow on this machine is older than 24: carry a pyarrow wheel for datasets"; exit 1; }
export PYTHONPATH=/tmp/site
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
python3 -c 'import torch, transformers, accelerate, peft, trl, datasets, pyarrow
print(torch.__version__, transformers.__version__, accelerate.__version__, peft.__version__, trl.__version__,
      datasets.__version__, pyarrow.__version__)' >> "$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt"
status=0
if [[ ,$what, == *,stream,* || $what == all ]]; then
  timeout 120 python3 -m pytest -q -p no:cacheprovider -m gpu packages/ft-stream/tests/test_cuda.py 2>&1 \
    | tail -30 | tee "$OUT/pytest_gpu.log" || status=1
  timeout 420 python3 benchmarks/gpu/stream_gpu.py --out "$OUT" 2>&1 | grep -v 'it/s\]' | tail -60 \
    | tee "$OUT/stream.log" || status=1
fi
if [[ ,$what, == *,sft,* || $what == all ]]; then
  timeout 540 python3 benchmarks/gpu/sft_gpu.py --tokenizer .gpu/tokenizer --out "$OUT" --rounds "${SFT_ROUNDS:-1}" \
    ${SFT_TOOLS:+--tools "$SFT_TOOLS"} 2>&1 | grep -v 'it/s\]' | tail -40 \
    | tee "$OUT/sft.log" || status=1
fi
if [[ ,$what, == *,serve,* || $what == all ]]; then
  # the lint, README-lint and actionlint tests need the dev tools (ruff, actionlint: too big to carry)
  # and no device: the CPU suite runs them
  FT_TEST_TOKENIZER=.gpu/tokenizer timeout 300 python3 -m pytest -q -p no:cacheprovider -m "not slow" \
    --import-mode=importlib packages/*/tests tests --ignore=tests/test_lint_and_import_direction.py \
    --deselect tests/test_release.py::test_the_workflows_pass_actionlint \
    -k "not test_readme_examples_define_every_name_they_use" > "$OUT/pytest_fast_cuda.log" 2>&1 || status=1
  grep -E '^(FAILED|ERROR)|passed|failed' "$OUT/pytest_fast_cuda.log" | tail -30
  PATH=/tmp/site/bin:$PATH timeout 240 python3 benchmarks/gpu/serve_check.py --tokenizer .gpu/tokenizer \
    --out "$OUT" --device cuda 2>&1 | grep -v 'it/s\]' | tail -40 | tee "$OUT/serve.log" || status=1
fi
if [[ ,$what, == *,fsdp,* || $what == all ]]; then
  PATH=/tmp/site/bin:$PATH timeout 420 python3 benchmarks/gpu/fsdp_check.py --tokenizer .gpu/tokenizer \
    --out "$OUT" 2>&1 | grep -v 'it/s\]' | tail -40 | tee "$OUT/fsdp.log" || status=1
  # the tool returns at most 8 files: the four runs' logs travel as one archive
  (cd "$OUT" && tar -czf fsdp_runs.tgz fsdp_*.log && rm -f fsdp_*.log)
fi
if [[ ,$what, == *,memory,* || $what == all ]]; then
  # the estimate's CUDA-only term (LoRA dropout's one-byte masks), ppo's reward model and frozen reference
  # on the GPU, then the peaks the estimate is calibrated on
  FT_TEST_TOKENIZER=.gpu/tokenizer timeout 120 python3 -m pytest -q -p no:cacheprovider -m gpu \
    packages/ft-train/tests/test_memory_defaults.py packages/ft-train/tests/test_stages.py 2>&1 \
    | tail -15 | tee "$OUT/pytest_memory.log" || status=1
  timeout 300 python3 benchmarks/gpu/memory_gpu.py --tokenizer .gpu/tokenizer --out "$OUT" 2>&1 \
    | grep -v 'it/s\]' | tail -20 | tee "$OUT/memory.log" || status=1
fi
exit $status
