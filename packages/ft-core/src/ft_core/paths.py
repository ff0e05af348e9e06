"""Where ft keeps its caches."""

from __future__ import annotations

import os
from pathlib import Path


def ft_home() -> Path:
    """The cache root: ``$FT_HOME`` if set, else ``~/.cache/ft``."""
    env = os.environ.get("FT_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ft"
