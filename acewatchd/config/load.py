"""Find, parse and validate config.toml into the dataclasses of ``schema``.

Loading walks the TOML against those classes: unknown keys, wrong types and out-of-range values
are collected with their dotted key (and line, where the TOML text lets us find it) and reported
all at once as one ``ConfigError``. Bounds come from the fields' metadata in ``schema``; the
cross checks here are the ones no single field can make (cron, time zone, min < max).
"""

from __future__ import annotations

import math
import os
import re
import tomllib
import types
import typing
import unicodedata
from dataclasses import fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from acewatchd.config.checks import cross_checks
from acewatchd.config.schema import Config, Paths
from acewatchd.errors import ConfigError

ENV_VAR = "ACEWATCHD_CONFIG"
_INT64_MAX = 2**63 - 1  # SQLite and the OS take no bigger integer


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
        raise ConfigError(str(cfg_path),
                          ["file not found (use --config or $ACEWATCHD_CONFIG)"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(cfg_path), [f"cannot read: {exc}"]) from exc
    return parse_config(text, cfg_path)


def parse_config(text: str, cfg_path: Path) -> Config:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(cfg_path), [f"TOML syntax error: {exc}"]) from exc
    problems: list[str] = []
    cfg = _build(Config, raw, "", problems, text)
    if not problems:
        cfg = _nfc_datasets(_resolve_paths(cfg, cfg_path.parent), problems)
        cross_checks(cfg, problems, lambda key: line_of(text, key))
    if problems:
        raise ConfigError(str(cfg_path), problems)
    built: Config = replace(cfg, source=cfg_path)
    return built


# --------------------------------------------------------------------------- building


def line_of(text: str, dotted: str) -> str:
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
        problems.append(f"{where}: expected a table{line_of(text, where)}")
        return cls()
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in fields(cls) if not f.metadata.get("internal")}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        dotted = f"{prefix}{key}"
        if key not in known:
            problems.append(f"{dotted}: unknown key{line_of(text, dotted)}")
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
                            f"{line_of(text, dotted)}")
        return value
    if origin is list:
        return _convert_list(args[0], value, dotted, problems, text)
    if origin is dict and is_dataclass(args[1]):
        if not isinstance(value, dict):
            problems.append(f"{dotted}: expected a table{line_of(text, dotted)}")
            return {}
        item_cls = typing.cast(type, args[1])
        return {k: _build(item_cls, v, f"{dotted}.{k}.", problems, text) for k, v in value.items()}
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            problems.append(f"{dotted}: expected a table of strings{line_of(text, dotted)}")
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
    problems.append(f"{dotted}: expected {names}, got {value!r}{line_of(text, dotted)}")
    return value


def _convert_list(item_tp: Any, value: Any, dotted: str, problems: list[str], text: str) -> Any:
    if not isinstance(value, list):
        problems.append(f"{dotted}: expected a list{line_of(text, dotted)}")
        return []
    return [_convert(item_tp, v, f"{dotted}[{i}]", problems, text, {}) for i, v in
            enumerate(value)]


def _convert_scalar(tp: Any, value: Any, dotted: str, problems: list[str], text: str) -> Any:
    if tp is type(None):
        if value is not None:
            problems.append(f"{dotted}: expected nothing")
        return None
    if isinstance(value, float) and not math.isfinite(value):
        problems.append(f"{dotted}: must be a finite number, got {value}{line_of(text, dotted)}")
        return value
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _INT64_MAX:
        problems.append(f"{dotted}: {value} is too large{line_of(text, dotted)}")
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is Path and isinstance(value, str):
        return Path(value)
    ok = isinstance(value, tp) and not (tp is int and isinstance(value, bool))
    if not ok:
        problems.append(f"{dotted}: expected {_type_name(tp)}, got {type(value).__name__} "
                        f"{value!r}{line_of(text, dotted)}")
    return value


def _check_bounds(value: Any, dotted: str, problems: list[str], text: str, meta: Any) -> None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        lo, hi = meta.get("min"), meta.get("max")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            problems.append(f"{dotted}: {value} is outside {lo}..{hi}{line_of(text, dotted)}")
    if isinstance(value, str) and meta.get("pattern") and not re.match(meta["pattern"], value):
        problems.append(f"{dotted}: {value!r} is not in the form HH:MM{line_of(text, dotted)}")


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


def _nfc_datasets(cfg: Config, problems: list[str]) -> Config:
    """Dataset tables keyed by the NFC form of their name, the form the ledger and the daemon
    use: an editor may save ``[datasets."김경호"]`` decomposed (NFD), as macOS names files."""
    by_nfc: dict[str, Any] = {}
    for name, table in cfg.datasets.items():
        key = unicodedata.normalize("NFC", name)
        if key in by_nfc:
            problems.append(f"datasets.{key}: named twice (the two spellings are the same "
                            "name in different Unicode forms)")
        by_nfc[key] = table
    return replace(cfg, datasets=by_nfc)
