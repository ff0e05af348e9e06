"""Atomic writes: build in a temporary sibling, rename into place on success.

Temporary names carry the writer's process id (``.NAME.tmp-PID-xxxx``), so the next write of the
same target removes what a killed writer left behind, and never what a live one is writing.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ft_core.errors import FtError
from ft_core.output_dirs import check_output_dir, write_marker


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temps(final: Path) -> list[Path]:
    """Remove the temporary siblings of ``final`` whose writer is gone; returns what was removed.

    Names without a process id come from ft versions before this scheme and count as stale.
    """
    pattern = re.compile(rf"^\.{re.escape(final.name)}\.(?:tmp|old)-(?:(\d+)-)?[\w]+$")
    removed = []
    if not final.parent.is_dir():
        return removed
    for entry in final.parent.iterdir():
        match = pattern.match(entry.name)
        if match and not (match.group(1) and _alive(int(match.group(1)))):
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


@contextmanager
def atomic_dir(final: str | os.PathLike, *, force: bool = False, sources: Iterable[str | os.PathLike] = (),
               made_by: str = "ft") -> Iterator[Path]:
    """Yield a temporary folder next to ``final``; on success it replaces ``final``.

    On an exception the temporary folder is removed and ``final`` is left as it was. ``final`` must
    be new, empty or made by ft (see ``check_output_dir``; ``force`` lifts that, never the rule
    against a folder holding one of ``sources``). The folder gets ft's marker file and the
    permissions of an ordinary new folder.

    Example:
        >>> with atomic_dir("/tmp/ft-doc-atomic") as tmp:
        ...     _ = (tmp / "hello.txt").write_text("hi")
    """
    final = check_output_dir(final, force=force, sources=sources)
    remove_stale_temps(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-{os.getpid()}-", dir=final.parent))
    except OSError as e:
        raise FtError(f"cannot write {final}: {e.strerror}") from None
    try:
        yield tmp
        write_marker(tmp, made_by)
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it private (0700)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}-{tmp.name[-8:]}")
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private (0600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
