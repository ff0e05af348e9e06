"""The Typer app; commands live in ft_cli.commands and import libraries only when run."""

from __future__ import annotations

import os
import sys

import typer

from ft_cli._errors import debugging
from ft_cli._output import quiet_third_party_logs, show_ft_logs
from ft_cli.commands import chat, data, doctor, export, init, model, serve, stream, train, version

app = typer.Typer(
    name="ft",
    help="Fine-tune language models and run models larger than memory. Add --debug to any command for tracebacks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("init")(init.init)
app.command("train")(train.train)
app.command("chat")(chat.chat)
app.command("version")(version.version)
app.command("doctor")(doctor.doctor)
app.command("export")(export.export)
app.command("serve")(serve.serve)
app.add_typer(data.app, name="data")
app.add_typer(model.app, name="model")
app.add_typer(stream.app, name="stream")


def main() -> None:
    """The `ft` entry point: usage mistakes (a missing argument, a bad option value) are one line
    on stderr with exit code 2, like every other user error; anything unexpected is one line too,
    exit code 1, unless ``--debug`` (anywhere on the line) or ``FT_DEBUG=1`` asks for the traceback."""
    if "--debug" in sys.argv[1:]:
        sys.argv.remove("--debug")
        os.environ["FT_DEBUG"] = "1"
    quiet_third_party_logs()
    show_ft_logs()
    try:
        code = app(standalone_mode=False)
    except typer.Abort:
        print("aborted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:
        # click's exception classes (typer vendors its own copy in newer versions)
        if not any(c.__name__ == "ClickException" for c in type(e).__mro__):
            if debugging():
                raise
            print(f"error: {type(e).__name__}: {e} (unexpected: rerun with --debug for the traceback, and report it)",
                  file=sys.stderr)
            sys.exit(1)
        ctx = getattr(e, "ctx", None)
        where, hint = (f"{ctx.command_path}: ", f" (see {ctx.command_path} --help)") if ctx else ("", "")
        print(f"error: {where}{' '.join(e.format_message().split())}{hint}", file=sys.stderr)
        sys.exit(e.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
