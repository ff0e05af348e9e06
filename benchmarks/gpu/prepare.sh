#!/usr/bin/env bash
# Fill .gpu/ (git-ignored) with what the GPU machine lacks: cp312 wheels of trl, datasets,
# pydantic and their missing needs, our six packages as wheels, and the SmolLM2 tokenizer.
# Then, on the GPU machine (carry .gpu), one command: bash benchmarks/gpu/check_all.sh [stream|sft|serve|all]
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
rm -rf .gpu && mkdir -p .gpu/wheels
PY=.venv/bin/python
# the versions this venv tests with
PINS=$($PY -c 'from importlib.metadata import version as v
print(" ".join(f"{n}=={v(n)}" for n in ["trl", "datasets", "pydantic", "pydantic-core", "annotated-types",
      "typing-inspection", "dill", "multiprocess",
      # ft serve and its tests (check_all.sh serve): server, client, test tools
      "fastapi", "starlette", "uvicorn", "h11", "anyio", "sniffio", "httpx", "httpcore", "openai", "jiter",
      "distro", "hypothesis", "sortedcontainers", "typer", "rich", "shellingham"]))')
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .gpu/wheels $PINS
# datasets needs pyarrow >= 24; check_all.sh installs this one only where the machine's is older
mkdir -p .gpu/extra
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .gpu/extra "pyarrow==$($PY -c 'import pyarrow; print(pyarrow.__version__)')"
for p in packages/ft-*; do $PY -m pip wheel -q --no-deps -w .gpu/wheels "$p"; done
$PY - <<'PY'
from transformers import AutoTokenizer
from ft_models import model_path
AutoTokenizer.from_pretrained(model_path("smollm2-135m-instruct")).save_pretrained(".gpu/tokenizer")
PY
du -sh .gpu
