"""`acewatchd status`: where every dataset stands, read from the ledger without the daemon.

The ledger is opened read-only (``mode=ro``), so status works whether or not the daemon runs
and never takes a write lock. Sections other parts fill in (training runs and their progress,
the scheduler's ``schedule.next``) are shown when present.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from acewatchd.config import Config, find_config_path, load_config
from acewatchd.daemonlock import holder_pid
from acewatchd.errors import ConfigError
from acewatchd.ingest import locate
from acewatchd.ledger import DB_NAME
from acewatchd.stubs import KINDS, stub_path, stub_state

_RECENT_EVENTS = 10


def cmd_status(args: argparse.Namespace) -> int:
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
    }
    conn = _open_ro(state_dir / DB_NAME)
    if conn is None:
        return report
    try:
        kv = dict(conn.execute("SELECT key, value FROM kv").fetchall())
        report["config"]["daemon_error"] = kv.get("config.error", "")
        report["config"]["daemon_loaded"] = kv.get("config.loaded", "")
        report["schedule_next"] = _json_or_empty(kv.get("schedule.next"))
        report["datasets"] = _datasets(conn, cfg)
        report["recent_errors"] = _events(conn)
        report["runs"] = _running(conn)
        report["last"] = _last_outcomes(conn)
    finally:
        conn.close()
    return report


def _open_ro(db: Path) -> sqlite3.Connection | None:
    if not db.exists():
        return None
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
        conn.execute("SELECT 1 FROM files LIMIT 1")
    except sqlite3.Error:
        return None
    conn.row_factory = sqlite3.Row
    return conn


def _datasets(conn: sqlite3.Connection, cfg: Config | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for row in conn.execute("SELECT dataset, state, count(*) n FROM files WHERE state != 'gone'"
                            " GROUP BY dataset, state"):
        ds = out.setdefault(row["dataset"], {"files": {}, "stubs": {
            "untouched": 0, "reviewed": 0, "missing": 0}})
        ds["files"][row["state"]] = row["n"]
    for row in conn.execute("SELECT s.dataset, s.stub_path, s.sha256 FROM stubs s JOIN files f "
                            "ON f.dataset=s.dataset AND f.relpath=s.relpath "
                            "WHERE f.state != 'gone'"):
        if row["dataset"] in out:
            out[row["dataset"]]["stubs"][stub_state(row["sha256"], Path(row["stub_path"]))] += 1
    if cfg is not None:
        _count_users_own(conn, cfg, out)
    return out


def _count_users_own(conn: sqlite3.Connection, cfg: Config, out: dict[str, Any]) -> None:
    """A stubbed file with no stub row of some kind: the user's sidecar was there first (we
    never wrote one), so it counts as reviewed; if it is gone, as missing."""
    rows = conn.execute("SELECT f.dataset, f.relpath, group_concat(s.kind) kinds FROM files f "
                        "LEFT JOIN stubs s ON s.dataset=f.dataset AND s.relpath=f.relpath "
                        "WHERE f.state='stubbed' GROUP BY f.dataset, f.relpath").fetchall()
    for row in rows:
        have = set((row["kinds"] or "").split(","))
        lacking = [k for k in KINDS if k not in have]
        audio = locate(cfg, row["dataset"], row["relpath"]) if lacking else None
        for kind in lacking:
            found = audio is not None and stub_path(audio, kind).exists()
            out[row["dataset"]]["stubs"]["reviewed" if found else "missing"] += 1


def _events(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    rows = conn.execute("SELECT ts, level, dataset, subject, message FROM events "
                        "WHERE level IN ('error', 'warning') ORDER BY id DESC LIMIT ?",
                        (_RECENT_EVENTS,)).fetchall()
    return [{**dict(r), "time": _iso(r["ts"])} for r in rows]


def _running(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    runs = []
    for run in conn.execute("SELECT * FROM runs WHERE outcome='running' ORDER BY id"):
        item = {k: run[k] for k in ("id", "dataset", "job", "run_name", "epochs_total",
                                    "epochs_done")}
        item["started"] = _iso(run["started"])
        prog = conn.execute("SELECT epoch, epochs, step, loss, eta, ts FROM progress WHERE "
                            "run_id=? ORDER BY rowid DESC LIMIT 1", (run["id"],)).fetchone()
        item["progress"] = dict(prog) if prog else None
        runs.append(item)
    return runs


def _last_outcomes(conn: sqlite3.Connection) -> dict[str, dict[str, Any]]:
    """Per dataset, the newest finished pipeline run (nightly / train --now) and render: the
    answer to "what happened last night?"."""
    out: dict[str, dict[str, Any]] = {}
    rows = conn.execute("SELECT dataset, job, outcome, message, ended FROM runs WHERE outcome "
                        "NOT IN ('running', 'already') AND job IN ('nightly', 'manual', 'render')"
                        " ORDER BY id").fetchall()
    for row in rows:  # later rows overwrite earlier ones
        kind = "render" if row["job"] == "render" else "pipeline"
        out.setdefault(row["dataset"], {})[kind] = {
            "job": row["job"], "outcome": row["outcome"], "message": row["message"] or "",
            "ended": _iso(row["ended"])}
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
    for name, ds in sorted(report["datasets"].items()):
        files, stubs = ds["files"], ds["stubs"]
        counts = ", ".join(f"{files[s]} {s}" for s in sorted(files))
        lines.append(f"dataset  {name}: {counts}; stubs {stubs['reviewed']} reviewed, "
                     f"{stubs['untouched']} untouched"
                     + (f", {stubs['missing']} missing" if stubs["missing"] else ""))
    if not report["datasets"]:
        lines.append("dataset  (none yet: copy songs into drop/<dataset>/)")
    lines += _render_runs(report)
    for ev in report["recent_errors"]:
        where = "/".join(x for x in (ev["dataset"], ev["subject"]) if x)
        lines.append(f"{ev['level']:<8} {ev['time']} {where}: {ev['message']}")
    return "\n".join(lines)


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
    for name, when in sorted(report["schedule_next"].items()):
        lines.append(f"next     {name}: {when}")
    return lines
