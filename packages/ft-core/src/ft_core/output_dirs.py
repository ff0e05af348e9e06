"""Which folders ft may write over: new or empty ones, and ones ft made itself (they carry a
marker file); never a folder holding the input, whatever ``force`` says."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from ft_core.errors import FtError

MARKER = ".ft-folder"  # written into every folder ft builds with atomic_dir


def made_by_ft(folder: Path) -> bool:
    return (Path(folder) / MARKER).is_file()


def write_marker(folder: Path, made_by: str) -> None:
    (Path(folder) / MARKER).write_text(json.dumps({"made_by": made_by}) + "\n", encoding="utf-8")


def _holds(outer: Path, inner: Path) -> bool:
    return inner == outer or outer in inner.parents


def check_output_dir(final: str | os.PathLike, *, force: bool = False, sources: Iterable[str | os.PathLike] = ()) -> Path:
    """``final`` as an absolute path, if ft may (re)place a folder there; else an FtError saying why.

    Refused always: a path that is a file, a folder that holds one of ``sources`` (what is being
    read) or the current folder. Refused without ``force``: a non-empty folder ft did not make.
    A folder ft cannot create or write in is refused with the reason before any work starts.

    Example:
        >>> check_output_dir("/tmp/ft-doc-new-folder").name
        'ft-doc-new-folder'
    """
    final = Path(final).expanduser().resolve()
    if final.exists() and not final.is_dir():
        raise FtError(f"{final} is a file; give a folder to write into")
    for source in sources:
        if _holds(final, Path(source).expanduser().resolve()):
            raise FtError(f"{final} holds the input {source}; writing there would replace it: choose another folder")
    if _holds(final, Path.cwd().resolve()):
        raise FtError(f"{final} is the current folder (or holds it); choose a new folder, e.g. {final / 'out'}")
    if final.is_dir() and not force and any(final.iterdir()) and not made_by_ft(final):
        raise FtError(f"{final} is not empty and was not made by ft (no {MARKER} in it); choose a new or empty "
                      "folder, or replace it with --force")
    _check_writable(final)
    return final


def _check_writable(final: Path) -> None:
    """Make and remove a folder where ``final``'s would go: the one test that holds for root,
    read-only mounts and network file systems alike."""
    parent = next(p for p in final.parents if p.exists())
    if not parent.is_dir():
        raise FtError(f"cannot write {final}: {parent} is a file, not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".ft-probe-", dir=parent))
    except OSError as e:
        raise FtError(f"cannot write {final}: {e.strerror.lower()} in {parent}") from None
