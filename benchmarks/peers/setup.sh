#!/usr/bin/env bash
# Every peer environment the benchmarks compare against, in one go, each in its own venv under
# .peers/ on the local CPU torch 2.13.0 (installed first, so no later install pulls a CUDA build):
#   .peers/llamafactory   LLaMA-Factory 0.9.5 (data and SFT benchmarks; setup_llamafactory.sh)
#   .peers/airllm         AirLLM 4.0.0 (streaming benchmark; setup_stream_peers.sh)
#   .peers/rabbitllm      RabbitLLM 1.1.0 (streaming benchmark; setup_stream_peers.sh)
#   .peers/trl            plain TRL 1.16.0 with the dev venv's transformers/peft (SFT and DPO benchmarks)
# Idempotent: a second run only re-checks the pins.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash benchmarks/peers/setup_llamafactory.sh
bash benchmarks/peers/setup_stream_peers.sh

venv=.peers/trl
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip="$venv/bin/pip install -q --disable-pip-version-check"
versions=$(.venv/bin/python -c "from importlib.metadata import version as v; print(*(f'{p}=={v(p)}' for p in ('transformers', 'peft', 'accelerate', 'datasets')))")
$pip torch==2.13.0
# shellcheck disable=SC2086
$pip torch==2.13.0 trl==1.16.0 $versions
"$venv/bin/python" -c "import torch, trl, transformers; assert torch.__version__ == '2.13.0+cpu', torch.__version__; print('peer ready: .peers/trl: trl', trl.__version__, 'transformers', transformers.__version__)"
