import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ft_cli.app import app

runner = CliRunner()
FT = str(Path(sys.executable).parent / "ft")


def test_help_imports_neither_torch_nor_transformers():
    code = (
        "import sys\n"
        "from ft_cli.app import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'datasets', 'trl', 'peft') if m in sys.modules)\n"
        "print('HEAVY', heavy)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "train" in done.stdout and "chat" in done.stdout and "doctor" in done.stdout
    assert "HEAVY []" in done.stdout


def test_version_lists_every_package():
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0
    from importlib import metadata

    for name in ("ft-core", "ft-data", "ft-models", "ft-train", "ft-stream", "ft-cli"):
        assert f"{name:<10} {metadata.version(name)}" in result.stdout


def test_doctor_reports_ranges_torch_and_attention():
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "ft-models" in result.stdout and "transformers<6,>=5.0" in result.stdout and "ok" in result.stdout
    assert "torch: 2." in result.stdout
    for name in ("flash_attention_2", "sdpa", "eager"):
        assert name in result.stdout


def test_user_errors_are_one_line_with_exit_code_2(tmp_path):
    result = runner.invoke(app, ["train", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: run config {tmp_path / 'missing.yaml'} does not exist"
    result = runner.invoke(app, ["chat", "--model", "smollm9", "--prompt", "hi"])
    assert result.exit_code == 2
    assert "unknown model 'smollm9'" in result.stderr and "smollm2-135m-instruct" in result.stderr
    assert "Traceback" not in result.output


def test_a_missing_library_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ft_train", None)
    result = runner.invoke(app, ["train", str(tmp_path / "x.yaml")])
    assert result.exit_code == 2
    assert result.stderr.strip() == ("error: install ft-train to use `ft train` "
                                     "(pip install 'ft-cli[train]' or pip install ft-train)")


@pytest.mark.slow
def test_chat_one_shot_with_the_embedded_model(smol_dir):
    done = subprocess.run([FT, "chat", "--prompt", "What is the capital of France?"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "The capital of France is Paris."
    assert "kernels" not in done.stderr and "Warning" not in done.stderr  # no third-party noise


@pytest.mark.slow
def test_interactive_chat_keeps_history_and_resets(smol_dir):
    session = "What is the capital of France?\n/reset\n/exit\n"
    done = subprocess.run([FT, "chat", "--max-new-tokens", "12"], input=session, capture_output=True, text=True,
                          check=True)
    assert "assistant> The capital of France is Paris." in done.stdout


def test_multi_line_messages_with_a_backslash_or_a_block():
    from ft_cli.commands.chat import read_message

    def reader(lines):
        it = iter(lines)

        def read(prompt):
            try:
                return next(it)
            except StopIteration:
                raise EOFError from None

        return read

    assert read_message(reader(["first \\", "second \\", "third"])) == "first \nsecond \nthird"
    assert read_message(reader(['"""', "a poem", "", "  indented", '"""', "next"])) == "a poem\n\n  indented"
    assert read_message(reader(["unfinished \\"])) == "unfinished "
    assert read_message(reader([])) is None


def test_chat_prints_the_answer_as_it_is_generated(monkeypatch):
    """`ft chat -p` echoes each piece as it comes and ends with the stripped answer `reply` returns."""
    from ft_cli.commands import chat as chat_command

    class Pieces:
        def reply(self, conversation, on_text=None):
            for piece in ["\n ", "The capital", " of France", " is Paris.", "  \n"]:
                on_text(piece)
            return "The capital of France is Paris."

    monkeypatch.setattr(chat_command, "load_session", lambda *a: Pieces())
    result = runner.invoke(app, ["chat", "--prompt", "hi"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "The capital of France is Paris.\n"


def test_serve_help_has_an_example_and_a_missing_server_says_what_to_install(monkeypatch):
    result = runner.invoke(app, ["serve", "--help"])
    assert result.exit_code == 0 and "Example: ft serve" in result.stdout and "--api-key" in result.stdout
    monkeypatch.setitem(sys.modules, "ft_serve", None)
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "install ft-serve to use `ft serve` (pip install 'ft-cli[serve]'" in result.stderr


def test_serve_says_where_the_model_computes(monkeypatch, tiny_chat_dir):
    """The startup line names the device, so a user (and the GPU check) can see the model left the CPU."""
    import ft_serve

    served = {}
    monkeypatch.setattr(ft_serve, "serve", lambda engine, **kwargs: served.update(kwargs, engine=engine))
    result = runner.invoke(app, ["serve", str(tiny_chat_dir), "--device", "cpu", "--port", "8123", "--name", "m",
                                 "--dtype", "bfloat16"])
    assert result.exit_code == 0, result.output
    assert "serving 'm' (cpu) on http://127.0.0.1:8123/v1" in result.stderr
    model = served["engine"].chat.model
    assert served["port"] == 8123 and str(model.device) == "cpu" and str(model.dtype) == "torch.bfloat16"


@pytest.mark.slow
def test_chat_streams_the_same_text_as_before(smol_dir):
    """The streamed one-shot answer equals ChatModel.reply's (the embedded model, greedy)."""
    from ft_models import ChatModel, GenerationOptions

    want = ChatModel.load(options=GenerationOptions(max_new_tokens=40)).reply(
        [{"role": "user", "content": "Write two sentences about the sea."}])
    done = subprocess.run([FT, "chat", "--max-new-tokens", "40", "--prompt", "Write two sentences about the sea."],
                          capture_output=True, text=True, check=True)
    assert done.stdout.endswith("\n" + want + "\n") or done.stdout == want + "\n"  # after any ft: log line


def test_every_command_shows_an_example_in_its_help():
    import typer.main

    root = typer.main.get_command(app)

    def leaves(group, path):
        for name, command in group.commands.items():
            if hasattr(command, "commands"):  # a group (typer may vendor its own click)
                yield from leaves(command, [*path, name])
            else:
                yield [*path, name]

    missing = []
    for path in leaves(root, []):
        result = runner.invoke(app, [*path, "--help"])
        if result.exit_code != 0 or "Example: ft " not in result.stdout:
            missing.append(" ".join(path))
    assert not missing, f"no example in --help of: {missing}"


def test_an_unexpected_error_is_one_line_unless_debug(monkeypatch, capsys):
    import typer

    import ft_cli.app as ft_app

    broken = typer.Typer()

    @broken.command()
    def boom() -> None:
        raise ValueError("the disk is full of bees")

    @broken.command()
    def other() -> None:
        pass

    monkeypatch.setattr(ft_app, "app", broken)
    monkeypatch.delenv("FT_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", ["ft", "boom"])
    with pytest.raises(SystemExit) as done:
        ft_app.main()
    err = capsys.readouterr().err
    assert done.value.code == 1 and "Traceback" not in err
    assert err.strip() == ("error: ValueError: the disk is full of bees (unexpected: rerun with --debug for the "
                           "traceback, and report it)")
    monkeypatch.setattr(sys, "argv", ["ft", "boom", "--debug"])
    try:
        with pytest.raises(ValueError, match="bees"):
            ft_app.main()
    finally:
        os.environ.pop("FT_DEBUG", None)  # main() set it
