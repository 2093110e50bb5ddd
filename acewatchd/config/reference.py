"""The README's configuration table, generated from the schema's field metadata.

``python -m acewatchd.config.reference`` prints it (``--write README.md`` replaces the table in
that file). tests/config/test_defaults.py checks that the README holds exactly this table, so a
new key, a changed default or a changed bound cannot leave the documentation behind.
"""

from __future__ import annotations

import argparse
import json
import re
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import MISSING, Field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from acewatchd.config.schema import Config

HEADER = "| section | key | default | allowed | meaning |\n|---|---|---|---|---|\n"
_SCALARS = {bool: "`true` / `false`", int: "integer", float: "number", str: "string",
            Path: "path"}
_PLURALS = {int: "integers", float: "numbers", str: "strings"}


def tables() -> Iterator[tuple[str, type]]:
    """(TOML table name, dataclass) in the order config.toml has them."""
    hints = typing.get_type_hints(Config)
    for f in fields(Config):
        if f.metadata.get("internal"):
            continue
        tp = hints[f.name]
        if is_dataclass(tp):
            yield f"[{f.name}]", typing.cast(type, tp)
            yield from _list_tables(f.name, typing.cast(type, tp))
        else:  # datasets: dict[str, Dataset], one table per drop folder
            yield f"[{f.name}.<name>]", get_args(tp)[1]


def _list_tables(name: str, cls: type) -> Iterator[tuple[str, type]]:
    """Arrays of tables inside a table ([[render.prompts]]) get rows of their own."""
    for key, tp in typing.get_type_hints(cls).items():
        if get_origin(tp) is list and is_dataclass(get_args(tp)[0]):
            yield f"[[{name}.{key}]]", get_args(tp)[0]


def markdown_table() -> str:
    """The whole table: a row per key; the table name only on its first row."""
    rows = [HEADER]
    for table, cls in tables():
        hints = typing.get_type_hints(cls)
        for i, f in enumerate(fields(cls)):
            rows.append(_row(table if i == 0 else "", table, f, hints[f.name]))
    return "".join(rows)


def _row(shown: str, table: str, f: Field[Any], tp: Any) -> str:
    if "override" in f.metadata:  # [datasets.<name>.train]: a partial table, no default
        key, default = f"`[{table.strip('[]')}.{f.name}]`", ""
    else:
        key, default = f"`{f.name}`", _default(f)
    cells = [f"`{shown}`" if shown else "", key, default, allowed(tp, f.metadata),
             f.metadata["doc"]]
    return "|" + "|".join(f" {c.replace('|', chr(92) + '|')} " if c else " " for c in cells) \
        + "|\n"


def _default(f: Field[Any]) -> str:
    factory: Any = f.default_factory
    value = f.default if f.default is not MISSING else factory()
    if value is None:
        return "unset"
    if isinstance(value, list) and value and is_dataclass(value[0]):
        names = ", ".join(f"`{getattr(v, 'name', '')}`" for v in value)
        return f"{len(value)}: {names}"
    return f"`{toml_value(value)}`"


def toml_value(value: Any) -> str:
    """How the value is written in config.toml."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, Path)):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = [f"{_toml_key(k)} = {toml_value(v)}" for k, v in value.items()]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    return repr(value)


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def allowed(tp: Any, meta: Mapping[str, Any]) -> str:
    """What config.load accepts for a key of type ``tp``: type, choices, bounds, form."""
    origin, args = get_origin(tp), get_args(tp)
    if origin in (typing.Union, types.UnionType):  # TOML cannot write None: leave it out
        return " or ".join(allowed(a, meta) for a in args if a is not type(None))
    if origin is Literal:
        return " / ".join(f"`{toml_value(a)}`" for a in args)
    if origin is list:
        item = args[0]
        return "tables" if is_dataclass(item) else f"list of {_PLURALS[item]}"
    if origin is dict:
        return "table" if "override" in meta else "table of strings"
    if meta.get("form"):
        return f"`{meta['form']}`"
    return _SCALARS[tp] + _range(meta.get("min"), meta.get("max"))


def _range(lo: float | None, hi: float | None) -> str:
    if lo is None:
        return "" if hi is None else f" ≤ {_num(hi)}"
    return f" ≥ {_num(lo)}" if hi is None else f" {_num(lo)}–{_num(hi)}"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def table_span(text: str) -> tuple[int, int]:
    """Where the generated table sits in ``text`` (the README): its header to its last row."""
    start = text.index("| section | key |")
    end = start
    for line in text[start:].splitlines(keepends=True):
        if not line.startswith("|"):
            break
        end += len(line)
    return start, end


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acewatchd.config.reference",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", metavar="README", type=Path,
                        help="replace the table in this file instead of printing it")
    args = parser.parse_args(argv)
    table = markdown_table()
    if args.write is None:
        print(table, end="")
        return 0
    from acewatchd.util.files import atomic_write_text

    text = args.write.read_text(encoding="utf-8")
    start, end = table_span(text)
    atomic_write_text(args.write, text[:start] + table + text[end:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
