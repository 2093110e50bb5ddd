"""Live config reload for the daemon: a good edit takes effect, a bad one is reported once.

Editors save by writing a temp file and renaming it over config.toml, so the daemon watches the
parent folder (watcher.py) and also compares the file's (size, mtime_ns, inode) every couple of
seconds as a fallback. Loading waits a short quiet period so a half-written save is not read.
A bad edit (syntax error, unknown key, wrong type, an emptied file) keeps the last good config,
logs ONE error naming the key/line, and stores it in the ledger kv ``config.error`` for
`acewatchd status`; fixing the file clears it.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime

from acewatchd.config.load import load_config
from acewatchd.config.schema import Config
from acewatchd.errors import ConfigError
from acewatchd.ledger.db import Ledger
from acewatchd.ledger.events import KV_CONFIG_ERROR, KV_CONFIG_LOADED
from acewatchd.util.clock import Clock

logger = logging.getLogger(__name__)

_QUIET_SECONDS = 0.3


class ConfigReloader:
    def __init__(self, cfg: Config, ledger: Ledger, clock: Clock) -> None:
        self.good = cfg
        self.ledger = ledger
        self.clock = clock
        self.force = False                   # set by SIGHUP
        self._dirty_at: float | None = None
        self._sig = self._signature()
        self._error = ""
        ledger.set_kv(KV_CONFIG_ERROR, "")
        ledger.set_kv(KV_CONFIG_LOADED, _now_iso())

    def _signature(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.good.source) if self.good.source else None
        except OSError:
            return None
        return (st.st_size, st.st_mtime_ns, st.st_ino) if st else None

    def touched(self) -> None:
        self._dirty_at = self.clock.monotonic()

    def poll(self) -> None:
        """Fallback for missed events: notice a changed signature."""
        sig = self._signature()
        if sig != self._sig:
            self._sig = sig
            self.touched()

    def maybe_reload(self) -> Config | None:
        """The new good config if one was just loaded, else None."""
        if self.force:
            self.force, self._dirty_at = False, self.clock.monotonic() - _QUIET_SECONDS
        if self._dirty_at is None or self.clock.monotonic() - self._dirty_at < _QUIET_SECONDS:
            return None
        self._dirty_at = None
        self._sig = self._signature()
        path = self.good.source
        if path is None or not path.exists():
            return None  # mid-rename; the next event or poll brings it back
        try:
            cfg = _load_nonempty(path)
        except ConfigError as exc:
            self._report(exc)
            return None
        return self._accept(cfg)

    def _accept(self, cfg: Config) -> Config | None:
        if self._error:
            logger.info("config valid again", extra={"path": str(cfg.source)})
            self.ledger.set_kv(KV_CONFIG_ERROR, "")
            self._error = ""
        self.ledger.set_kv(KV_CONFIG_LOADED, _now_iso())
        if cfg == self.good:
            return None
        self.good = cfg
        logger.info("config reloaded", extra={"path": str(cfg.source)})
        return cfg

    def _report(self, exc: ConfigError) -> None:
        message = str(exc)
        if message == self._error:
            return  # the same broken file saved again: one report is enough
        self._error = message
        logger.error("config invalid; keeping the last good configuration",
                     extra={"path": exc.path, "problems": exc.problems})
        self.ledger.record_event("error", f"config invalid, last good config kept: {message}",
                                 subject="config.toml")
        self.ledger.set_kv(KV_CONFIG_ERROR, message)


def _load_nonempty(path: os.PathLike[str]) -> Config:
    """An emptied config.toml would silently mean "all defaults, no datasets": refuse it."""
    cfg = load_config(path)
    try:
        with open(path, encoding="utf-8") as fh:
            empty = not fh.read().strip()
    except OSError:
        empty = False
    if empty:
        raise ConfigError(str(path), [("the file is empty (an empty edit would reset every "
                                       "setting to its default)")])
    return cfg


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
