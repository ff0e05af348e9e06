"""The YAML run config: our sections validated strictly, trainer keys checked against TRL."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ft_core import FtError, closest, did_you_mean, read_text
from ft_data import build_dataset
from ft_data.formats import CONVERTERS
from ft_data.loading import ON_BAD_ROW
from ft_data.records import TRAIN_ON
from ft_models import DEFAULT_MODEL, AdapterSpec, Quantization, load_model
from ft_models.adapters import ADAPTER_TYPES, LORA_INITS
from ft_models.patches import ATTENTION, SCALINGS
from ft_models.quantization import QUANT_TYPES
from ft_train.sections import Number, choice, section_from, section_from_signature
from ft_train.sections import Section as _Section
from ft_train.trainer_args import check_args, config_variant, field_kinds

log = logging.getLogger("ft_train")
QuantizationSection = section_from(Quantization, "QuantizationSection", choices={"bits": (4, 8), "quant_type": QUANT_TYPES})
AdapterSection = section_from(AdapterSpec, "AdapterSection", skip=("head",),
                              choices={"type": ADAPTER_TYPES, "init": LORA_INITS})


# ``model:``: how ft_models.load_model loads the base (quantization: QLoRA's 4- or 8-bit base;
# context_length beyond the trained length: RoPE scaling), and which model (``source``)
ModelSection = section_from_signature(
    load_model, "ModelSection", skip=("token", "head", "quantization"),
    choices={"attention": ("auto", *ATTENTION), "rope_scaling": SCALINGS}, bounds={"context_length": {"gt": 0}},
    doc="The base model: ``source`` and ft_models.load_model's options.",
    source=(str, DEFAULT_MODEL), quantization=(QuantizationSection | None, None))


class DataFile(_Section):
    """A data file (``path`` and ``format``), or a ``dataset`` name from ``data.registry``."""

    path: str | None = None
    format: choice(("auto", *CONVERTERS)) = "auto"
    dataset: str | None = None
    max_samples: int | None = Field(default=None, gt=0)  # at most this many rows of it


class _DataFiles(_Section):
    """Which rows: ``train`` files (and ``eval`` files, or ``val_size``), ``registry`` names."""

    train: list[DataFile] = Field(min_length=1)
    registry: str | None = None  # a dataset_info.json (LLaMA-Factory's format) naming datasets
    eval: list[DataFile] = []  # held-out files for eval loss (and perplexity for pt/sft)
    val_size: Number | None = Field(default=None, gt=0)  # or hold out this share (< 1) or count of rows

    @field_validator("train", "eval", mode="before")
    @classmethod
    def _paths_as_files(cls, value: Any) -> Any:
        items = value if isinstance(value, list) else [value]
        return [{"path": v} if isinstance(v, str) else v for v in items]


# ``data:``: the files, and how ft_data.build_dataset turns them into tokens (cutoff_len, template,
# system, default_system, train_on, packing, on_bad_row, num_proc); ``stage`` comes from train:
DataSection = section_from_signature(
    build_dataset, "DataSection", skip=("stage", "cache"), base=_DataFiles,
    choices={"train_on": TRAIN_ON, "on_bad_row": ON_BAD_ROW},
    bounds={"cutoff_len": {"gt": 0}, "num_proc": {"gt": 0}},
    doc="The data files and ft_data.build_dataset's options.")


class TrainSection(BaseModel):
    """``stage`` and ``output_dir``; every other key goes to the stage's TRL config
    (checked by ``ft_train.trainer_args.check_trainer_args``)."""

    model_config = ConfigDict(extra="allow", strict=True)
    stage: str = "sft"  # checked against ft_train.stages.STAGES
    output_dir: str
    resume: bool = True
    # fused CPU kernels (ft_train.kernels, numba): None uses them where numba is installed
    cpu_kernels: bool | None = None

    @property
    def trainer_args(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class RunConfig(_Section):
    model: ModelSection = ModelSection()
    data: DataSection
    adapter: AdapterSection = AdapterSection()
    train: TrainSection


def _section_fields(loc: tuple) -> list[str]:
    """The valid keys at the place in RunConfig that ``loc`` points to."""
    model: Any = RunConfig
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            continue
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        model = next((a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)), model)
    return list(model.model_fields)


def _trainer_args_file(stage: str, variant: str = "") -> Path:
    from importlib.metadata import version

    from ft_core import ft_home

    # some config classes are ft-train's own (RefFreeDPOConfig, PPOConfig): both versions name the copy
    name = f"trl-{version('trl')}-ft-train-{version('ft-train')}-{stage}{'-' + variant if variant else ''}-args.json"
    return ft_home() / "cache" / name


def _sft_field_names() -> list[str]:
    import dataclasses

    from trl import SFTConfig

    return [f.name for f in dataclasses.fields(SFTConfig)]


def _kept_args(stage: str, variant: str = "") -> dict | None:
    """{"class": name, "fields": {field: [kind, optional]}} of the stage's TRL config (the variant
    the train: keys select), as a run kept it."""
    import json

    kept = _trainer_args_file(stage, variant)
    return json.loads(kept.read_text()) if kept.is_file() else None


def _trainer_fields() -> list[str]:
    """TRL's SFTConfig field names: from the copy a training run kept (importing TRL takes seconds;
    a misplaced key should be named in about one), else from TRL itself. Writes nothing: a bad
    config leaves no trace."""
    kept = _kept_args("sft")
    return list(kept["fields"]) if kept else _sft_field_names()


def remember_trainer_args(stage: str, config_cls: type, variant: str = "") -> None:
    """Keep the fields and their kinds of the stage's TRL config (``variant``: the one the train:
    keys selected, ``config_variant``) in FT_HOME (a run calls this once TRL is loaded anyway),
    and SFT's for naming misplaced keys."""
    import json

    from ft_core import atomic_write_text

    if stage != "sft" and not _trainer_args_file("sft").is_file():
        from trl import SFTConfig

        remember_trainer_args("sft", SFTConfig)
    kept = _trainer_args_file(stage, variant)
    if not kept.is_file():
        kept.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(kept, json.dumps({"class": config_cls.__name__, "fields": field_kinds(config_cls)}))


