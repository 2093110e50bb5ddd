"""The daemon's side of the analysis: write the job, run the child (its own process group,
a time limit), read and check its report. Imports nothing heavy: numpy only ever loads in
the child."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from acewatchd.analysis.schema import AnalysisJob, AnalysisReport, SchemaError, parse_report
from acewatchd.errors import AcewatchdError
from acewatchd.util.files import TEMP_PREFIX, atomic_write_text
from acewatchd.util.process import ChildStopped, registered, wait_or_stop

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 900.0  # seconds; a night's grid of a few dozen clips takes well under one
OUTPUT_TAIL = 400  # at most this many characters of the child's last line in an error


class AnalysisFailed(AcewatchdError):
    """The audio analysis could not produce a report; the text says why."""


def child_command(job: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "acewatchd.analysis.child", str(job), str(out)]


def _wait(proc: subprocess.Popen[str], timeout: float, stop: threading.Event | None) -> None:
    try:
        wait_or_stop(proc, stop, "audio analysis", timeout)
    except ChildStopped as exc:
        raise AnalysisFailed(str(exc)) from None


def run_analysis(job: AnalysisJob, out: Path, *, timeout: float = DEFAULT_TIMEOUT,
                 stop: threading.Event | None = None,
                 registry: Path | None = None) -> AnalysisReport:
    """Analyse ``job`` into ``out`` (analysis.json) and return the checked report; raises
    AnalysisFailed naming the cause (the child's own last words when it failed)."""
    out = Path(out)
    job_file = out.parent / f"{TEMP_PREFIX}analysis-job-{os.getpid()}-{threading.get_ident()}.json"
    atomic_write_text(job_file, json.dumps(job, ensure_ascii=False))
    try:
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as log:
            proc = subprocess.Popen(child_command(job_file, out), stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT, text=True,
                                    start_new_session=True)
            with registered(proc, registry):
                _wait(proc, timeout, stop)
            log.seek(0)
            said = log.read().strip()
    finally:
        job_file.unlink(missing_ok=True)
    if proc.returncode != 0:
        # the last line says it (an error's text, a traceback's exception); the rest is logged
        logger.warning("audio analysis child (exit %s) said:\n%s", proc.returncode, said)
        last = said.splitlines()[-1][-OUTPUT_TAIL:] if said else "no output"
        raise AnalysisFailed(f"audio analysis failed (exit {proc.returncode}): {last}")
    try:
        report = parse_report(json.loads(out.read_text(encoding="utf-8")), where=str(out))
    except (OSError, ValueError) as exc:
        where = "" if isinstance(exc, SchemaError) else f"{out}: "
        raise AnalysisFailed(f"audio analysis wrote no usable report: {where}{exc}") from None
    logger.info("analysis of %d clip(s) in %.1f s: %s", len(job["clips"]), report["seconds"],
                report["advice"])
    return report
