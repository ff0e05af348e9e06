"""What ft-cli reads from a training run's folder."""

from __future__ import annotations

from pathlib import Path


def base_of(adapter: Path | str | None) -> str | None:
    """The base a run trained on: ``model.source`` of the run_config.yaml beside the adapter."""
    if adapter is None:
        return None
    try:
        import yaml  # comes with ft-train, which wrote the file
    except ModuleNotFoundError:
        return None
    saved = Path(adapter).parent / "run_config.yaml"
    if not saved.is_file():
        return None
    try:
        recorded = yaml.safe_load(saved.read_text(encoding="utf-8")) or {}
    except (OSError, ValueError, yaml.YAMLError):
        return None
    model = recorded.get("model") if isinstance(recorded, dict) else None
    return model.get("source") if isinstance(model, dict) else None
