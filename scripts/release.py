#!/usr/bin/env python3
"""Release one package: check that its version was bumped and its CHANGELOG says what changed,
build its wheel and sdist, `twine check` them, install the wheel alone into a clean venv and
smoke-test it (scripts/check_wheels.py's check); then tag it ``PACKAGE-vVERSION``, which the
release workflow (.github/workflows/release.yml) builds again and publishes.

    python scripts/release.py ft-data --dry-run     # everything but the tag
    python scripts/release.py ft-data               # ... and the tag (push it to publish)
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_wheels import CHECKS, build_wheels, check, sh  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def version_of(package: str) -> str:
    return tomllib.loads((ROOT / "packages" / package / "pyproject.toml").read_text())["project"]["version"]


def released_versions(package: str) -> list[str]:
    tags = subprocess.run(["git", "tag", "--list", f"{package}-v*"], cwd=ROOT, capture_output=True, text=True).stdout
    return [t.removeprefix(f"{package}-v") for t in tags.split()]


def _key(version: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"[.+-]", version))


def problems(package: str, version: str, released: list[str], changelog: str) -> list[str]:
    """Why ``version`` of ``package`` cannot be released (empty: it can).

    >>> problems("ft-data", "0.5.0", ["0.5.0"], "## 0.5.0\\n- x")
    ['ft-data 0.5.0 is already released (tag ft-data-v0.5.0): bump the version in packages/ft-data/pyproject.toml']
    >>> problems("ft-data", "0.6.0", ["0.5.0"], "## 0.5.0\\n- x")
    ['packages/ft-data/CHANGELOG.md has no "## 0.6.0" entry: say what changed']
    """
    out = []
    if version in released:
        out.append(f"{package} {version} is already released (tag {package}-v{version}): bump the version in "
                   f"packages/{package}/pyproject.toml")
    elif released and _key(version) < max(_key(v) for v in released):
        out.append(f"{package} {version} is older than the released {max(released, key=_key)}")
    entries = re.findall(r"^## (\S+)", changelog, flags=re.M)
    if version not in entries:
        out.append(f'packages/{package}/CHANGELOG.md has no "## {version}" entry: say what changed')
    elif entries[0] != version:
        out.append(f"packages/{package}/CHANGELOG.md: the newest entry is {entries[0]}, not {version}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", choices=list(CHECKS))
    parser.add_argument("--dry-run", action="store_true", help="build, check and install; no tag")
    parser.add_argument("--out", type=Path, help="keep the built files here (default: a temp folder)")
    args = parser.parse_args()
    version = version_of(args.package)
    found = problems(args.package, version, released_versions(args.package),
                     (ROOT / "packages" / args.package / "CHANGELOG.md").read_text())
    if found:
        raise SystemExit("refused: " + "; ".join(found))
    with tempfile.TemporaryDirectory() as tmp:
        work = args.out or Path(tmp)
        dist = work / "dist"
        build_wheels(dist)  # every ft wheel: the package's ft dependencies install from here
        sh(sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", dist, ROOT / "packages" / args.package)
        name = args.package.replace("-", "_")
        built = sorted(dist.glob(f"{name}-{version}*"))
        sh(sys.executable, "-m", "twine", "check", "--strict", *built)
        print(check(args.package, dist, work), flush=True)
        print(f"{args.package} {version}: built {', '.join(p.name for p in built)}; twine check passed; installs alone")
    if not args.dry_run:
        sh("git", "tag", f"{args.package}-v{version}", cwd=ROOT)
        print(f"tagged {args.package}-v{version}: `git push origin {args.package}-v{version}` publishes it")


if __name__ == "__main__":
    main()
