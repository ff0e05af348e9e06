#!/usr/bin/env python3
"""The packages a change touches, and every package that depends on them (directly or not).

    python scripts/changed_packages.py BASE_REF        # e.g. origin/main; prints a JSON list

A change outside packages/ (scripts, tests/, the root pyproject) touches every package. Used by
.github/workflows/test.yml to test only what a change can break.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def dependencies() -> dict[str, set[str]]:
    """package -> the ft packages it declares (its extras included: ft-cli's commands use them)."""
    out = {}
    for pyproject in sorted(ROOT.glob("packages/*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text())["project"]
        specs = list(project.get("dependencies", []))
        for extra in project.get("optional-dependencies", {}).values():
            specs += extra
        out[project["name"]] = {m.group(0) for s in specs if (m := re.match(r"ft-[a-z]+", s))} - {project["name"]}
    return out


def affected(changed: set[str], deps: dict[str, set[str]]) -> list[str]:
    """``changed`` and every package that depends on one of them, in a stable order.

    >>> affected({"ft-models"}, {"ft-core": set(), "ft-models": {"ft-core"}, "ft-train": {"ft-models"}})
    ['ft-models', 'ft-train']
    """
    result = set(changed)
    while True:
        more = {p for p, needs in deps.items() if needs & result} - result
        if not more:
            return sorted(result, key=list(deps).index)
        result |= more


def changed_packages(paths: list[str], deps: dict[str, set[str]]) -> set[str]:
    touched = set()
    for path in paths:
        parts = Path(path).parts
        if len(parts) >= 2 and parts[0] == "packages":
            touched.add(parts[1])
        elif not path.endswith(".md"):  # shared code or config: everything
            return set(deps)
    return touched & set(deps)


def main() -> None:
    base = sys.argv[1] if len(sys.argv) > 1 else "HEAD~1"
    paths = subprocess.run(["git", "diff", "--name-only", base, "HEAD"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    deps = dependencies()
    print(json.dumps(affected(changed_packages(paths, deps), deps)))


if __name__ == "__main__":
    main()
