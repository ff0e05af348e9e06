import pytest

from ft_core import FtVersionError, check_transformers, declared_range

# each package's own floor (proven by scripts/compat.py) and the release just below it
FLOORS = {"ft-data": ("4.56.2", "4.56.1"), "ft-models": ("5.0.0", "4.57.6"), "ft-train": ("5.0.0", "4.57.6"),
          "ft-stream": ("5.0.0", "4.57.6"), "ft-serve": ("5.0.0", "4.57.6")}


@pytest.mark.parametrize("dist", list(FLOORS))
def test_range_comes_from_package_metadata(dist):
    spec, (floor, below) = declared_range(dist), FLOORS[dist]
    assert spec.contains(floor) and not spec.contains(below) and not spec.contains("6.0.0")


@pytest.mark.parametrize("installed", ["5.0.0", "5.23.0", "5.99.1"])
def test_versions_inside_the_range_pass(installed):
    check_transformers("ft-models", installed=installed)


@pytest.mark.parametrize("installed", ["4.57.6", "4.99.0", "6.0.0", "6.1.0"])
def test_versions_at_both_edges_outside_the_range_fail_clearly(installed, monkeypatch):
    monkeypatch.delenv("FT_SKIP_VERSION_CHECK", raising=False)
    with pytest.raises(FtVersionError) as info:
        check_transformers("ft-models", installed=installed)
    message = str(info.value)
    assert "ft-models" in message and installed in message and "<6" in message and ">=5.0" in message
    assert "pip install" in message and "FT_SKIP_VERSION_CHECK" in message


def test_skip_env_downgrades_to_a_warning(monkeypatch):
    monkeypatch.setenv("FT_SKIP_VERSION_CHECK", "1")
    with pytest.warns(RuntimeWarning, match="transformers 6.0.0 is installed"):
        check_transformers("ft-data", installed="6.0.0")


def test_version_error_is_an_import_error():
    assert issubclass(FtVersionError, ImportError)


def test_package_import_fails_when_transformers_is_out_of_range(tmp_path):
    """The guard runs at import: a fake transformers 4.0 makes `import ft_models` fail."""
    import subprocess
    import sys

    code = (
        "import importlib.metadata as m; real = m.version\n"
        "m.version = lambda d: '4.0.0' if d == 'transformers' else real(d)\n"
        "import ft_models"
    )
    import os

    # PYTHONPATH kept: where the packages were installed with --target (the GPU check), it is how they import
    env = {"PATH": "/usr/bin:/bin", "FT_SKIP_VERSION_CHECK": "0",
           **{k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode != 0
    assert "ft-models supports transformers<6,>=5.0 but transformers 4.0.0 is installed" in done.stderr
