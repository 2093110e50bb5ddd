"""config.toml -> frozen dataclasses.

All defaults live in the dataclasses below (config.toml at the repo root documents them).
Loading walks the TOML against these classes: unknown keys, wrong types and out-of-range values
are collected with their dotted key (and line, where the TOML text lets us find it) and reported
all at once as one ``ConfigError``. Bounds on ``[train]`` are ACE-Step's own Gradio bounds
(CONTRACT §1d) so a bad value is caught when the file is saved, not at 1 a.m.
"""

from __future__ import annotations

import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from acewatchd.errors import ConfigError

ENV_VAR = "ACEWATCHD_CONFIG"
DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _bounds(lo: float | None = None, hi: float | None = None, **extra: Any) -> dict[str, Any]:
    return {"min": lo, "max": hi, **extra}


@dataclass(frozen=True)
class Paths:
    drop: Path = Path("drop")
    outbox: Path = Path("outbox")
    rejected: Path = Path("rejected")
    state: Path = Path("state")
    logs: Path = Path("logs")


@dataclass(frozen=True)
class AceStep:
    root: Path = Path("~/ACE-Step-1.5")
    url: str = "http://127.0.0.1:7860"
    # ACE-Step's own interpreter, used for preprocessing; "" means <root>/.venv/bin/python.
    python: str = ""
    # Seconds for one ordinary API call (training streams are not bounded by this).
    timeout_seconds: float = field(default=120.0, metadata=_bounds(1, 86400))
    manage_server: bool = False
    server_command: list[str] = field(
        default_factory=lambda: [
            "uv", "run", "acestep", "--port", "7860", "--init_service", "true", "--backend", "mlx",
        ]
    )
    server_env: dict[str, str] = field(default_factory=lambda: {"CHECK_UPDATE": "false"})
    startup_timeout_seconds: float = field(default=600.0, metadata=_bounds(1, 7200))
    # How long before the nightly run a managed server is started.
    start_before_minutes: int = field(default=5, metadata=_bounds(0, 120))

    def python_path(self) -> Path:
        return Path(self.python) if self.python else self.root / ".venv" / "bin" / "python"


@dataclass(frozen=True)
class Watch:
    settle_seconds: float = field(default=3.0, metadata=_bounds(0, 3600))
    poll_seconds: float = field(default=0.5, metadata=_bounds(0.05, 60))
    settle_polls: int = field(default=3, metadata=_bounds(1, 100))
    # A file still changing after this long is logged and retried at the next rescan.
    settle_ceiling_minutes: float = field(default=30.0, metadata=_bounds(0.01, 1440))
    rescan_minutes: float = field(default=5.0, metadata=_bounds(0.01, 1440))
    extensions: list[str] = field(default_factory=lambda: ["mp3", "wav", "flac", "m4a", "ogg"])
    min_duration_seconds: float = field(default=5.0, metadata=_bounds(0, 36000))
    max_duration_seconds: float = field(default=600.0, metadata=_bounds(1, 36000))


@dataclass(frozen=True)
class Logging:
    level: Literal["debug", "info", "warning", "error"] = "info"
    max_bytes: int = field(default=10_000_000, metadata=_bounds(10_000, 10**10))
    backups: int = field(default=5, metadata=_bounds(0, 100))


@dataclass(frozen=True)
class Preprocess:
    # ACE-Step checkpoints folder; "" means <acestep root>/checkpoints.
    checkpoint_dir: str = ""
    variant: Literal["turbo", "base", "sft"] = "turbo"
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    device: Literal["auto", "cuda", "mps", "xpu", "cpu"] = "auto"
    max_duration: float = field(default=240.0, metadata=_bounds(10, 600))


@dataclass(frozen=True)
class Schedule:
    # Standard 5-field cron (minute hour day month weekday); weekday 0 and 7 are Sunday.
    cron: str = "0 1 * * *"
    window_end: str = field(default="07:00", metadata={"pattern": r"^([01]\d|2[0-3]):[0-5]\d$"})
    # IANA name such as "Europe/Berlin"; "" means the machine's local zone.
    timezone: str = ""
    # Run a missed start once if the machine wakes (or the daemon starts) inside the window.
    catch_up: bool = True
    require_ac_power: bool = False
    enabled: bool = True


