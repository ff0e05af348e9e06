"""Reading a user's text file with errors that say what is wrong with it and what to do."""

from __future__ import annotations

import codecs
import os
from pathlib import Path

from ft_core.errors import FtError

_UTF16 = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def check_file(path: str | os.PathLike, what: str = "file") -> Path:
    """``path`` if it is an existing file; else an FtError saying it is missing or a folder."""
    path = Path(path)
    if path.is_dir():
        raise FtError(f"{what} {path} is a folder, not a file; give the file inside it")
    if not path.is_file():
        raise FtError(f"{what} {path} does not exist")
    return path


def read_text(path: str | os.PathLike, what: str = "file") -> str:
    """The UTF-8 text of ``path``; a leading byte-order mark is dropped.

    Text in another encoding is an FtError naming the line and the byte, e.g.
    ``data.jsonl line 3: not UTF-8 text (byte 0xe9); save the file as UTF-8``.

    Example:
        >>> import tempfile; f = tempfile.NamedTemporaryFile(suffix=".txt", delete=False)
        >>> _ = f.write(b"\\xef\\xbb\\xbfhello"); f.close()
        >>> read_text(f.name)
        'hello'
    """
    raw = check_file(path, what).read_bytes()
    if raw.startswith(_UTF16):
        raise FtError(f"{path} is UTF-16 text; save it as UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise FtError(f"{path} line {line}: not UTF-8 text (byte 0x{raw[e.start]:02x}); save the file as UTF-8") from None
