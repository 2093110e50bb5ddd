"""A small real disk (a tmpfs) to fill up, for the tests of what happens when space runs out."""

from __future__ import annotations

import errno
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_disk(mnt: Path, size: str = "4m") -> Iterator[Path]:
    """Mount a tmpfs of ``size`` at ``mnt`` (created) and unmount it afterwards; the test is
    skipped where mounting is not permitted (no root, or a container without CAP_SYS_ADMIN)."""
    mnt.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                              capture_output=True, text=True, check=False, timeout=30)
    except FileNotFoundError:
        pytest.skip("no mount command here to make a small tmpfs")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root or CAP_SYS_ADMIN): "
                    f"{done.stderr.strip()}")
    try:
        yield mnt
    finally:
        # Whatever used it is stopped by now; a lazy unmount only as the last resort.
        if subprocess.run(["umount", str(mnt)], check=False, timeout=30).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], check=False, timeout=30)


def fill(path: Path) -> None:
    """Append to ``path`` until its disk is full (big blocks, then small ones for the rest)."""
    with open(path, "ab", buffering=0) as fh:
        for block in (b"\0" * 65536, b"\0" * 512):
            try:
                while True:
                    fh.write(block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
