"""The import direction of DESIGN.md, enforced by ruff's banned-api tables in packages/*/ruff.toml."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ruff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *args], cwd=cwd,
                          capture_output=True, text=True)


def ruff_on_probe(relative: str, source: str) -> subprocess.CompletedProcess:
    """Lint a throw-away module placed inside a package, then remove it."""
    probe = ROOT / relative
    probe.write_text(source)
    try:
        return ruff("--select", "TID", str(probe))
    finally:
        probe.unlink()


def test_the_tree_is_lint_clean():
    done = ruff(".")
    assert done.returncode == 0, done.stdout


def test_an_upward_import_is_caught():
    done = ruff_on_probe("packages/ft-data/src/ft_data/_probe_upward_import.py", "import ft_models\n")
    assert done.returncode == 1 and "ft-data must not import ft_models" in done.stdout


def test_cli_may_not_import_torch_at_module_level():
    done = ruff_on_probe("packages/ft-cli/src/ft_cli/_probe_heavy_import.py",
                         "import torch\n\n\ndef f():\n    import transformers\n")
    assert done.returncode == 1 and "`torch` is banned at the module level" in done.stdout
    assert "transformers" not in done.stdout  # lazy imports inside functions are the point
