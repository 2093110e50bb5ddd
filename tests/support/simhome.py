"""A home whose config points at a running simulator (not managed: the test owns it), and the
CLI run against it as a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from acewatchd.simulator.harness import SimHandle


def sim_config(sim: SimHandle, *, epochs: int = 100, extra: str = "") -> str:
    """Quick ingest, ``epochs`` epochs saved every 50, a schedule that never fires during a
    test, and one 10-second render prompt without a base clip; ``extra`` is appended."""
    return (
        f'[acestep]\nroot = "{sim.root}"\nurl = "{sim.url}"\npython = "{sys.executable}"\n'
        '[watch]\nsettle_seconds = 0.2\npoll_seconds = 0.05\nsettle_polls = 2\n'
        'min_duration_seconds = 2.0\n'
        f'[train]\nepochs = {epochs}\nsave_every = 50\n'
        '[schedule]\ncron = "0 1 * * *"\ntimezone = "UTC"\n'
        '[render]\ncompare_base = false\n'
        '[[render.prompts]]\nname = "one"\ncaption = "{tag}, test"\nduration = 10.0\n'
        + extra)


def cli(config: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """``acewatchd --config <config> <args>`` in the config's folder."""
    return subprocess.run([sys.executable, "-m", "acewatchd", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=config.parent)
