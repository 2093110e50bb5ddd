"""structlog setup: JSON lines to a rotating file, a readable console on a TTY.

stdlib loggers (acewatchd's own ``logging.getLogger(__name__)``, watchdog, apscheduler, httpx,
gradio_client) all go through the same ProcessorFormatter, so every line in
``logs/acewatchd.jsonl`` has the same shape whoever emitted it. Per-file context (dataset,
file, sha) is bound with ``structlog.contextvars.bound_contextvars``.
"""

from __future__ import annotations

import logging
import logging.handlers
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
        file_handler = logging.handlers.RotatingFileHandler(
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


def _formatter(renderer: structlog.types.Processor) -> logging.Formatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info, renderer],
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """structlog logger over the stdlib logger of the same name (use ``__name__``)."""
    return structlog.stdlib.get_logger(name)
