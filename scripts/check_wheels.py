#!/usr/bin/env python3
"""Build every package's wheel and install each alone into a clean venv with its own dependencies.

    python scripts/check_wheels.py [--keep DIR] [package ...]

Each library must import on its own (its transformers range checked at import) and run its
README's Python examples as written there (scripts/readme_examples.py); ft-cli alone must answer
`ft --help` and say which library to install for a command. Run by CI beside the test suite
(`.ci/run`) and usable by hand before a release.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import tomllib
import venv
from pathlib import Path

import readme_examples

ROOT = Path(__file__).resolve().parent.parent
TORCH = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ft"]["workspace"]["torch"]
CHECKS = {
    "ft-core": "import ft_core; ft_core.check_transformers",
    "ft-data": "import ft_data, datasets; print(ft_data.load_conversations)",
    "ft-models": "import ft_models, peft, gguf; print(ft_models.resolve_source('smollm2-135m-instruct').kind)",
    "ft-train": "import ft_train, trl, matplotlib; print(ft_train.run_training)",
    "ft-stream": "import ft_stream, accelerate; print(ft_stream.LayerwiseModel)",
    "ft-serve": "import ft_serve, fastapi, uvicorn; print(ft_serve.create_app)",
    "ft-cli": "import ft_cli.app",
}


def sh(*cmd: str | Path, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(map(str, cmd))}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def build_wheels(dist: Path) -> None:
    for package in CHECKS:
        sh(sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", dist, ROOT / "packages" / package)


def check(package: str, dist: Path, work: Path) -> str:
    env_dir = work / package
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--no-compile", "--disable-pip-version-check"]
    needs_torch = package not in ("ft-core", "ft-cli")
    if needs_torch:  # pinned first, so the CPU build from local disk is used, never a CUDA download
        readme_examples.pip_retrying([*pip, TORCH])
    wheel = next(dist.glob(package.replace("-", "_") + "-*.whl"))
    readme_examples.pip_retrying([*pip, "--find-links", str(dist), str(wheel)])
    out = sh(python, "-c", CHECKS[package]).stdout.strip()
    if package == "ft-cli":
        ft = env_dir / "bin" / "ft"
        sh(ft, "--help")
        done = subprocess.run([ft, "train", "x.yaml"], capture_output=True, text=True)
        if done.returncode != 2 or "install ft-train to use `ft train`" not in done.stderr:
            raise SystemExit(f"ft-cli alone: unexpected answer to `ft train`: {done.stderr}")
        out = done.stderr.strip()
    out += "\n  " + readme_examples.run(python, package, work / "readme")
    installed = sh(python, "-m", "pip", "list", "--format=freeze").stdout
    ft_installed = sorted(line.split("==")[0] for line in installed.splitlines() if line.startswith("ft-"))
    return f"{package}: ok ({', '.join(ft_installed)}) {out}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("packages", nargs="*", default=list(CHECKS))
    parser.add_argument("--keep", type=Path, help="build and install here instead of a temp folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        dist = work / "dist"
        build_wheels(dist)
        for package in args.packages:
            print(check(package, dist, work), flush=True)
            if not args.keep:  # one venv on disk at a time: seven at once (five with torch) filled a CI disk
                shutil.rmtree(work / package)
                shutil.rmtree(work / "readme" / package, ignore_errors=True)


if __name__ == "__main__":
    main()
