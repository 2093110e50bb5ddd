"""The outbox pages: a run's page and playlist, and the index of every run.

Built from the run's manifest (the same dict samples.json holds), so page and manifest always
agree, with Jinja2 templates (``templates/``) and autoescaping on: every string from a file,
the config or a server is escaped where it reaches the page. Jinja2 is imported only when a
page is written, never by the idle daemon.
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from acewatchd.outbox import grid
from acewatchd.outbox.folders import MANIFEST, PLAYLIST, RunEntry, list_runs
from acewatchd.outbox.manifest import AceStepInfo, Manifest
from acewatchd.util.files import atomic_write_text

if TYPE_CHECKING:
    import jinja2


@functools.cache
def _env() -> jinja2.Environment:
    import jinja2  # here, not at the top: the daemon loads this module but rarely a page

    return jinja2.Environment(loader=jinja2.PackageLoader("acewatchd.outbox", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)


def _render(name: str, **context: Any) -> str:
    return _env().get_template(name).render(style=_style(), **context)


def _href(*parts: str) -> str:
    return "/".join(quote(p) for p in parts)


def write_playlist(folder: Path, manifest: Manifest) -> None:
    lines = ["#EXTM3U", "#EXTENC: UTF-8", f"#PLAYLIST:{manifest['dataset']}"]
    cols = grid.columns(manifest)
    for clip in manifest["clips"]:
        for col in cols:
            render = clip["renders"].get(col.key)
            if not render or not render.get("file"):
                continue
            secs = round(render.get("duration_seconds") or -1)
            label = "base model" if col.is_base else f"{col.label}, {col.scale_label}"
            title = " ".join(f"{clip['number']:02d} {clip['name']} ({label})".split())
            lines += [f"#EXTINF:{secs},{title}", str(render["file"])]
    atomic_write_text(folder / PLAYLIST, "\n".join(lines) + "\n")


def write_run_page(folder: Path, manifest: Manifest) -> None:
    """The run's page; with ``analysis.json`` in ``folder``, its ranking and flags too."""
    cols = grid.columns(manifest)
    analysis = grid.load_analysis(folder, cols)
    page = _render(
        "run.html", dataset=manifest["dataset"], subtitle=_subtitle(manifest),
        facts=_facts(manifest), columns=cols, groups=grid.groups(cols),
        rows=grid.rows(manifest, cols), clip_count=len(manifest["clips"]),
        analysis=analysis, notes=manifest.get("notes", []),
        finished=manifest.get("finished", True), forecast=manifest.get("forecast"),
        playlist=PLAYLIST, acestep_url=manifest["acestep"]["url"])
    atomic_write_text(folder / "index.html", page)


def refresh_run_page(folder: Path) -> None:
    """Write a finished run's page again from its samples.json (after analysis.json or a
    forecast arrived)."""
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    write_run_page(folder, manifest)


def _style() -> str:
    return resources.files("acewatchd.outbox").joinpath("templates/style.css").read_text(
        encoding="utf-8")


def _subtitle(m: Manifest) -> str:
    when = datetime.fromisoformat(m["created"]).strftime("%A %d %B %Y, %H:%M")
    return f"Rendered {when} · run {m['training_run'].get('run_name') or '?'}"


def _facts(m: Manifest) -> list[tuple[str, str, str]]:
    """(label, value, css class) of the facts card."""
    run, settings = m["training_run"], m["settings"]
    epochs = f"{run.get('epochs_done') or '?'}"
    epochs += f" of {run['epochs_total']}" if run.get("epochs_total") else ""
    loss = run.get("final_loss")
    secs = m["generation_seconds"]
    render_time = f"{secs:.0f} s" if secs >= 1 else "under 1 s"
    render_time += f" · {m['generation_calls']} call{'s' * (m['generation_calls'] != 1)}"
    return [("Epochs trained", epochs, ""),
            ("Final loss" if m.get("finished", True) else "Last loss",
             f"{loss:.4f}" if loss is not None else "—", ""),
            ("Steps · guidance", f"{settings['steps']} · {settings['guidance']:g}", ""),
            ("Render time", render_time, ""),
            ("ACE-Step", _acestep_fact(m["acestep"]), "small wide")]


def _acestep_fact(ace: AceStepInfo) -> str:
    """"ACE-Step V2 (6d467e4, 2026-06-26) · checkout 1.5.0 (6d467e4)": API and folder."""
    parts = [str(ace[k]) for k in ("api", "version") if ace.get(k)]
    return " · checkout ".join(parts) if parts else "version unknown"


def write_index(outbox: Path, summaries: dict[tuple[str, str], str] | None = None) -> Path:
    """(Re)write outbox/index.html listing every run, newest first."""
    entries, summaries = list_runs(outbox), summaries or {}
    datasets = len({e.dataset for e in entries})
    subtitle = (f"{len(entries)} run{'s' * (len(entries) != 1)} of {datasets} "
                f"dataset{'s' * (datasets != 1)}, newest first") if entries else "No runs yet"
    page = _render("index.html", subtitle=subtitle,
                   runs=[_index_row(e, summaries.get((e.dataset, e.name), "")) for e in entries],
                   updated=datetime.now().astimezone().strftime("%Y-%m-%d %H:%M"))
    path = outbox / "index.html"
    atomic_write_text(path, page)
    return path


def _index_row(entry: RunEntry, summary: str) -> dict[str, str]:
    stamp = entry.stamp
    when = f"{stamp[:10]} {stamp[11:13]}:{stamp[13:15]}" if stamp else entry.name
    return {"when": when, "dataset": entry.dataset, "summary": summary,
            "link": _href(entry.dataset, entry.name, "index.html")}
