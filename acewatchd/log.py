"""structlog setup: JSON lines to a rotating file, a readable console on a TTY.

stdlib loggers (acewatchd's own ``logging.getLogger(__name__)``, watchdog, apscheduler, httpx,
gradio_client) all go through the same ProcessorFormatter, so every line in
``logs/acewatchd.jsonl`` has the same shape whoever emitted it. Per-file context (dataset,
file, sha) is bound with ``structlog.contextvars.bound_contextvars``.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path

import structlog

LOG_FILE = "acewatchd.jsonl"
_NOISY = {"httpx": logging.WARNING, "httpcore": logging.WARNING, "watchdog": logging.INFO,
          "apscheduler": logging.INFO, "gradio_client": logging.WARNING,
          "matplotlib": logging.WARNING, "PIL": logging.WARNING, "urllib3": logging.WARNING}

_SHARED: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.stdlib.ExtraAdder(),
]


def setup_logging(logs_dir: Path | None, level: str = "info", *, console: bool | None = None,
                  max_bytes: int = 10_000_000, backups: int = 5) -> None:
    """Configure once per process; calling again replaces the handlers (config reload)."""
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level.upper())
    if logs_dir is not None:
        logs_dir.mkdir(parents=True, exist_ok=True)
        file_handler = JsonLinesHandler(
            logs_dir / LOG_FILE, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        file_handler.setFormatter(_formatter(structlog.processors.JSONRenderer(
            ensure_ascii=False)))
        root.addHandler(file_handler)
    if console is None:
        console = sys.stderr.isatty()
    if console:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(_formatter(structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())))
        root.addHandler(stream)
    for name, floor in _NOISY.items():
        logging.getLogger(name).setLevel(max(floor, root.level))


class JsonLinesHandler(logging.handlers.RotatingFileHandler):
    """A RotatingFileHandler that renders each record once. The stock one renders it a
    second time only to measure it, and stats the file twice per record (Python 3.11's
    ``shouldRollover``): in a 1,000-song drop that was a tenth of a millisecond per song's
    "stubbed" line, half the cost of its logging."""

    def shouldRollover(self, record: logging.LogRecord) -> bool:  # noqa: N802 - stdlib's name
        return False  # decided in emit, on the line rendered once

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
            if self._full_after(len(line)):
                self.doRollover()
            if self.stream is None:
                self.stream = self._open()
            self.stream.write(line)
            self.flush()
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - logging's own rule: report, never raise
            self.handleError(record)

    def _full_after(self, size: int) -> bool:
        if self.maxBytes <= 0:
            return False
        if self.stream is None:
            self.stream = self._open()
        # The file's real end, not a count of our own: CLI commands append to it as well.
        self.stream.seek(0, os.SEEK_END)
        # Never roll anything but a regular file (a log pointed at /dev/null: bpo-45401).
        return self.stream.tell() + size >= self.maxBytes and os.path.isfile(self.baseFilename)


def _formatter(renderer: structlog.types.Processor) -> logging.Formatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer],
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """structlog logger over the stdlib logger of the same name (use ``__name__``)."""
    return structlog.stdlib.get_logger(name)