@dataclass(frozen=True)
class Train:
    rank: int = field(default=64, metadata=_bounds(4, 256))
    alpha: int = field(default=128, metadata=_bounds(4, 512))
    dropout: float = field(default=0.1, metadata=_bounds(0.0, 0.5))
    learning_rate: float = field(default=3e-4, metadata=_bounds(1e-7, 1.0))
    # An integer 100-4000 (ACE-Step's slider bounds) or "auto" (chosen from the dataset size).
    epochs: int | Literal["auto"] = field(default="auto", metadata=_bounds(100, 4000))
    batch_size: int = field(default=1, metadata=_bounds(1, 8))
    grad_accum: int = field(default=1, metadata=_bounds(1, 16))
    save_every: int = field(default=200, metadata=_bounds(50, 1000))
    shift: float = field(default=3.0, metadata=_bounds(1.0, 5.0))
    seed: int = 42


@dataclass(frozen=True)
class Prompt:
    caption: str = ""
    lyrics: str = "[Instrumental]"
    bpm: int | None = field(default=None, metadata=_bounds(30, 300))
    key: str = ""
    time_signature: Literal["", "2", "3", "4", "6"] = ""
    language: str = "unknown"
    duration: float = field(default=30.0, metadata=_bounds(10, 600))
    seed: int = 42
    # Several takes of this prompt, one clip per seed (replaces ``seed``). ACE-Step renders one
    # caption per call, so takes of one prompt are what [render] batch_size batches together.
    seeds: list[int] = field(default_factory=list)
    name: str = ""


def _default_prompts() -> list[Prompt]:
    return [
        Prompt(caption="{tag}, energetic, full band, clear vocals", name="energetic", seed=42),
        Prompt(caption="{tag}, slow ballad, piano, emotional vocals", name="ballad", seed=7),
        Prompt(caption="{tag}, instrumental, acoustic guitar", name="acoustic", seed=1234),
    ]


@dataclass(frozen=True)
class Render:
    enabled: bool = True
    lora_scale: float = field(default=0.8, metadata=_bounds(0.0, 1.0))
    batch_size: int = field(default=2, metadata=_bounds(1, 8))
    compare_base: bool = True
    audio_format: Literal["mp3", "flac"] = "mp3"
    steps: int = field(default=8, metadata=_bounds(1, 20))
    guidance: float = field(default=7.0, metadata=_bounds(1.0, 15.0))
    prompts: list[Prompt] = field(default_factory=_default_prompts)


@dataclass(frozen=True)
class Outbox:
    keep_runs: int = field(default=10, metadata=_bounds(1, 10000))


@dataclass(frozen=True)
class Notify:
    macos: bool = True
    webhook_url: str = ""


@dataclass(frozen=True)
class Service:
    label: str = "com.acewatchd.agent"
    throttle_seconds: int = field(default=30, metadata=_bounds(1, 3600))


@dataclass(frozen=True)
class Dataset:
    tag: str = ""
    tag_position: Literal["prepend", "append", "replace"] = "prepend"
    instrumental: bool = False
    language: str = "unknown"
    caption_template: str = "{tag}, {genre}, {decade}, {artist} style, {bpm}, {key}"
    genre: str = ""
    bpm: int | None = field(default=None, metadata=_bounds(30, 300))
    keyscale: str = ""
    timesignature: Literal["", "2", "3", "4", "6"] = ""
    genre_ratio: int = field(default=0, metadata=_bounds(0, 100))
    enabled: bool = True
    # Per-dataset overrides: any subset of the top-level tables' keys.
    train: dict[str, Any] = field(default_factory=dict, metadata={"override": Train})
    schedule: dict[str, Any] = field(default_factory=dict, metadata={"override": Schedule})
    render: dict[str, Any] = field(default_factory=dict, metadata={"override": Render})


@dataclass(frozen=True)
class Config:
    paths: Paths = field(default_factory=Paths)
    acestep: AceStep = field(default_factory=AceStep)
    watch: Watch = field(default_factory=Watch)
    logging: Logging = field(default_factory=Logging)
    preprocess: Preprocess = field(default_factory=Preprocess)
    schedule: Schedule = field(default_factory=Schedule)
    train: Train = field(default_factory=Train)
    render: Render = field(default_factory=Render)
    outbox: Outbox = field(default_factory=Outbox)
    notify: Notify = field(default_factory=Notify)
    service: Service = field(default_factory=Service)
    datasets: dict[str, Dataset] = field(default_factory=dict)
    # Where the file was read from (not a TOML key).
    source: Path | None = field(default=None, metadata={"internal": True})

    def dataset(self, name: str) -> Dataset:
        """Settings for a drop folder; folders not named in config get the defaults."""
        return self.datasets.get(name, Dataset())

    def train_for(self, name: str) -> Train:
        return replace(self.train, **self.dataset(name).train)

    def schedule_for(self, name: str) -> Schedule:
        return replace(self.schedule, **self.dataset(name).schedule)

    def render_for(self, name: str) -> Render:
        return replace(self.render, **self.dataset(name).render)

    @property
    def home(self) -> Path:
        return self.source.parent if self.source else Path.cwd()


