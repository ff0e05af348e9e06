#!/usr/bin/env python3
"""Set up the ft workspace and run its main job or its tests. Needs only python3 and pip.

    python3 scripts/dev.py demo     # venv + install + train the LoRA demo + compare base/tuned
    python3 scripts/dev.py test     # venv + install + the whole test suite (extra args go to pytest)
    python3 scripts/dev.py setup    # venv + install only

The install is skipped when nothing it depends on has changed (a stamp in the venv), so a
second run starts at once. FT_VENV picks the venv folder (default .venv); FT_TORCH the torch
requirement (default torch==2.13.0, the CPU build pip finds on local disk).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(os.environ.get("FT_VENV", ROOT / ".venv")).resolve()
BIN = VENV / "bin"
STAMP = VENV / ".ft-setup-stamp"
LOG = VENV / "ft-setup.log"


def workspace() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _fingerprint(ws: dict) -> str:
    files = [ROOT / "pyproject.toml", Path(__file__)] + [ROOT / m / "pyproject.toml" for m in ws["members"]]
    digest = hashlib.sha256(sys.version.encode())
    digest.update(os.environ.get("FT_TORCH", "").encode())
    for f in files:
        digest.update(f.read_bytes())
    return digest.hexdigest()


def _pip(*args: str) -> None:
    # byte-compiled at install: where PYTHONDONTWRITEBYTECODE is set (these machines), imports never
    # cache .pyc, and every test subprocess would compile torch/transformers again (+5 min a suite)
    cmd = [str(BIN / "python"), "-m", "pip", "install", "--disable-pip-version-check", *args]
    with LOG.open("a") as log:
        log.write(f"\n$ {' '.join(cmd)}\n")
        log.flush()
        done = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    if done.returncode != 0:
        tail = LOG.read_text().splitlines()[-25:]
        sys.exit("pip failed; the end of " + str(LOG) + ":\n" + "\n".join(tail))


def setup() -> None:
    full = workspace()
    ws = full["tool"]["ft"]["workspace"]
    if not (BIN / "python").exists():
        print(f"ft: creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    if STAMP.exists() and STAMP.read_text() == _fingerprint(ws):
        return
    LOG.write_text("")
    print("ft: installing torch (CPU build where no GPU), the ft packages and dev tools; log in " + str(LOG),
          flush=True)
    # torch first and pinned: every later requirement it satisfies then pulls no other build.
    _pip(*shlex.split(os.environ.get("FT_TORCH", ws["torch"])))  # e.g. "torch==2.13.0 --index-url URL"
    extras = ws.get("extras", {})  # optional features the tests exercise, e.g. ft-models[quant]
    editable = [arg for m in ws["members"] for arg in ("-e", str(ROOT / m) + (f"[{extras[m]}]" if m in extras else ""))]
    _pip(*editable, *full["dependency-groups"]["dev"])
    _pip("--no-deps", *ws["embedded"])
    if ws.get("built_here"):
        _pip("--no-build-isolation", *ws["built_here"])
    STAMP.write_text(_fingerprint(ws))
    print("ft: environment ready", flush=True)


def run(*cmd: str) -> None:
    done = subprocess.run(cmd, cwd=ROOT)
    if done.returncode != 0:
        sys.exit(done.returncode)


def demo() -> None:
    run(str(BIN / "ft"), "train", "examples/sft_lora_demo.yaml")
    run(str(BIN / "python"), "examples/identity/evaluate.py", "--adapter", "outputs/sft_lora_demo/adapter")
    print("\nTry it:  .venv/bin/ft chat --adapter outputs/sft_lora_demo/adapter --prompt 'What do people call you?'")


def test(args: list[str]) -> None:
    run(str(BIN / "python"), "-m", "pytest", *args)


def main() -> None:
    command, rest = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if command not in ("setup", "demo", "test"):
        sys.exit(__doc__)
    setup()
    if command == "demo":
        demo()
    elif command == "test":
        test(rest)


if __name__ == "__main__":
    main()
