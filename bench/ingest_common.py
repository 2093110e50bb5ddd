"""Shared helpers for the ingest benchmarks (bench/ingest_*.py): a temp home, the real daemon
as a subprocess, a corpus of distinct MP3s. Benchmarks, not tests: they print figures."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from acewatchd.demo.audiogen import SongTags, make_mp3, write_id3

DATASETS = """
[datasets.kim_kyungho]
tag = "kim kyung ho"
genre = "Korean power rock ballad"
[datasets.ambient]
tag = "calm ambient"
instrumental = true
[datasets.third]
tag = "third"
"""


def make_home(watch: str = "") -> Path:
    root = Path(tempfile.mkdtemp(prefix="acewatchd-bench-"))
    (root / "config.toml").write_text(watch + DATASETS, encoding="utf-8")
    return root


def corpus(dest: Path, n: int, seconds: float = 6.0) -> list[Path]:
    """n distinct MP3s: a few ffmpeg encodes, re-tagged so each has its own content hash."""
    bases = [make_mp3(dest / f"base{k}.mp3", seconds=seconds, freq=300 + 40 * k)
             for k in range(4)]
    out = []
    for i in range(n):
        path = dest / "songs" / f"곡 {i:04d}.mp3"
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bases[i % len(bases)], path)
        write_id3(path, SongTags(title=f"노래 {i}", artist="가수", year=str(1970 + i % 50),
                                 lyrics=f"가사 {i}" if i % 3 == 0 else ""))
        out.append(path)
    return out


def start_daemon(home: Path) -> subprocess.Popen[bytes]:
    """The real daemon; ACEWATCHD_BENCH_CODE=<checkout> runs another checkout's daemon (to
    compare two versions against the same floor, which always comes from this checkout)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = env.get("ACEWATCHD_BENCH_CODE") or str(Path(__file__).resolve().parents[1])
    # Started in the temp home: `python -m` puts the working directory first on sys.path, so
    # started from a checkout it would run that checkout's code whatever PYTHONPATH says.
    proc = subprocess.Popen([sys.executable, "-m", "acewatchd", "--config",
                             str(home / "config.toml"), "run"], cwd=home,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    wait_for(lambda: (home / "state" / "acewatchd.lock").exists() and
             (home / "state" / "acewatchd.lock").read_text().strip() == str(proc.pid), 30)
    return proc


def stop_daemon(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.01) -> float:
    """Poll until true; returns the time.monotonic() at which it was first seen true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"benchmark condition not met within {timeout}s")
        time.sleep(interval)
    return time.monotonic()


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 0
    return f"{platform.system()} {platform.release()}, {cpu}, {cores} cores, Python " \
           f"{platform.python_version()}"
