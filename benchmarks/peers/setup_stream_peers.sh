#!/usr/bin/env bash
# Peer environments for the layer-streaming inference benchmark (runner: stream_peer.py), each on
# the local CPU torch 2.13.0 (installed first, so no later install can pull a CUDA build):
#   .peers/airllm     airllm 4.0.0 on transformers 5.23.0 (its declared deps are compatible)
#   .peers/rabbitllm  rabbitllm 1.1.0 --no-deps (it pins torch<2.6, transformers<5.3) on
#                     transformers 5.2.0, with the deps it imports added by hand
# accelerate disk offload runs in the main venv (.venv): no peer venv for it.
# Idempotent: re-running only re-checks the pins. Output is kept short (pip -q, tail of errors).
set -euo pipefail
cd "$(dirname "$0")/../.."

TORCH=torch==2.13.0

mkvenv() {  # mkvenv DIR: create the venv if missing and put the CPU torch in first
  [ -x "$1/bin/python" ] || python3 -m venv "$1"
  pipi "$1" "$TORCH"
}
pipi() {  # pipi DIR ARGS...: quiet pip install, printing only the tail of a failure
  local venv=$1; shift
  local log; log=$(mktemp)
  if ! "$venv/bin/pip" install -q --disable-pip-version-check "$@" >"$log" 2>&1; then
    tail -n 20 "$log"; rm -f "$log"; return 1
  fi
  rm -f "$log"
}
check_torch() {
  local v; v=$("$1/bin/python" -c "import torch; print(torch.__version__)")
  [ "$v" = "2.13.0+cpu" ] || { echo "ERROR: $1 has torch $v, want 2.13.0+cpu" >&2; exit 1; }
}

# --- AirLLM ---------------------------------------------------------------------------------
venv=.peers/airllm
mkvenv "$venv"
pipi "$venv" "$TORCH" transformers==5.23.0 accelerate safetensors
# airllm 4.0.0 declares torch>=2.4, transformers>=4.49,<6, accelerate>=1.0, safetensors,
# huggingface-hub, scipy, sentencepiece, tqdm: all satisfied without touching torch/transformers.
pipi "$venv" "$TORCH" transformers==5.23.0 airllm==4.0.0
check_torch "$venv"
"$venv/bin/python" -c "import airllm, transformers; from importlib.metadata import version as v; print('peer ready: .peers/airllm: airllm', v('airllm'), 'transformers', transformers.__version__)"

# --- RabbitLLM ------------------------------------------------------------------------------
venv=.peers/rabbitllm
mkvenv "$venv"
pipi "$venv" "$TORCH" transformers==5.2.0 accelerate safetensors bitsandbytes
# --no-deps: rabbitllm 1.1.0 pins torch<2.6 and transformers<5.3. Its other declared deps, added
# by hand (transformers-stream-generator without deps: it would otherwise re-resolve transformers).
pipi "$venv" --no-deps rabbitllm==1.1.0 transformers-stream-generator
pipi "$venv" "$TORCH" transformers==5.2.0 einops huggingface-hub scipy sentencepiece tiktoken tqdm psutil
check_torch "$venv"
"$venv/bin/python" -c "import rabbitllm, bitsandbytes, transformers; from importlib.metadata import version as v; print('peer ready: .peers/rabbitllm: rabbitllm', v('rabbitllm'), 'bitsandbytes', v('bitsandbytes'), 'transformers', transformers.__version__)"

# --- accelerate disk offload: main venv -----------------------------------------------------
.venv/bin/python -c "import accelerate, transformers; print('accelerate peer uses .venv: accelerate', accelerate.__version__, 'transformers', transformers.__version__)"
