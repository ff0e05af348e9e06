"""The Typer app; commands live in ft_cli.commands and import libraries only when run."""

from __future__ import annotations

import typer

from ft_cli.commands import chat, data, doctor, export, model, stream, train, version

app = typer.Typer(
    name="ft",
    help="Fine-tune language models and run models larger than memory.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("train")(train.train)
app.command("chat")(chat.chat)
app.command("version")(version.version)
app.command("doctor")(doctor.doctor)
app.command("export")(export.export)
app.add_typer(data.app, name="data")
app.add_typer(model.app, name="model")
app.add_typer(stream.app, name="stream")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
