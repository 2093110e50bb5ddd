"""`acewatchd status`: where every dataset stands, read from the ledger without the daemon.

The ledger is opened read-only (``mode=ro``), so status works whether or not the daemon runs
and never takes a write lock; its queries are in ``ledger/report.py``, this module turns their
rows into the report (``--json``) and its text. Sections other parts fill in (training runs and
their progress, the scheduler's next fire times) are shown when present.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from acewatchd.commands.dataset_arg import RULE
from acewatchd.config.load import find_config_path, load_config
from acewatchd.config.schema import DATASET_NAME, Config
from acewatchd.errors import ConfigError
from acewatchd.ingest.formats import parse_skip
from acewatchd.ingest.pipeline import locate, visible
from acewatchd.ingest.stubs import (
    INSTRUMENTAL,
    KINDS,
    SAID_INSTRUMENTAL,
    hash_or_none,
    stub_path,
    stub_state,
)
from acewatchd.ledger import pace
from acewatchd.ledger import report as q
from acewatchd.ledger.db import open_readonly
from acewatchd.ledger.events import (
    KV_ACESTEP,
    KV_CONFIG_ERROR,
    KV_CONFIG_LOADED,
    KV_SCHEDULE_NEXT,
    all_kv,
)
from acewatchd.ledger.files import StubRow
from acewatchd.nightly.forecast import forecast
from acewatchd.util.diskspace import LOW_BYTES, low_disks, size_text
from acewatchd.util.files import sha256_bytes
from acewatchd.util.locks import holder_pid

_RECENT_EVENTS = 10
_LISTED = 10  # songs named per dataset and problem in the text report (--json lists all)
# What ingest writes as lyrics when it found none (ingest.stubs.lyrics_text).
_NO_LYRICS_SHA = sha256_bytes(f"{INSTRUMENTAL}\n".encode())


def run(args: argparse.Namespace) -> int:
    path = find_config_path(args.config)
    cfg, config_problem = _try_config(path)
    report = collect(cfg, path, config_problem)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print(render(report))
    return 0


def _try_config(path: Path) -> tuple[Config | None, str]:
    try:
        return load_config(path), ""
    except ConfigError as exc:
        return None, str(exc)


def collect(cfg: Config | None, path: Path, config_problem: str) -> dict[str, Any]:
    state_dir = cfg.paths.state if cfg else path.parent / "state"
    pid = holder_pid(state_dir)
    report: dict[str, Any] = {
        "config": {"path": str(path), "valid": not config_problem, "error": config_problem},
        "daemon": {"running": pid is not None, "pid": pid if pid and pid > 0 else None},
        "datasets": {}, "recent_errors": [], "runs": [], "last": {}, "schedule_next": {},
        "acestep": {}, "forecast": {}, "skipped": [], "low_disk": _low_disks(cfg),
    }
    conn = open_readonly(state_dir)
    if conn is None:
        return report
    try:
        kv = all_kv(conn)
        report["config"]["daemon_error"] = kv.get(KV_CONFIG_ERROR, "")
        report["config"]["daemon_loaded"] = kv.get(KV_CONFIG_LOADED, "")
        report["schedule_next"] = _json_or_empty(kv.get(KV_SCHEDULE_NEXT))
        report["acestep"] = _json_or_empty(kv.get(KV_ACESTEP))
        report["datasets"] = _datasets(conn, cfg)
        report["skipped"] = _skipped_folders(cfg) + _skipped(conn)
        report["recent_errors"] = _events(conn)
        report["runs"] = _running(conn)
        report["last"] = _last_outcomes(conn)
        report["forecast"] = _forecasts(conn, cfg or Config())
    finally:
        conn.close()
    return report


def _low_disks(cfg: Config | None) -> list[dict[str, Any]]:
    """Disks of acewatchd's folders that are (nearly) full: measured here, because a full disk
    cannot be recorded in a ledger that lives on it."""
    if cfg is None:
        return []
    folders = {"the ledger": cfg.paths.state, "the drop folder": cfg.paths.drop,
               "the outbox": cfg.paths.outbox, "ACE-Step's folder": cfg.acestep.root,
               "the logs": cfg.paths.logs}
    return [{"free_bytes": d.free, "folders": list(d.folders),
             "message": f"{size_text(d.free)} free on the disk holding {', '.join(d.folders)}:"
                        f" free some space (a night's checkpoints and samples need about "
                        f"{size_text(LOW_BYTES)})"}
            for d in low_disks(folders)]


def _datasets(conn: sqlite3.Connection, cfg: Config | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for count in q.live_state_counts(conn):
        ds = out.setdefault(count.dataset, {"files": {}, "stubs": {
            "untouched": 0, "reviewed": 0, "missing": 0}, "no_lyrics": [],
            "changed_after_review": []})
        ds["files"][count.state] = count.count
    for stub in q.live_stubs(conn):
        if stub.dataset in out:
            verdict = stub_state(stub.sha256, Path(stub.stub_path))
            out[stub.dataset]["stubs"][verdict] += 1
            if cfg is not None and verdict == "untouched" and _lyrics_not_found(cfg, stub):
                out[stub.dataset]["no_lyrics"].append({
                    "file": stub.relpath, "stub": Path(stub.stub_path).name,
                    "fix": _no_lyrics_fix(Path(stub.stub_path).name)})
    _changed_after_review(conn, out)
    if cfg is not None:
        _count_users_own(conn, cfg, out)
    return out


def _lyrics_not_found(cfg: Config, stub: StubRow) -> bool:
    """Ingest found no lyrics in the tags or beside the song of a dataset that is not
    instrumental, and the stub it wrote still says so: the song trains as an instrumental."""
    return (stub.kind == "lyrics" and stub.sha256 == _NO_LYRICS_SHA
            and stub.note != SAID_INSTRUMENTAL and not cfg.dataset(stub.dataset).instrumental)


def _no_lyrics_fix(name: str) -> str:
    return (f"no lyrics found: add `{name}` (put the song's lyrics in it; until you edit it, "
            f"it says {INSTRUMENTAL} and the song trains as an instrumental)")


def _changed_after_review(conn: sqlite3.Connection, out: dict[str, Any]) -> None:
    """Songs replaced after the user edited a stub: the edit was kept and may no longer match.
    Listed until the stub is edited again (or the song removed)."""
    try:
        reviews = q.stale_reviews(conn)
    except sqlite3.OperationalError:  # a ledger from before stale reviews (daemon not updated)
        return
    by_file: dict[tuple[str, str], list[str]] = {}
    for review in reviews:
        if review.dataset in out and hash_or_none(Path(review.stub_path)) == review.stub_sha256:
            by_file.setdefault((review.dataset, review.relpath), []).append(review.kind)
    for (dataset, relpath), kinds in by_file.items():
        names = " and ".join(f"`{Path(relpath).stem}.{k}.txt`" for k in kinds)
        out[dataset]["changed_after_review"].append({
            "file": relpath, "kinds": kinds,
            "fix": f"the song changed after its {' and '.join(kinds)} "
                   f"{'were' if len(kinds) > 1 else 'was'} reviewed: check that {names} "
                   f"{'still match' if len(kinds) > 1 else 'still matches'} the new audio"})


def _count_users_own(conn: sqlite3.Connection, cfg: Config, out: dict[str, Any]) -> None:
    """A stubbed file with no stub row of some kind: the user's sidecar was there first (we
    never wrote one), so it counts as reviewed; if it is gone, as missing."""
    for row in q.stubbed_kinds(conn):
        lacking = [k for k in KINDS if k not in row.kinds]
        audio = locate(cfg, row.dataset, row.relpath) if lacking else None
        for kind in lacking:
            found = audio is not None and stub_path(audio, kind).exists()
            out[row.dataset]["stubs"]["reviewed" if found else "missing"] += 1


def _skipped(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Audio files never ingested because of their name, each with why and the fix."""
    out = []
    for row in q.skipped_files(conn):
        advice = parse_skip(Path(row.relpath).name, row.reason)
        out.append({"dataset": row.dataset, "file": row.relpath, "reason": advice.reason,
                    "fix": advice.fix})
    return out