# --------------------------------------------------------------------------- locating


def find_config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--config`` beats ``$ACEWATCHD_CONFIG`` beats ``./config.toml``."""
    chosen = explicit or os.environ.get(ENV_VAR) or "config.toml"
    return Path(chosen).expanduser().absolute()


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate; raises ConfigError listing every problem."""
    cfg_path = find_config_path(path)
    try:
        text = cfg_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(cfg_path), ["file not found (use --config or $ACEWATCHD_CONFIG)"])
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(cfg_path), [f"cannot read: {exc}"])
    return parse_config(text, cfg_path)


def parse_config(text: str, cfg_path: Path) -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(cfg_path), [f"TOML syntax error: {exc}"])
    problems: list[str] = []
    cfg = _build(Config, raw, "", problems, text)
    if not problems:
        cfg = _resolve_paths(cfg, cfg_path.parent)
        _cross_checks(cfg, problems, text)
    if problems:
        raise ConfigError(str(cfg_path), problems)
    return replace(cfg, source=cfg_path)


# --------------------------------------------------------------------------- building


def _line_of(text: str, dotted: str) -> str:
    """Best-effort ' (line N)' for a dotted key: find the last segment as a TOML key."""
    last = dotted.rsplit(".", 1)[-1].split("[", 1)[0]
    if not last:
        return ""
    pattern = re.compile(rf"^\s*\"?{re.escape(last)}\"?\s*=|^\s*\[+[^\]]*\b{re.escape(last)}\]",
                         re.MULTILINE)
    match = pattern.search(text)
    return f" (line {text.count(chr(10), 0, match.start()) + 1})" if match else ""


def _build(cls: type, raw: Any, prefix: str, problems: list[str], text: str) -> Any:
    where = prefix.rstrip(".") or "top level"
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a table{_line_of(text, where)}")
        return cls()
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls) if not f.metadata.get("internal")}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if key not in known:
            problems.append(f"{dotted}: unknown key{_line_of(text, dotted)}")
            continue
        values[key] = _convert(hints[key], value, dotted, problems, text, known[key].metadata)
    try:
        return cls(**values)
    except TypeError as exc:  # only when a conversion above already failed
        problems.append(f"{where}: {exc}")
        return cls()


def _convert(tp: Any, value: Any, dotted: str, problems: list[str], text: str,
             meta: Any) -> Any:
    before = len(problems)
    result = _convert_type(tp, value, dotted, problems, text, meta)
    if len(problems) == before:
        _check_bounds(result, dotted, problems, text, meta)
    return result


def _convert_type(tp: Any, value: Any, dotted: str, problems: list[str], text: str,
                  meta: Any) -> Any:
    origin, args = get_origin(tp), get_args(tp)
    if is_dataclass(tp):
        return _build(typing.cast(type, tp), value, dotted + ".", problems, text)
    if "override" in meta:
        return _override(meta["override"], value, dotted, problems, text)
    if origin in (typing.Union, types.UnionType):
        return _convert_union(args, value, dotted, problems, text, meta)
    if origin is Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            problems.append(f"{dotted}: must be one of {choices}, got {value!r}"
                            f"{_line_of(text, dotted)}")
        return value
    if origin is list:
        return _convert_list(args[0], value, dotted, problems, text)
    if origin is dict and is_dataclass(args[1]):
        if not isinstance(value, dict):
            problems.append(f"{dotted}: expected a table{_line_of(text, dotted)}")
            return {}
        item_cls = typing.cast(type, args[1])
        return {k: _build(item_cls, v, f"{dotted}.{k}.", problems, text) for k, v in value.items()}
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            problems.append(f"{dotted}: expected a table of strings{_line_of(text, dotted)}")
            return {}
        return dict(value)
    return _convert_scalar(tp, value, dotted, problems, text)


