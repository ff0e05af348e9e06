"""Fail fast on a hub id that cannot load: offline mode, or a hub that does not answer, with the
model not in the local cache. (Left to itself the hub client retries for about a minute and
ends in a long traceback.)"""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

from ft_core import FtError

_TRUE = {"1", "on", "yes", "true"}


def offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) as the hub client reads it, but read now."""
    return any(os.environ.get(name, "").strip().lower() in _TRUE for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def cached(repo_id: str) -> bool:
    """Whether the model's config is in the local hub cache (then loading needs no network)."""
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether anything answers a TCP connection at ``url``'s host and port within ``timeout``."""
    parsed = urlparse(url)
    try:
        socket.create_connection((parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)),
                                 timeout=timeout).close()
    except OSError:
        return False
    return True


def ensure_loadable(repo_id: str) -> None:
    """An FtError at once when hub model ``repo_id`` is not cached and cannot be downloaded."""
    if cached(repo_id):
        return
    if offline():
        raise FtError(f"'{repo_id}' is a hub id, it is not in the local cache and HF_HUB_OFFLINE is set; download "
                      "it where there is a network, or pass a model folder or a .gguf file")
    if not reachable(endpoint()):
        raise FtError(f"'{repo_id}' is a hub id, it is not in the local cache and the hub ({endpoint()}) does not "
                      "answer; check the network, or pass a model folder or a .gguf file")
