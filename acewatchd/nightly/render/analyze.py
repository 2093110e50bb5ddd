"""After the grid is rendered: measure it (analysis.json) and say when the run will finish.

The audio analysis (acewatchd/analysis, in a child process) compares every LoRA clip with the
base clip of the same prompt and seed ("no audible effect") and with the dataset's own songs
(which checkpoint is closest, which may be copying one). Its report lands beside the clips in
the staging folder before the run folder is committed, and the page is written again with it.
An analysis that fails never costs the night its samples: the page says it is missing, and why.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from acewatchd.analysis.runner import AnalysisFailed, run_analysis
from acewatchd.analysis.schema import AnalysisJob, AnalysisReport, ClipJob, TrainingSong
from acewatchd.config.schema import Config
from acewatchd.ingest.dropdir import locate
from acewatchd.ledger import files as ledger_files
from acewatchd.ledger import pace
from acewatchd.ledger.db import Ledger
from acewatchd.nightly.forecast import forecast
from acewatchd.nightly.render.files import write_manifest_and_page
from acewatchd.outbox.grid import ANALYSIS
from acewatchd.outbox.manifest import Manifest
from acewatchd.util.process import REGISTRY

logger = logging.getLogger(__name__)

NO_EFFECT_CAUSES = ("likely causes: a LoRA scale too low for this adapter, an adapter ACE-Step "
                    "loaded but did not apply (restart ACE-Step and render again), or too few "
                    "epochs")


def training_songs(cfg: Config, ledger: Ledger, dataset: str) -> list[TrainingSong]:
    """The dataset's songs as ingest knows them (the user's names, not the staged hashes)."""
    songs: list[TrainingSong] = []
    seen: set[str] = set()
    for row in ledger_files.stubbed_files(ledger.connect(), dataset):
        if row.sha256 in seen:
            continue            # one copy of a song counts once
        path = locate(cfg, dataset, row.relpath)
        if path is not None and path.is_file() and not path.is_symlink():
            seen.add(str(row.sha256))
            songs.append({"name": Path(row.relpath).name, "path": str(path)})
    return songs


def build_job(manifest: Manifest, folder: Path, songs: list[TrainingSong],
              threshold: float | None = None) -> AnalysisJob:
    columns = {c["key"]: c for c in manifest.get("columns", [])}
    clips: list[ClipJob] = []
    for clip in manifest["clips"]:
        for key, render in clip["renders"].items():
            column = columns.get(key)
            if column is None or not render.get("file"):
                continue
            base = column["checkpoint"] == "base"
            clips.append({"id": f"{clip['slug']}@{key}", "prompt": clip["slug"],
                          "seed": clip["seed"], "variant": "base" if base else "lora",
                          "checkpoint": column["checkpoint"], "epoch": column["epoch"],
                          "scale": column["scale"], "path": str(folder / str(render["file"]))})
    return {"training": songs, "clips": clips, "threshold": threshold}


def analyze(cfg: Config, ledger: Ledger, dataset: str, folder: Path,
            manifest: Manifest) -> AnalysisReport | None:
    """Write ``folder``/analysis.json; None (with a note on the page) when it cannot be made."""
    job = build_job(manifest, folder, training_songs(cfg, ledger, dataset),
                    cfg.render_for(dataset).no_effect_db)
    variants = {c["variant"] for c in job["clips"]}
    why = ("no base clips to compare with ([render] compare_base = false)"
           if "base" not in variants else "no LoRA clips" if "lora" not in variants else "")
    if not why:
        try:
            return run_analysis(job, folder / ANALYSIS, registry=cfg.paths.state / REGISTRY)
        except AnalysisFailed as exc:
            why = str(exc)
    manifest.setdefault("notes", []).append(f"no audio analysis: {why}")
    logger.warning("render of %s: no audio analysis: %s", dataset, why)
    return None


def forecast_sentence(cfg: Config, ledger: Ledger, dataset: str) -> str:
    run = pace.newest_run_pace(ledger.connect(), dataset)
    fc = run and forecast(run, cfg.schedule_for(dataset), cfg.train_for(dataset).save_every,
                          datetime.now(UTC))
    if not fc:
        return ""
    warning = fc.warning()
    return fc.sentence() + (f". {warning}" if warning else "")


def finish_page(cfg: Config, ledger: Ledger, dataset: str, folder: Path,
                manifest: Manifest) -> AnalysisReport | None:
    """Analysis and forecast into the run folder, then its samples.json and page again."""
    report = analyze(cfg, ledger, dataset, folder, manifest) \
        if cfg.render_for(dataset).analysis else None
    sentence = forecast_sentence(cfg, ledger, dataset)
    if sentence:
        manifest["forecast"] = sentence
    write_manifest_and_page(folder, manifest)
    return report


def verdict(report: AnalysisReport | None) -> str:
    """What the notification and the render's record add: '' or the no-effect alarm."""
    if report is None or not report["no_effect"]:
        return ""
    return f"the LoRA had no audible effect: every clip sounds like the base model; " \
           f"{NO_EFFECT_CAUSES}"