def _convert_union(args: tuple[Any, ...], value: Any, dotted: str, problems: list[str],
                   text: str, meta: Any) -> Any:
    for option in args:
        trial: list[str] = []
        result = _convert_type(option, value, dotted, trial, text, meta)
        if not trial:
            return result
    names = " or ".join(_type_name(a) for a in args if a is not type(None))
    problems.append(f"{dotted}: expected {names}, got {value!r}{_line_of(text, dotted)}")
    return value


def _convert_list(item_tp: Any, value: Any, dotted: str, problems: list[str], text: str) -> Any:
    if not isinstance(value, list):
        problems.append(f"{dotted}: expected a list{_line_of(text, dotted)}")
        return []
    return [_convert(item_tp, v, f"{dotted}[{i}]", problems, text, {}) for i, v in
            enumerate(value)]


def _convert_scalar(tp: Any, value: Any, dotted: str, problems: list[str], text: str) -> Any:
    if tp is type(None):
        if value is not None:
            problems.append(f"{dotted}: expected nothing")
        return None
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is Path and isinstance(value, str):
        return Path(value)
    ok = isinstance(value, tp) and not (tp is int and isinstance(value, bool))
    if not ok:
        problems.append(f"{dotted}: expected {_type_name(tp)}, got {type(value).__name__} "
                        f"{value!r}{_line_of(text, dotted)}")
    return value


def _check_bounds(value: Any, dotted: str, problems: list[str], text: str, meta: Any) -> None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        lo, hi = meta.get("min"), meta.get("max")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            problems.append(f"{dotted}: {value} is outside {lo}..{hi}{_line_of(text, dotted)}")
    if isinstance(value, str) and meta.get("pattern") and not re.match(meta["pattern"], value):
        problems.append(f"{dotted}: {value!r} is not in the form HH:MM{_line_of(text, dotted)}")


def _override(cls: type, value: Any, dotted: str, problems: list[str], text: str) -> Any:
    """A per-dataset partial table: validate each key as the top-level table would."""
    built = _build(cls, value, dotted + ".", problems, text)
    return {k: getattr(built, k) for k in (value if isinstance(value, dict) else {})
            if k in {f.name for f in fields(cls)}}


def _type_name(tp: Any) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true/false",
            Path: "a path string"}.get(tp, getattr(tp, "__name__", str(tp)))


# --------------------------------------------------------------------------- after building


def _resolve_paths(cfg: Config, base: Path) -> Config:
    def fix(p: Path) -> Path:
        p = p.expanduser()
        return p if p.is_absolute() else (base / p)

    paths = Paths(**{f.name: fix(getattr(cfg.paths, f.name)) for f in fields(Paths)})
    ace = replace(cfg.acestep, root=fix(cfg.acestep.root),
                  python=str(fix(Path(cfg.acestep.python))) if cfg.acestep.python else "")
    return replace(cfg, paths=paths, acestep=ace)


def _cross_checks(cfg: Config, problems: list[str], text: str) -> None:
    from acewatchd.cronexpr import CronError, parse_cron  # small, no heavy imports

    for name in cfg.datasets:
        if not DATASET_NAME.match(name):
            problems.append(f"datasets.{name}: dataset names are folder names: letters, digits,"
                            f" '_', '-', '.'{_line_of(text, name)}")
    schedules = [("schedule", cfg.schedule)] + [
        (f"datasets.{n}.schedule", cfg.schedule_for(n)) for n in cfg.datasets]
    for where, sched in schedules:
        try:
            parse_cron(sched.cron)
        except CronError as exc:
            problems.append(f"{where}.cron: {exc}{_line_of(text, 'cron')}")
        if sched.timezone:
            try:
                from zoneinfo import ZoneInfo

                ZoneInfo(sched.timezone)
            except Exception:
                problems.append(f"{where}.timezone: unknown time zone {sched.timezone!r}"
                                f"{_line_of(text, 'timezone')}")
    if cfg.watch.min_duration_seconds >= cfg.watch.max_duration_seconds:
        problems.append("watch.min_duration_seconds: must be below watch.max_duration_seconds")
    for ext in cfg.watch.extensions:
        if not re.match(r"^[a-z0-9]{1,8}$", ext):
            problems.append(f"watch.extensions: {ext!r} should be a lowercase extension without"
                            " the dot, like \"mp3\"")
