"""Run the API: ``serve`` blocks (what `ft serve` calls); ``running`` serves on a free loopback
port inside a ``with`` block (tests, notebooks, benchmarks).

Example:
    >>> with running(engine) as url:  # doctest: +SKIP
    ...     OpenAI(base_url=url + "/v1", api_key="-").chat.completions.create(...)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ft_serve.app import create_app
from ft_serve.engine import Engine


def serve(engine: Engine, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
          aliases: tuple[str, ...] = (), log_level: str = "info") -> None:
    """Serve ``engine`` until interrupted (Ctrl-C). Loopback only unless ``host`` says otherwise."""
    import uvicorn

    uvicorn.run(create_app(engine, api_key, aliases), host=host, port=port, log_level=log_level)


@contextmanager
def running(engine: Engine, api_key: str | None = None, port: int = 0, log_level: str = "warning") -> Iterator[str]:
    """The API served on 127.0.0.1 (``port`` 0: a free one) on a thread; yields its base URL and
    stops the server when the block ends."""
    import uvicorn

    config = uvicorn.Config(create_app(engine, api_key), host="127.0.0.1", port=port, log_level=log_level)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="ft-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("ft serve did not start")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
