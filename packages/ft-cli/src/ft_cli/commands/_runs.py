"""What ft-cli reads from a training run's folder."""

from __future__ import annotations

from pathlib import Path


def base_of(adapter: Path | str | None) -> str | None:
    """The base a run trained on: ``model.source`` of the run's run_config.yaml, beside the adapter
    (``adapter`` a run's output_dir/adapter) or in it (``adapter`` the run's output_dir)."""
    if adapter is None:
        return None
    try:
        import yaml  # comes with ft-train, which wrote the file
    except ModuleNotFoundError:
        return None
    folder = Path(adapter)
    saved = next((f for f in (folder / "run_config.yaml", folder.parent / "run_config.yaml") if f.is_file()), None)
    if saved is None:
        return None
    try:
        recorded = yaml.safe_load(saved.read_text(encoding="utf-8")) or {}
    except (OSError, ValueError, yaml.YAMLError):
        return None
    model = recorded.get("model") if isinstance(recorded, dict) else None
    return model.get("source") if isinstance(model, dict) else None