def _skipped_folders(cfg: Config | None) -> list[dict[str, Any]]:
    """Folders in drop/ that are not datasets (their name could not be one): never trained."""
    if cfg is None:
        return []
    try:
        entries = sorted(cfg.paths.drop.iterdir())
    except OSError:
        return []
    out = []
    for entry in entries:
        name = visible(unicodedata.normalize("NFC", entry.name))
        if entry.name.startswith(".") or entry.is_symlink() or not entry.is_dir() \
                or DATASET_NAME.match(name):
            continue
        out.append({"dataset": name, "file": "", "reason": "this folder is not a dataset: its "
                    "name cannot be one, so its songs are never trained", "fix": f"rename it "
                    f"({RULE})"})
    return out


def _render_skipped(report: dict[str, Any]) -> list[str]:
    return [f"skipped  {item['dataset']}/{item['file']}: {item['reason']}"
            + (f"; {item['fix']}" if item["fix"] else "") for item in report.get("skipped", [])]


def _events(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    return [{"ts": e.ts, "level": e.level, "dataset": e.dataset, "subject": e.subject,
             "message": e.message, "time": _iso(e.ts)}
            for e in q.recent_problems(conn, _RECENT_EVENTS)]


def _running(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    runs = []
    for run in q.running_runs(conn):
        item: dict[str, Any] = {"id": run.id, "dataset": run.dataset, "job": run.job,
                                "run_name": run.run_name, "epochs_total": run.epochs_total,
                                "epochs_done": run.epochs_done, "started": _iso(run.started)}
        prog = q.latest_progress(conn, run.id)
        item["progress"] = None if prog is None else {
            "epoch": prog.epoch, "epochs": prog.epochs, "step": prog.step, "loss": prog.loss,
            "eta": prog.eta, "ts": prog.ts}
        runs.append(item)
    return runs


def _last_outcomes(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """Per dataset, the newest finished pipeline run (nightly / train --now) and render: the
    answer to "what happened last night?"."""
    out: dict[str, dict[str, Any]] = {}
    for row in q.finished_pipeline_runs(conn):  # later rows overwrite earlier ones
        kind = "render" if row.job == "render" else "pipeline"
        out.setdefault(row.dataset, {})[kind] = {
            "job": row.job, "outcome": row.outcome, "message": row.message or "",
            "ended": _iso(row.ended)}
    return out


def _forecasts(conn: sqlite3.Connection, cfg: Config) -> dict[str, dict[str, Any]]:
    """Per dataset with a training run: when it will finish, at the pace its nights measured."""
    out: dict[str, dict[str, Any]] = {}
    now = datetime.now(UTC)
    for name in pace.datasets_with_runs(conn):
        run = pace.newest_run_pace(conn, name)
        fc = run and forecast(run, cfg.schedule_for(name), cfg.train_for(name).save_every, now)
        if not fc:
            continue
        out[name] = {
            "run_name": fc.run_name, "epochs_done": fc.epochs_done,
            "epochs_total": fc.epochs_total, "finished": fc.finished,
            "seconds_per_epoch": fc.pace.seconds_per_epoch if fc.pace else None,
            "epochs_per_night": fc.epochs_per_night, "nights_used": fc.nights_used,
            "nights_left": fc.nights_left, "finish": fc.finish.isoformat() if fc.finish else None,
            "sentence": fc.sentence(), "warning": fc.warning()}
    return out


def _json_or_empty(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _iso(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else ""


def render(report: dict[str, Any]) -> str:
    cfg, daemon = report["config"], report["daemon"]
    lines = [f"config   {cfg['path']}: " + ("ok" if cfg["valid"] else f"INVALID: {cfg['error']}")]
    if cfg.get("daemon_error") and daemon["running"]:
        lines.append(f"         daemon kept its last good config: {cfg['daemon_error']}")
    lines.append("daemon   " + (f"running (pid {daemon['pid']})" if daemon["running"]
                                 else "not running"))
    lines += [f"disk     low: {d['message']}" for d in report.get("low_disk", [])]
    ace = report.get("acestep") or {}
    if ace:
        checkout = f"; checkout {ace['checkout']}" if ace.get("checkout") else ""
        lines.append(f"acestep  {ace.get('summary')} at {ace.get('url')}{checkout} (last seen "
                     f"{_iso(ace.get('seen'))})")
        lines += [f"         warning: {w}" for w in ace.get("warnings") or []]
    for name, ds in sorted(report["datasets"].items()):
        files, stubs = ds["files"], ds["stubs"]
        counts = ", ".join(f"{files[s]} {s}" for s in sorted(files))
        lines.append(f"dataset  {name}: {counts}; stubs {stubs['reviewed']} reviewed, "
                     f"{stubs['untouched']} untouched"
                     + (f", {stubs['missing']} missing" if stubs["missing"] else ""))
        lines += _song_notes(ds.get("changed_after_review", []) + ds.get("no_lyrics", []))
    if not report["datasets"]:
        lines.append("dataset  (none yet: copy songs into drop/<dataset>/)")
    lines += _render_skipped(report)
    lines += _render_runs(report)
    for ev in report["recent_errors"]:
        where = "/".join(x for x in (ev["dataset"], ev["subject"]) if x)
        lines.append(f"{ev['level']:<8} {ev['time']} {where}: {ev['message']}")
    return "\n".join(printable(line) for line in lines)


def _song_notes(notes: list[dict[str, Any]]) -> list[str]:
    lines = [f"         {note['file']}: {note['fix']}"
             for note in sorted(notes, key=lambda n: str(n["file"]))[:_LISTED]]
    if len(notes) > _LISTED:
        lines.append(f"         ... and {len(notes) - _LISTED} more (acewatchd status --json "
                     "lists them all)")
    return lines


def printable(line: str) -> str:
    """File names are data: a control character (an escape sequence, a newline) or an
    undecodable byte in one is shown escaped, never sent to the terminal as it is."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape",
                                                          "backslashreplace").decode("ascii")
                   for ch in line)


def _render_runs(report: dict[str, Any]) -> list[str]:
    lines = []
    for run in report["runs"]:
        prog = run["progress"] or {}
        detail = (f"epoch {prog.get('epoch')}/{prog.get('epochs')}, step {prog.get('step')}, "
                  f"loss {prog.get('loss')}, ETA {prog.get('eta')}") if prog else "starting"
        lines.append(f"running  {run['dataset']} {run['job']} {run['run_name'] or ''}: {detail}")
    for name, kinds in sorted(report.get("last", {}).items()):
        for last in kinds.values():
            message = f" ({last['message']})" if last["message"] else ""
            lines.append(f"last     {name} {last['job']} {last['ended']}: {last['outcome']}"
                         f"{message}")
    for name, fc in sorted(report.get("forecast", {}).items()):
        if not fc["finished"]:
            lines.append(f"forecast {name}: {fc['sentence']}")
        if fc["warning"]:
            lines.append(f"warning  {fc['warning']}")
    for name, when in sorted(report["schedule_next"].items()):
        lines.append(f"next     {name}: {when}")
    return lines
