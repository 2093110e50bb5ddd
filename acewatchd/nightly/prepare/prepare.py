"""stage -> dataset.json -> preprocess (only what changed) -> sanitize -> manifest, per dataset.

``prepare_dataset`` is what the nightly job and ``acewatchd prepare <dataset>`` run. Each step is
idempotent and keyed by content: a second call with nothing changed starts no child process for
preprocessing. Sanitizing runs in a child (``python -m acewatchd sanitize``) so this process
never imports torch. A sample whose tensor has non-finite values where its mask is on is
re-preprocessed in fp32 once; if that does not help it is excluded: moved to
``tensors/excluded/`` and left out of ``manifest.json``, which lists exactly the good tensors.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acewatchd.acestep import dataset_json, layout
from acewatchd.acestep import preprocess as pp
from acewatchd.acestep.checkout import require_training_v2
from acewatchd.config.schema import DATASET_NAME, Config
from acewatchd.errors import AcewatchdError
from acewatchd.ledger import samples as ledger_samples
from acewatchd.ledger.db import Ledger
from acewatchd.ledger.samples import SampleRow
from acewatchd.nightly.prepare.dataset import build as build_dataset
from acewatchd.nightly.prepare.staging import SourceSample, collect_samples, stage
from acewatchd.util.files import TEMP_PREFIX, atomic_write_text
from acewatchd.util.locks import dataset_lock
from acewatchd.util.process import REGISTRY, registered, wait_or_stop

logger = logging.getLogger(__name__)

PREPARE_LOCK_NAME = ".acewatchd.lock"

_TENSOR_NAME = re.compile(r"^([0-9a-f]{16})\.pt$")
GOOD = ("clean", "repaired")


@dataclass(frozen=True)
class PrepareResult:
    dataset: str
    tensor_dir: Path
    tensor_dir_rel: str  # relative to the ACE-Step root, as its training endpoint wants it
    content_hash: str
    samples_ok: int
    preprocessed: int  # samples preprocessed by this call
    excluded: list[str]  # drop relpaths left out of training (excluded or failed)
    report_path: Path


def dataset_content_hash(cfg: Config, ledger: Ledger, dataset: str) -> str:
    """What a LoRA is trained from: audio hashes plus caption and lyrics texts (no torch, no
    preprocessing; cheap enough to call every time the schedule looks)."""
    samples, _ = collect_samples(cfg, ledger, dataset)
    return _content_hash(samples)


def _content_hash(samples: list[SourceSample]) -> str:
    digest = hashlib.sha256()
    for s in sorted(samples, key=lambda s: s.sha256):
        digest.update(f"{s.sha256}\0{s.caption}\0{s.lyrics}\n".encode())
    return digest.hexdigest()


def tensor_dir_for(cfg: Config, dataset: str) -> Path:
    return layout.tensor_dir(cfg.acestep.root, dataset)


def prepare_dataset(cfg: Config, ledger: Ledger, dataset: str,
                    stop: threading.Event | None = None) -> PrepareResult:
    if not DATASET_NAME.match(dataset):  # its safe name becomes a folder under ACE-Step's root
        raise AcewatchdError(f"{dataset!r} is not a dataset name (the name of a folder in "
                             "drop/: no '/', no leading '.', no control characters)")
    # Before any work: an ACE-Step without training_v2 (S) cannot preprocess at all.
    require_training_v2(cfg.acestep.root)
    busy = (f"dataset {dataset!r} is being prepared by another acewatchd process; try again "
            "when it has finished")
    with dataset_lock(layout.dataset_dir(cfg.acestep.root, dataset), PREPARE_LOCK_NAME, busy):
        return _Prepare(cfg, ledger, dataset, stop).run()


class _Prepare:
    """One prepare run; attributes carry what the steps share."""

    def __init__(self, cfg: Config, ledger: Ledger, dataset: str,
                 stop: threading.Event | None) -> None:
        self.cfg, self.ledger, self.dataset, self.stop = cfg, ledger, dataset, stop
        self.root = layout.dataset_dir(cfg.acestep.root, dataset)
        self.tensors = tensor_dir_for(cfg, dataset)
        self.preprocessed: set[str] = set()
        self.retried: set[str] = set()

    def run(self) -> PrepareResult:
        samples = self._samples()
        pp.check_python(self.cfg)
        staged = stage(self.cfg, self.dataset, samples)
        doc = build_dataset(self.dataset, self.cfg.dataset(self.dataset), samples, staged)
        dataset_json.write(self.root / "dataset.json", doc)
        self.meta = doc["metadata"]
        self.by_sha = {s.sha256: s for s in samples}
        self.entries = {s.sha256: e for s, e in zip(samples, doc["samples"], strict=True)}
        self.hashes = {sha: pp.inputs_hash(e, self.cfg) for sha, e in self.entries.items()}
        self._tidy()
        self._preprocess(self._stale())
        checks = self._sanitize_and_retry()
        return self._finish(checks)

    def _samples(self) -> list[SourceSample]:
        samples, problems = collect_samples(self.cfg, self.ledger, self.dataset)
        for problem in problems:
            logger.warning("skipped: %s", problem, extra={"dataset": self.dataset})
            self.ledger.record_event("warning", f"not staged: {problem}", self.dataset)
        if not samples:
            raise AcewatchdError(f"dataset {self.dataset!r} has no valid songs with caption and "
                                 f"lyrics files in {self.cfg.paths.drop / self.dataset}")
        return samples

    def _tidy(self) -> None:
        """Leftover *.tmp.pt and work folders go; so do tensors of songs that left drop/."""
        self.tensors.mkdir(parents=True, exist_ok=True)
        pp.clean_leftovers(self.tensors)
        stems = {s[:16] for s in self.by_sha}
        for folder in (self.tensors, self.tensors / "excluded"):
            for path in folder.glob("*.pt") if folder.is_dir() else []:
                match = _TENSOR_NAME.match(path.name)
                if match and match.group(1) not in stems:
                    path.unlink()
                    logger.info("removed tensor of a song no longer in the dataset: %s", path)
        ledger_samples.forget_missing(self.ledger, self.dataset, set(self.by_sha))

    def _stale(self) -> dict[str, str]:
        """sha -> precision to preprocess it with, for samples whose tensor is missing/stale."""
        rows = ledger_samples.sample_rows(self.ledger, self.dataset)
        configured = self.cfg.preprocess.precision
        todo: dict[str, str] = {}
        for sha, inputs in self.hashes.items():
            row = rows.get(sha)
            if row is None or row.inputs_hash != inputs:
                todo[sha] = configured
            elif row.status == "failed" or (
                    row.status == "preprocessed" and not self._tensor(sha).is_file()):
                todo[sha] = row.precision or configured
        return todo

    def _tensor(self, sha: str) -> Path:
        return self.tensors / f"{sha[:16]}.pt"

    def _preprocess(self, todo: dict[str, str]) -> None:
        for precision in sorted(set(todo.values())):
            shas = sorted(sha for sha, p in todo.items() if p == precision)
            for sha in shas:
                self._tensor(sha).unlink(missing_ok=True)  # pass 1 skips existing .pt files
            logger.info("preprocessing %d sample(s) of %s in %s", len(shas), self.dataset,
                        precision)
            outcome = pp.run(self.cfg, self.tensors, self.meta,
                             [self.entries[sha] for sha in shas], precision, self.stop)
            for sha in shas:
                self._record(sha, precision, outcome)

    def _record(self, sha: str, precision: str, outcome: pp.Outcome) -> None:
        reason = outcome.failed.get(sha[:16])
        status = "failed" if reason else "preprocessed"
        if not reason:
            self.preprocessed.add(sha)
        else:
            self.ledger.record_event("error", f"preprocessing failed: {reason}", self.dataset,
                                     self.by_sha[sha].relpath)
        ledger_samples.set_sample(self.ledger, self.dataset, sha, status=status,
                                  inputs=self.hashes[sha], precision=precision, reason=reason)

    def _sanitize_and_retry(self) -> dict[str, dict[str, Any]]:
        checks = self._sanitize()
        retry = {sha: "fp32" for sha, c in checks.items()
                 if c["status"] == "broken" and self._precision(sha) != "fp32"}
        if retry:
            logger.warning("non-finite content in %d tensor(s) of %s: re-preprocessing in fp32",
                           len(retry), self.dataset)
            self._preprocess(retry)
            self.retried.update(retry)
            checks.update({sha: c for sha, c in self._sanitize().items() if sha in retry})
        return checks

    def _precision(self, sha: str) -> str:
        row = ledger_samples.sample_rows(self.ledger, self.dataset).get(sha)
        return str((row.precision if row else None) or self.cfg.preprocess.precision)

    def _sanitize(self) -> dict[str, dict[str, Any]]:
        """Run the sanitizer child over the tensor folder; sha -> its file's check result."""
        report = self.root / f"{TEMP_PREFIX}sanitize.json"
        cmd = [sys.executable, "-m", "acewatchd", "sanitize", str(self.tensors), "--report",
               str(report)]
        # Its own process group, ended with the daemon (torch only ever loads in this child).
        with tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as out:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, text=True, start_new_session=True)
            with registered(proc, self.cfg.paths.state / REGISTRY):
                wait_or_stop(proc, self.stop, "sanitizing")
            out.seek(0)
            output = out.read()
        if proc.returncode not in (0, 1) or not report.is_file():
            raise AcewatchdError(f"sanitizer failed for {self.tensors} (exit {proc.returncode}):"
                                 f" {output.strip()[-300:]}")
        files = json.loads(report.read_text(encoding="utf-8"))["files"]
        report.unlink()
        by_stem = {sha[:16]: sha for sha in self.by_sha}
        return {by_stem[f["file"][:16]]: f for f in files
                if _TENSOR_NAME.match(f["file"]) and f["file"][:16] in by_stem}

    def _finish(self, checks: dict[str, dict[str, Any]]) -> PrepareResult:
        rows = ledger_samples.sample_rows(self.ledger, self.dataset)
        entries = [self._judge(sha, rows.get(sha), checks.get(sha)) for sha in
                   sorted(self.by_sha)]
        good = [self._tensor(e["sha256"]) for e in entries if e["status"] in (*GOOD,
                                                                             "re-preprocessed")]
        pp.write_manifest(self.tensors, self.meta, good)
        report_path = self._write_report(entries)
        excluded = [e["source"] for e in entries if e["status"] in ("excluded", "failed")]
        return PrepareResult(self.dataset, self.tensors,
                             f"./{self.tensors.relative_to(self.cfg.acestep.root).as_posix()}",
                             _content_hash(list(self.by_sha.values())), len(good),
                             len(self.preprocessed), excluded, report_path)

    def _judge(self, sha: str, row: SampleRow | None, check: dict[str, Any] | None) -> dict[str,
                                                                                        Any]:
        """The report line for one sample; excludes it (ledger + excluded/ folder) if bad."""
        entry: dict[str, Any] = {"sha256": sha, "sample_id": sha[:8],
                                 "file": self._tensor(sha).name,
                                 "source": self.by_sha[sha].relpath,
                                 "precision": row.precision if row else None,
                                 "values": 0, "keys": {}, "reason": ""}
        if row is not None and row.status in ("failed", "excluded"):
            return {**entry, "status": row.status, "reason": row.reason or ""}
        if check is None:
            return self._exclude(entry, "no tensor file after preprocessing")
        entry.update(values=check["values"], keys=check["keys"], reason=check["reason"])
        if check["status"] in GOOD:
            return {**entry, "status": "re-preprocessed" if sha in self.retried else
                    check["status"]}
        return self._exclude(entry, check["reason"] or check["status"])

    def _exclude(self, entry: dict[str, Any], reason: str) -> dict[str, Any]:
        sha = entry["sha256"]
        source = self._tensor(sha)
        if source.is_file():
            (self.tensors / "excluded").mkdir(exist_ok=True)
            os.replace(source, self.tensors / "excluded" / source.name)
        ledger_samples.set_sample(self.ledger, self.dataset, sha, status="excluded",
                                  reason=reason)
        self.ledger.record_event("error", f"excluded from training: {reason}", self.dataset,
                                 entry["source"])
        logger.error("excluded %s from training: %s", entry["source"], reason,
                     extra={"dataset": self.dataset, "sha": sha})
        return {**entry, "status": "excluded", "reason": reason}

    def _write_report(self, entries: list[dict[str, Any]]) -> Path:
        summary: dict[str, int] = {}
        for entry in entries:
            summary[entry["status"]] = summary.get(entry["status"], 0) + 1
        path = self.root / "report.json"
        doc = {"dataset": self.dataset, "tensor_dir": str(self.tensors), "summary": summary,
               "preprocessed": len(self.preprocessed), "files": entries}
        atomic_write_text(path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        logger.info("sanitize report", extra={"dataset": self.dataset, "summary": summary,
                                              "files": entries, "report": str(path)})
        return path
