"""Each package's README examples: the pure parts of the runner (scripts/readme_examples.py, which
check_wheels.py runs in every package-alone venv), and a static check that no example uses a name
it never defines (ft-data's once used a `tokenizer` it never made)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from readme_examples import missing_output, needs, python_blocks  # noqa: E402

READMES = sorted((ROOT / "packages").glob("*/README.md"))


def test_blocks_needs_and_shown_output():
    text = ("intro\n```python\n# needs: pip install openai\nprint(1)  # \"1\"\n```\n"
            "```bash\nft --help\n```\n```python\nx = 2\n```\n")
    blocks = python_blocks(text)
    assert blocks == ['# needs: pip install openai\nprint(1)  # "1"\n', "x = 2\n"]
    assert needs("\n".join(blocks)) == ["openai"]
    assert missing_output(blocks[0], "1\n") == [] and missing_output(blocks[0], "2\n") == ['1']
    assert missing_output('print(s)  # "40 examples packed into 4 rows (0 ... skipped)"',
                          "40 examples packed into 4 rows (0 truncated, 1 bad rows skipped)") == []


@pytest.mark.parametrize("readme", READMES, ids=lambda p: p.parent.name)
def test_readme_examples_define_every_name_they_use(readme, tmp_path):
    code = "\n".join(python_blocks(readme.read_text()))
    if not code:
        pytest.skip("no Python examples")
    script = tmp_path / "example.py"
    script.write_text(code)
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated", "--select", "F", str(script)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_the_wheel_check_keeps_one_package_venv_on_disk_at_a_time(monkeypatch):
    """Seven venvs at once, five with torch, filled a CI machine's disk: each venv and README run
    folder goes after its package's check (a failed check ends the run, and its temp folder)."""
    import check_wheels

    seen = []

    def check(package, dist, work):
        for folder in (work / package / "bin", work / "readme" / package):
            folder.mkdir(parents=True)
        seen.append(sorted(p.name for p in [*work.iterdir(), *(work / "readme").iterdir()] if p.name not in ("dist", "readme")))
        return f"{package}: ok"

    monkeypatch.setattr(check_wheels, "build_wheels", lambda dist: None)
    monkeypatch.setattr(check_wheels, "check", check)
    monkeypatch.setattr(sys, "argv", ["check_wheels.py", "ft-data", "ft-models"])
    check_wheels.main()
    assert seen == [["ft-data", "ft-data"], ["ft-models", "ft-models"]]  # ft-data's were gone by then