def _check_kept_trainer_args(path: Path, train: TrainSection) -> None:
    """The ``train:`` keys checked now where a run kept the stage's fields (about a second);
    elsewhere the run checks them once TRL is loaded."""
    kept = _kept_args(train.stage, config_variant(train.stage, train.trainer_args))
    if kept:
        check_args(path, {k: tuple(v) for k, v in kept["fields"].items()}, kept["class"], train.trainer_args)


def section_of(name: str) -> str | None:
    """'section.key' for a key that belongs in a section (exactly, or by a likely typo)."""
    keys = {f"{section}.{key}": key for section, field in RunConfig.model_fields.items()
            for key in _section_fields((section, "x"))}
    keys.update({f"train.{key}": key for key in _trainer_fields()})
    exact = [dotted for dotted, key in keys.items() if key == name]
    if exact:
        return exact[0]
    near = closest(name, set(keys.values()))
    return next((dotted for dotted, key in keys.items() if key == near), None)


def _unknown_key(loc: tuple) -> str:
    key = ".".join(str(p) for p in loc)
    if len(loc) == 1 and closest(key, RunConfig.model_fields):  # a misspelt section
        return f"unknown top-level key '{key}'{did_you_mean(key, RunConfig.model_fields)}"
    if len(loc) == 1:  # a top-level key that belongs in a section
        home = section_of(key)
        if home:
            section, field = home.split(".", 1)
            verb = "is" if field == loc[0] else "looks like"
            return f"unknown top-level key '{key}': it {verb} '{home}' (put it under {section}:)"
        return f"unknown top-level key '{key}'; the sections are {', '.join(RunConfig.model_fields)}"
    return f"unknown key '{key}'{did_you_mean(str(loc[-1]), _section_fields(loc))}"


