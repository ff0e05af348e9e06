"""An OpenAI-compatible HTTP API over one ft model (plain, with an adapter, or layer-streamed).

Example:
    >>> from ft_models import ChatModel
    >>> from ft_serve import Engine, serve
    >>> engine = Engine(ChatModel.load("smollm2-135m-instruct"), name="smollm2")  # doctest: +SKIP
    >>> serve(engine, port=8000)  # then: OpenAI(base_url="http://127.0.0.1:8000/v1")  # doctest: +SKIP
"""

from ft_serve import _compat  # noqa: F401  (version guard runs first)
from ft_serve.app import create_app
from ft_serve.engine import Engine, RequestError, Result, Sampling
from ft_serve.server import running, serve

__all__ = ["Engine", "RequestError", "Result", "Sampling", "create_app", "running", "serve"]
