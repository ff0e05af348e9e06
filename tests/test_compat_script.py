"""The pure parts of scripts/compat.py: range ends, companion pins, the results table (no venvs built)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

_spec = importlib.util.spec_from_file_location("ft_compat_script", Path(__file__).parent.parent / "scripts" / "compat.py")
compat = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compat)

RELEASES = ["5.24.0", "5.23.0", "6.0.0rc1", "5.1.0", "5.0.0", "4.57.6", "4.57.5", "4.56.2"]


def test_floor_is_the_release_named_by_the_lower_bound():
    assert compat.floor_of(SpecifierSet(">=5.0,<6"), RELEASES) == "5.0.0"
    assert compat.floor_of(SpecifierSet(">=4.57.6,<6"), RELEASES) == "4.57.6"
    assert compat.floor_of(SpecifierSet(">=4.58"), RELEASES) == "4.58"  # not listed: the bound as written
    with pytest.raises(ValueError):
        compat.floor_of(SpecifierSet("<6"), RELEASES)


def test_ceiling_is_the_newest_final_release_inside_the_range():
    assert compat.ceiling_of(SpecifierSet(">=5.0,<6"), RELEASES, "9.9") == "5.24.0"
    assert compat.ceiling_of(SpecifierSet(">=4.56.2,<5"), RELEASES, "9.9") == "4.57.6"
    assert compat.ceiling_of(SpecifierSet(">=4.56.2,<5.1"), RELEASES, "9.9") == "5.0.0"
    assert compat.ceiling_of(SpecifierSet(">=5.0,<6"), [], "5.24.0") == "5.24.0"


def test_tests_that_run_the_ft_command_get_ft_cli_in_their_venv():
    # ft-train's --nproc tests run `ft train` beside the interpreter: at the floor they once failed
    # with "No such file or directory: .../bin/ft"
    ft, _ = compat.test_needs("ft-train")
    assert "ft-cli" in ft
    editable = compat.install_plan("ft-train", "5.0.0")[2]
    assert any(a.endswith("packages/ft-cli") for a in editable)
    assert "ft-cli" not in compat.test_needs("ft-data")[0]


def test_companion_pins_follow_the_transformers_major_minor():
    assert "huggingface-hub<1.0" in compat.companions("4.57.6")
    assert "datasets<=5.0.1" in compat.companions("4.56.2")
    assert compat.companions("5.0.0") == []


RUNS = [  # "ft-demo": no such package folder, so no declared range filters its runs
    {"package": "ft-demo", "end": "floor", "transformers": "5.0.0", "range": "<6,>=5.0", "fast": False, "ok": True,
     "passed": 40, "failed": 0, "errors": 0, "skipped": 1, "date": "2026-11-01"},
    {"package": "ft-demo", "end": "ceiling", "transformers": "5.24.0", "range": "<6,>=5.0", "fast": True, "ok": False,
     "passed": 38, "failed": 2, "errors": 0, "skipped": 1, "date": "2026-11-02"},
    {"package": "ft-demo", "end": "at", "transformers": "4.57.6", "range": "<6,>=5.0", "fast": False, "ok": True,
     "passed": 40, "failed": 0, "errors": 0, "skipped": 1, "date": "2026-11-03"},
]


def test_table_shows_the_latest_floor_and_ceiling_run():
    table = compat.render_table(RUNS).splitlines()
    assert table[0] == "| package | declared range | floor | ceiling | date |"
    assert table[2] == ("| ft-demo | `transformers<6,>=5.0` | 5.0.0: pass, 40 passed | "
                        "5.24.0: **FAIL** (2 failed), 38 passed (fast) | 2026-11-02 |")
    assert len(table) == 3  # the explicit --at run is not an end


def test_runs_under_an_earlier_range_leave_the_table():
    stale = {"package": "ft-data", "end": "floor", "transformers": "5.0.0", "range": "<6,>=5.0", "fast": False,
             "ok": False, "passed": 99, "failed": 1, "errors": 0, "skipped": 0, "date": "2026-11-27"}
    current = dict(stale, transformers=str(compat.floor_of(compat.transformers_range("ft-data"), ["4.56.2"])),
                   range=str(compat.transformers_range("ft-data")), ok=True, passed=100, failed=0)
    rows = compat.render_table([stale, current]).splitlines()[2:]
    assert len(rows) == 1 and f"{current['transformers']}: pass, 100 passed" in rows[0]


def test_readme_block_replacement_touches_only_the_block():
    text = f"# ft\n\nintro\n{compat.START}\nold table\n{compat.END}\n\nrest\n"
    assert compat.replace_block(text, "| new |") == f"# ft\n\nintro\n{compat.START}\n| new |\n{compat.END}\n\nrest\n"
    assert compat.replace_block("# ft\nno markers\n", "| new |") is None
    assert compat.replace_block(f"{compat.END}\n{compat.START}\n", "| new |") is None


def test_the_dev_suites_junit_becomes_each_packages_ceiling_run(tmp_path):
    junit = tmp_path / "suite.xml"
    junit.write_text(
        '<testsuites><testsuite>'
        '<testcase classname="packages.ft-data.tests.test_formats" name="a"/>'
        '<testcase classname="packages.ft-data.tests.test_formats" name="b"><failure message="x"/></testcase>'
        '<testcase classname="packages.ft-models.tests.test_sources" name="c"><skipped/></testcase>'
        '<testcase classname="packages.ft-core.tests.test_atomic" name="d"/>'
        '<testcase classname="tests.test_release" name="e"/>'
        '</testsuite></testsuites>')
    runs = {r["package"]: r for r in compat.junit_runs(junit, "5.24.0", "ceiling")}
    assert set(runs) == {"ft-data", "ft-models"}  # ft-core declares no transformers range
    assert (runs["ft-data"]["passed"], runs["ft-data"]["failed"], runs["ft-data"]["ok"]) == (1, 1, False)
    assert runs["ft-data"]["failures"] == ["packages.ft-data.tests.test_formats::b"]
    assert (runs["ft-models"]["skipped"], runs["ft-models"]["ok"], runs["ft-models"]["end"]) == (1, True, "ceiling")


@pytest.mark.parametrize("fails", [False, True])
def test_drop_venvs_deletes_each_venv_after_its_run(tmp_path, monkeypatch, fails):
    """CI passes --drop-venvs: a floor venv (torch included) must not stay on disk beside the next one."""
    seen = []

    def run_tests(pkg, end, version, fast):
        venv = tmp_path / "venvs" / f"{pkg}-{version}"
        (venv / "bin").mkdir(parents=True)
        seen.append([p.name for p in (tmp_path / "venvs").iterdir()])
        if fails:
            raise RuntimeError("pip failed")
        return {"ok": True}

    monkeypatch.setattr(compat, "OUT", tmp_path)
    monkeypatch.setattr(compat, "releases", lambda: RELEASES)
    monkeypatch.setattr(compat, "run_tests", run_tests)
    monkeypatch.setattr(compat, "record", lambda result: None)
    assert compat.main(["ft-data", "ft-models", "--ends", "floor", "--drop-venvs"]) == (1 if fails else 0)
    assert [len(names) for names in seen] == [1, 1]  # the first venv was gone when the second was built
    assert list((tmp_path / "venvs").iterdir()) == []
