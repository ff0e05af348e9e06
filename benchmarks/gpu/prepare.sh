#!/usr/bin/env bash
# Fill .gpu/ (git-ignored) with what the GPU machine lacks: cp312 wheels of trl, datasets, pydantic,
# the server and client packages, bitsandbytes, our packages as wheels, and the SmolLM2 tokenizer.
# Then, on the GPU machine (carry .gpu), one command: bash benchmarks/gpu/check_all.sh [stream|sft|serve|all]
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
rm -rf .gpu && mkdir -p .gpu/wheels
PY=.venv/bin/python
# The venv's versions of everything our packages, their tests and the peers need, less what the
# GPU image already holds (its package list: the device library's KINDS.md). typer, rich and
# shellingham travel anyway: the CLI's help output is tested against these versions.
PINS=$($PY - <<'PY'
import re
from importlib.metadata import PackageNotFoundError, distribution
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
image = set("""accelerate anyio annotated-doc certifi click filelock fsspec h11 hf-xet httpcore httpx
huggingface-hub hypothesis idna jinja2 markdown-it-py markupsafe mdurl mpmath networkx numpy packaging
pandas peft psutil pyarrow pygments python-dateutil pyyaml regex safetensors setuptools six
sortedcontainers sympy tokenizers torch tqdm transformers typing-extensions tzdata xxhash""".split())
roots = ["trl", "datasets", "pydantic", "fastapi", "uvicorn", "httpx", "openai", "hypothesis",
         "typer", "rich", "shellingham", "deepspeed"]
seen, stack = {}, list(roots)
while stack:
    name = norm(stack.pop())
    if name in seen:
        continue
    try:
        dist = distribution(name)
    except PackageNotFoundError:  # a marker-only need of another platform or Python
        seen[name] = None
        continue
    seen[name] = dist.version
    stack += [re.split(r"[ ;<>=!~\[(]", r, maxsplit=1)[0] for r in dist.requires or [] if "extra ==" not in r]
keep = {"typer", "rich", "shellingham"}
built = {"deepspeed"}  # source only: built below against this venv's torch
print(" ".join(f"{n}=={v}" for n, v in sorted(seen.items()) if v and (n not in image or n in keep) and n not in built))
PY
)
echo "carrying: $PINS"
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .gpu/wheels $PINS
# bitsandbytes for the 4-bit tests and QLoRA (43 MB: it fits because the image's pyarrow, 25.0.1 as seen
# on 2026-11-27, is new enough for datasets and need not travel)
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_24_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  -d .gpu/wheels "bitsandbytes==$($PY -c 'from importlib.metadata import version; print(version("bitsandbytes"))')"
# liger-kernel, in its own folder: TRL's best setting in the SFT benchmark (check_all.sh installs it apart)
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp -d .gpu/liger \
  liger-kernel==0.8.5
# DeepSpeed ships only as source; its wheel is pure Python (ops are built just in time where needed)
$PY -m pip wheel -q --no-deps --no-build-isolation -w .gpu/wheels \
  "deepspeed==$($PY -c 'from importlib.metadata import version; print(version("deepspeed"))')"
for p in packages/ft-*; do $PY -m pip wheel -q --no-deps -w .gpu/wheels "$p"; done
$PY - <<'PY'
from transformers import AutoTokenizer
from ft_models import model_path
AutoTokenizer.from_pretrained(model_path("smollm2-135m-instruct")).save_pretrained(".gpu/tokenizer")
PY
# only 64 MiB travel with the working tree: the tokenizer goes as xz (3.4 MB -> 0.5 MB), check_all.sh unpacks it
tar -C .gpu -cJf .gpu/tokenizer.tar.xz tokenizer && rm -rf .gpu/tokenizer
du -sh .gpu
