"""One source for defaults: the documented config.toml and the README's configuration table are
pinned to the dataclasses in acewatchd.config.schema.

- every key config.toml sets has exactly the dataclass default (as the loader reads it: an empty
  file at the same place is the defaults), and every key of every table is there;
- the commented ``[datasets.<name>]`` example is the one part that is not defaults (its values are
  user-specific by design): uncommented it must load, and it must show every dataset key;
- ranges ("4..256") and choices ("turbo | base | sft") written in config.toml's comments are the
  schema's bounds and choices;
- the README holds exactly the table ``python -m acewatchd.config.reference`` generates.
"""

from __future__ import annotations

import re
import tomllib
import typing
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest

from acewatchd.config import reference
from acewatchd.config.load import parse_config
from acewatchd.config.schema import Config, Dataset, Prompt, Train
from acewatchd.nightly.train.params import AUTO_EPOCHS, AUTO_EPOCHS_MORE

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "config.toml"
TEXT = DOC.read_text(encoding="utf-8")
EXAMPLE_START = "# [datasets."


def tables() -> list[tuple[str, type]]:
    """The top-level tables: (name, dataclass)."""
    hints = typing.get_type_hints(Config)
    return [(f.name, hints[f.name]) for f in fields(Config) if is_dataclass(hints[f.name])]


def example_text() -> str:
    """The commented [datasets.*] example at the end of config.toml, uncommented."""
    block = TEXT[TEXT.index(EXAMPLE_START):]
    lines = block.splitlines()
    assert all(line.startswith("# ") for line in lines), "the example must end config.toml"
    return "\n".join(line[2:] for line in lines) + "\n"


def test_every_documented_value_is_the_dataclass_default() -> None:
    raw = tomllib.loads(TEXT)
    documented = parse_config(TEXT, DOC)
    defaults = parse_config("", DOC)  # Config() with the same relative paths resolved
    wrong = [f"[{table}] {key}: config.toml {getattr(getattr(documented, table), key)!r}, "
             f"dataclass {getattr(getattr(defaults, table), key)!r}"
             for table, _ in tables() for key in raw.get(table, {})
             if getattr(getattr(documented, table), key) != getattr(getattr(defaults, table), key)]
    assert wrong == []
    assert "datasets" not in raw  # the dataset table is a commented example, checked below


def test_every_key_of_every_table_is_in_config_toml() -> None:
    raw = tomllib.loads(TEXT)
    missing = [f"[{table}] {f.name}" for table, cls in tables() for f in fields(cls)
               if f.name not in raw.get(table, {})]
    assert missing == []


def test_default_prompts_are_the_documented_ones() -> None:
    assert parse_config(TEXT, DOC).render.prompts == Config().render.prompts
    assert len(Config().render.prompts) == 3


def test_prompt_keys_are_listed_in_the_prompts_comment() -> None:
    comment = TEXT[TEXT.index("# Sample prompts"):TEXT.index("[[render.prompts]]")]
    missing = [f.name for f in fields(Prompt) if not re.search(rf"\b{f.name}\b", comment)]
    assert missing == []


def test_dataset_example_loads_and_shows_every_dataset_key() -> None:
    text = example_text()
    cfg = parse_config(TEXT + "\n" + text, DOC)  # raises ConfigError listing any bad value
    (name, table), = tomllib.loads(text)["datasets"].items()
    assert cfg.datasets[name] != Dataset()
    assert [f.name for f in fields(Dataset) if f.name not in table] == []


def _class_of(dotted: str) -> type | None:
    """The dataclass behind a TOML table name; None for arrays and unknown names."""
    parts = dotted.split(".")
    if parts[0] == "datasets":
        meta = {f.name: f.metadata for f in fields(Dataset)}
        return Dataset if len(parts) == 2 else meta[parts[2]].get("override")
    hints = typing.get_type_hints(Config)
    return hints[parts[0]] if len(parts) == 1 and parts[0] in hints else None


def _documented_hints() -> list[tuple[str, str, str]]:
    """(table, key, comment) for every `key = value  # comment` line, example included."""
    found, table = [], ""
    for line in (TEXT[:TEXT.index(EXAMPLE_START)] + example_text()).splitlines():
        if head := re.match(r"^\[+([^\]]+)\]+", line):
            table = head.group(1) if not line.startswith("[[") else ""
        elif (item := re.match(r"^(\w+)\s*=.*?#(.*)$", line)) and table:
            found.append((table, item.group(1), item.group(2)))
    return found


def _choices(tp: Any) -> set[str]:
    args = get_args(tp)
    if get_origin(tp) is Literal:
        return {str(a) for a in args}
    return set().union(*(_choices(a) for a in args)) if args else set()


@pytest.mark.parametrize(("table", "key", "comment"), [
    pytest.param(*hint, id=f"{hint[0]}.{hint[1]}") for hint in _documented_hints()])
def test_ranges_and_choices_in_comments_are_the_schema_ones(table: str, key: str,
                                                           comment: str) -> None:
    cls = _class_of(table)
    assert cls is not None, table
    f = {f.name: f for f in fields(cls)}[key]
    for lo, hi in re.findall(r"(\d+(?:\.\d+)?)\.\.(\d+(?:\.\d+)?)", comment):
        assert (float(lo), float(hi)) == (f.metadata["min"], f.metadata["max"]), comment
    for listed in re.findall(r"\w+(?: \| \w+)+", comment):
        assert set(listed.split(" | ")) == _choices(typing.get_type_hints(cls)[key]), comment


def test_readme_holds_exactly_the_generated_table() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    start, end = reference.table_span(readme)
    assert readme[start:end] == reference.markdown_table(), \
        "README is stale: python -m acewatchd.config.reference --write README.md"


def test_every_key_has_a_doc() -> None:
    undocumented = [f"{table} {f.name}" for table, cls in reference.tables() for f in fields(cls)
                    if not f.metadata.get("doc")]
    assert undocumented == []


def test_auto_epochs_doc_is_the_rule_training_uses() -> None:
    doc = {f.name: f for f in fields(Train)}["epochs"].metadata["doc"]
    low = 1
    for limit, epochs in AUTO_EPOCHS:
        assert f"{low}–{limit} songs {epochs}" in doc or f"{low}–{limit} {epochs}" in doc
        low = limit + 1
    assert f"{low}+ {AUTO_EPOCHS_MORE}" in doc
