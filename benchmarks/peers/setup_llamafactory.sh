#!/usr/bin/env bash
# The peer environment for benchmarks/test_data_preprocessing.py: LLaMA-Factory 0.9.5 in its own
# venv (.peers/llamafactory), on the local CPU torch. Its declared torchvision/torchaudio would pull
# CUDA builds that break its import on a CPU machine, so it is installed without them and a
# stand-in torchaudio module (its text path never calls it) sits in .peers/stubs.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=.peers/llamafactory
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
pip="$venv/bin/pip install -q --disable-pip-version-check"
$pip torch==2.13.0
$pip --no-deps llamafactory==0.9.5
$pip "transformers==5.6.0" "datasets<=4.0.0,>=2.16.0" "accelerate<=1.11.0,>=1.3.0" "peft<=0.18.1,>=0.18.0" \
     "trl<=0.24.0,>=0.18.0" "tyro<0.9.0" omegaconf fire numpy pandas sentencepiece tiktoken einops packaging \
     pydantic safetensors scipy protobuf matplotlib pyyaml
mkdir -p .peers/stubs/torchaudio
echo '"""Stand-in: LLaMA-Factory 0.9.5 imports torchaudio at top level; its text-only path never uses it."""' \
  > .peers/stubs/torchaudio/__init__.py
PYTHONPATH=.peers/stubs "$venv/bin/python" -c "import llamafactory.data" && echo "peer ready: $venv"