def _reword(path: Path, error: ValidationError) -> FtError:
    # An unknown key explains the missing one beside it (a typo), so report it first.
    errors = sorted(error.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    loc = tuple(first["loc"])
    key = ".".join(str(p) for p in loc)
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    if first["type"] == "extra_forbidden":
        return FtError(f"{path}: {_unknown_key(loc)}{more}")
    if first["type"] == "missing":
        return FtError(f"{path}: missing key '{key}'{more}")
    return FtError(f"{path}: {key}: {first['msg']} (found {first.get('input')!r}){more}")


def read_yaml(path: Path) -> dict:
    """The mapping in a YAML run config file, or an FtError naming the file."""
    try:
        raw = yaml.safe_load(read_text(path, "run config")) or {}
    except yaml.YAMLError as e:
        raise FtError(f"{path}: invalid YAML ({e})".replace("\n", " ")) from None
    if not isinstance(raw, dict):
        raise FtError(f"{path}: expected a mapping with sections model, data, adapter, train")
    return raw


def load_run_config(path: str | Path, announce: bool = True) -> RunConfig:
    """Parse and validate a YAML run config (ours, or a LLaMA-Factory training YAML, converted);
    data paths are taken relative to the file's folder. ``announce`` logs what a conversion did
    (off for a check before the run, which then says it once)."""
    from ft_train.llamafactory import convert, is_llamafactory

    path = Path(path)
    raw = read_yaml(path)
    if is_llamafactory(raw):
        converted = convert(raw, path)
        if not announce:
            return validate_run_config(path, converted.config)
        log.info("%s: a LLaMA-Factory config (see it as ft's with `ft train --convert %s`)", path, path)
        if converted.ignored:
            log.info("ignored: %s", "; ".join(converted.ignored))
        raw = converted.config
    return validate_run_config(path, raw)


def validate_run_config(path: Path, raw: dict) -> RunConfig:
    """``raw`` (read from ``path``) as a RunConfig: every section strict, every library check run."""
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as e:
        raise _reword(path, e) from None
    for section, build in (("adapter", lambda: AdapterSpec(**config.adapter.model_dump())),
                           ("model.quantization", lambda: config.model.quantization and
                            Quantization(**config.model.quantization.model_dump()))):
        try:  # the libraries' own checks (ranges, combinations), named by section
            build()
        except FtError as e:
            raise FtError(f"{path}: {section}: {e}") from None
    if config.data.eval and config.data.val_size:
        raise FtError(f"{path}: data: give eval files or val_size, not both")
    _check_data_files(path, config.data)
    _check_kept_trainer_args(path, config.train)
    return config


def _check_data_files(path: Path, data: DataSection) -> None:
    """Paths made absolute (relative to the config file), files and registry names checked."""
    names: dict = {}
    if data.registry:
        from ft_data import load_registry

        data.registry = str((path.parent / data.registry).resolve())
        try:
            names = load_registry(data.registry)
        except FtError as e:
            raise FtError(f"{path}: data.registry: {e}") from None
    for key in ("train", "eval"):
        for n, item in enumerate(getattr(data, key)):
            where = f"{path}: data.{key}.{n}"
            if (item.path is None) == (item.dataset is None):
                raise FtError(f"{where}: give a path or a dataset name (one of the two)")
            if item.dataset is not None:
                if not data.registry:
                    raise FtError(f"{where}: dataset '{item.dataset}' needs data.registry (a dataset_info.json)")
                if item.dataset not in names:
                    raise FtError(f"{where}: no dataset '{item.dataset}' in {data.registry}"
                                  f"{did_you_mean(item.dataset, names)}")
                continue
            if item.max_samples:
                raise FtError(f"{where}: max_samples applies to registry datasets; cut the file instead")
            if not Path(item.path).is_absolute():
                item.path = str((path.parent / item.path).resolve())
            if Path(item.path).is_dir():
                raise FtError(f"{where}: {item.path} is a folder; list the data files inside it")
            if not Path(item.path).is_file():
                raise FtError(f"{where}: data file {item.path} does not exist "
                              "(relative paths are taken from the config file's folder)")
