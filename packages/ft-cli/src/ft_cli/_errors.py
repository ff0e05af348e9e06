"""Turn user errors and missing packages into one line on stderr and an exit code."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

import typer

from ft_core import FtError

F = TypeVar("F", bound=Callable)

# module prefix -> distribution that provides it
_PROVIDERS = {"ft_train": "ft-train", "ft_models": "ft-models", "ft_stream": "ft-stream", "ft_data": "ft-data",
              "ft_serve": "ft-serve", "fastapi": "ft-serve", "uvicorn": "ft-serve"}


# distribution -> the ft-cli extra that installs it
_EXTRAS = {"ft-train": "train", "ft-models": "models", "ft-stream": "stream", "ft-data": "all", "ft-serve": "serve"}


def debugging() -> bool:
    """``ft --debug`` (or ``FT_DEBUG=1``): show tracebacks instead of one-line errors."""
    import os

    return os.environ.get("FT_DEBUG", "") not in ("", "0")


def friendly(command: str) -> Callable[[F], F]:
    """Decorate a command so FtError, an unreadable or unwritable file and a missing ft library exit
    with one clear line."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args, **kwargs):
            if debugging():
                return fn(*args, **kwargs)
            try:
                return fn(*args, **kwargs)
            except FtError as e:
                print(f"error: {e}", file=sys.stderr)
                raise typer.Exit(2) from None
            except OSError as e:  # a file the user named cannot be read or written: say which, no traceback
                if e.filename is None:
                    raise
                print(f"error: {e.filename}: {e.strerror or e}", file=sys.stderr)
                raise typer.Exit(2) from None
            except ModuleNotFoundError as e:
                dist = _PROVIDERS.get((e.name or "").split(".")[0])
                if dist is None:
                    raise
                extra = _EXTRAS[dist]
                print(f"error: install {dist} to use `ft {command}` (pip install 'ft-cli[{extra}]' or "
                      f"pip install {dist})", file=sys.stderr)
                raise typer.Exit(2) from None

        return run  # type: ignore[return-value]

    return wrap
