"""The in-process Daemon the ingest tests turn step by step (real watchdog, files, SQLite)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from acewatchd.config.load import load_config
from acewatchd.daemon.daemon import Daemon
from tests.support.home import Home


@pytest.fixture
def daemon(home: Home) -> Iterator[Daemon]:
    d = Daemon(load_config(home.config))
    d.open()
    try:
        yield d
    finally:
        d.close()
