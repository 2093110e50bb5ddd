"""The JSON-lines log: one line per record, rendered once, rotated at its size limit."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from acewatchd.log import LOG_FILE, JsonLinesHandler, setup_logging


@pytest.fixture
def root_restored() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def _file_handler() -> JsonLinesHandler:
    return next(h for h in logging.getLogger().handlers if isinstance(h, JsonLinesHandler))


def test_each_record_is_one_json_line_with_its_bound_context(tmp_path: Path,
                                                             root_restored: None) -> None:
    setup_logging(tmp_path, "info", console=False)
    log = logging.getLogger("acewatchd.test")
    with structlog.contextvars.bound_contextvars(dataset="김경호", file="곡.mp3"):
        log.info("stubbed", extra={"duration": 6.5})
    log.debug("below the level")
    lines = (tmp_path / LOG_FILE).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert (entry["event"], entry["dataset"], entry["file"], entry["duration"]) == (
        "stubbed", "김경호", "곡.mp3", 6.5)
    assert entry["level"] == "info" and entry["logger"] == "acewatchd.test"


def test_a_record_is_rendered_once(tmp_path: Path, root_restored: None,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    setup_logging(tmp_path, "info", console=False, max_bytes=1_000_000)
    handler = _file_handler()
    rendered: list[str] = []
    real = handler.format

    def counting(record: logging.LogRecord) -> str:
        rendered.append(record.getMessage())
        return real(record)

    monkeypatch.setattr(handler, "format", counting)
    for i in range(5):
        logging.getLogger("acewatchd.test").info("line %d", i)
    assert rendered == [f"line {i}" for i in range(5)]


def test_the_file_rolls_over_at_its_size_limit_and_keeps_its_backups(
        tmp_path: Path, root_restored: None) -> None:
    setup_logging(tmp_path, "info", console=False, max_bytes=2_000, backups=2)
    log = logging.getLogger("acewatchd.test")
    for i in range(100):
        log.info("line %03d %s", i, "x" * 40)
    current = tmp_path / LOG_FILE
    backups = sorted(tmp_path.glob(f"{LOG_FILE}.*"))
    assert [p.name for p in backups] == [f"{LOG_FILE}.1", f"{LOG_FILE}.2"]
    for path in (current, *backups):
        assert path.stat().st_size <= 2_000
        assert all(json.loads(line)["event"].startswith("line ")
                   for line in path.read_text(encoding="utf-8").splitlines())
    # Nothing in between is lost: the newest lines run on from .1 into the current file.
    numbers = [int(json.loads(line)["event"].split()[1]) for path in (backups[0], current)
               for line in path.read_text(encoding="utf-8").splitlines()]
    assert numbers == list(range(numbers[0], 100))


def test_another_writer_s_lines_count_towards_the_limit(tmp_path: Path,
                                                       root_restored: None) -> None:
    """A CLI command appends to the same file: the size is the file's, not our own count."""
    setup_logging(tmp_path, "info", console=False, max_bytes=2_000, backups=1)
    log = logging.getLogger("acewatchd.test")
    log.info("first")
    with open(tmp_path / LOG_FILE, "a", encoding="utf-8") as other:
        other.write(json.dumps({"event": "from another process", "pad": "y" * 1_990}) + "\n")
    log.info("second")
    assert json.loads((tmp_path / LOG_FILE).read_text(encoding="utf-8"))["event"] == "second"
    assert "from another process" in (tmp_path / f"{LOG_FILE}.1").read_text(encoding="utf-8")
