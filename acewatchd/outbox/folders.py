"""The outbox: one folder per render, a page to listen, an index of every run.

Layout: ``outbox/<dataset>/<YYYY-MM-DD_HHMM>_r<run id>/``. A run is built in a dot-prefixed
staging folder beside its final place and renamed into place whole, so a folder without the dot
is always complete; staging leftovers of a crashed render are removed by the next one. Only
run folder *names* are ever listed (for the index and retention); nothing inside the outbox is
read back as input. All user text (dataset names, captions, lyrics) is HTML-escaped.
"""

from __future__ import annotations

import html
import logging
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import quote

from acewatchd.errors import AcewatchdError
from acewatchd.util import locks
from acewatchd.util.files import atomic_write_text, fsync_dir

logger = logging.getLogger(__name__)

STAGING_PREFIX = ".acewatchd-staging-"
LOCK_NAME = ".acewatchd-render.lock"
RUN_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2}_\d{4})_[A-Za-z0-9_-]+$")
MANIFEST = "samples.json"
PLAYLIST = "playlist.m3u"


@dataclass(frozen=True)
class RunEntry:
    dataset: str
    name: str
    path: Path

    @property
    def stamp(self) -> str:
        match = RUN_NAME.match(self.name)
        return match.group(1) if match else ""


def run_folder_name(when: datetime, run_id: int | str) -> str:
    return f"{when:%Y-%m-%d_%H%M}_r{run_id}"


def slugify(text: str, fallback: str = "prompt", limit: int = 40) -> str:
    """ASCII file-name part; non-Latin text (Korean captions) falls back to ``fallback``."""
    import unicodedata

    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:limit].strip("-")
    return slug or fallback


# --------------------------------------------------------------------------- folders


@contextmanager
def dataset_lock(dataset_dir: Path) -> Iterator[None]:
    """One render per dataset at a time (the daemon and `acewatchd render` may race)."""
    with locks.dataset_lock(dataset_dir, LOCK_NAME,
                            f"{dataset_dir}: another render of this dataset is running"):
        yield


def clean_staging(dataset_dir: Path) -> None:
    """Remove staging folders a crashed render left behind (call with the dataset lock)."""
    if not dataset_dir.is_dir():
        return
    for child in dataset_dir.iterdir():
        if child.name.startswith(STAGING_PREFIX) and not child.is_symlink():
            logger.info("removing unfinished render %s", child)
            shutil.rmtree(child, ignore_errors=True)


def new_staging(dataset_dir: Path, name: str) -> Path:
    staging = dataset_dir / f"{STAGING_PREFIX}{name}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    return staging


def unique_name(dataset_dir: Path, name: str) -> str:
    """``name``, or ``name-2``, ``name-3``... when a run of that minute already exists."""
    candidate, n = name, 2
    while (dataset_dir / candidate).exists() or (dataset_dir / f"{STAGING_PREFIX}{candidate}"
                                                 ).exists():
        candidate, n = f"{name}-{n}", n + 1
    return candidate


def commit(staging: Path, final: Path) -> Path:
    """Rename the finished staging folder into place (same parent: atomic, so the run
    appears complete or not at all). Never replaces an existing run."""
    if final.exists():
        raise AcewatchdError(f"{final}: already exists; not replacing an earlier run")
    os.rename(staging, final)
    fsync_dir(final.parent)
    return final


def list_runs(outbox: Path) -> list[RunEntry]:
    """Every finished run folder of every dataset, newest first (by the time in its name)."""
    entries = []
    for ds in _subdirs(outbox):
        entries += [RunEntry(ds.name, run.name, run) for run in _subdirs(ds)
                    if RUN_NAME.match(run.name)]
    return sorted(entries, key=lambda e: (e.stamp, e.name), reverse=True)


def _subdirs(path: Path) -> list[Path]:
    if not path.is_dir():
        return []
    return [p for p in path.iterdir() if p.is_dir() and not p.is_symlink()
            and not p.name.startswith(".")]


def prune(outbox: Path, dataset: str, keep: int, protect: Path) -> list[Path]:
    """Delete all but the newest ``keep`` runs of ``dataset``; ``protect`` always stays."""
    runs = [e for e in list_runs(outbox) if e.dataset == dataset]
    doomed = [e.path for e in runs[keep:] if e.path != protect]
    for path in doomed:
        logger.info("retention: removing old run %s", path)
        shutil.rmtree(path, ignore_errors=True)
    return doomed


# --------------------------------------------------------------------------- pages


def _template(name: str) -> Template:
    return Template(resources.files("acewatchd.outbox").joinpath(f"templates/{name}").read_text(
        encoding="utf-8"))


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _href(*parts: str) -> str:
    return _e("/".join(quote(p) for p in parts))


def write_playlist(folder: Path, manifest: dict[str, Any]) -> None:
    lines = ["#EXTM3U", "#EXTENC: UTF-8", f"#PLAYLIST:{manifest['dataset']}"]
    for clip in manifest["clips"]:
        for variant, render in clip["renders"].items():
            if not render.get("file"):
                continue
            secs = round(render.get("duration_seconds") or -1)
            label = "with LoRA" if variant == "lora" else "base model"
            title = " ".join(f"{clip['number']:02d} {clip['name']} ({label})".split())
            lines += [f"#EXTINF:{secs},{title}", render["file"]]
    atomic_write_text(folder / PLAYLIST, "\n".join(lines) + "\n")


def write_run_page(folder: Path, manifest: dict[str, Any]) -> None:
    clips = manifest["clips"]
    page = _template("run.html").substitute(
        title=_e(f"{manifest['dataset']} · samples"), style=_style(),
        dataset=_e(manifest["dataset"]), subtitle=_e(_subtitle(manifest)),
        facts=_facts_html(manifest), clip_count=len(clips),
        clips="\n".join(_prompt_html(g, manifest) for g in _groups(clips)), playlist=PLAYLIST,
        footer=_e(f"Rendered by acewatchd from ACE-Step at {manifest['acestep']['url']}"))
    atomic_write_text(folder / "index.html", page)


def _style() -> str:
    return resources.files("acewatchd.outbox").joinpath("templates/style.css").read_text(
        encoding="utf-8")


def _subtitle(m: dict[str, Any]) -> str:
    when = datetime.fromisoformat(m["created"]).strftime("%A %d %B %Y, %H:%M")
    return f"Rendered {when} · run {m['training_run'].get('run_name') or '?'}"


def _facts_html(m: dict[str, Any]) -> str:
    lora, run, settings = m["lora"], m["training_run"], m["settings"]
    epoch = str(lora.get("epoch") or "?")
    if run.get("epochs_total") and lora.get("checkpoint") != "final":
        epoch += f" of {run['epochs_total']}"
    loss = lora.get("loss") if lora.get("checkpoint") != "final" else run.get("final_loss")
    loss_label = "Final loss" if lora.get("checkpoint") == "final" else "Loss at this epoch"
    secs = m["generation_seconds"]
    render_time = f"{secs:.0f} s" if secs >= 1 else "under 1 s"
    render_time += f" · {m['generation_calls']} call{'s' * (m['generation_calls'] != 1)}"
    facts = [("Epoch", epoch, ""),
             (loss_label, f"{loss:.4f}" if loss is not None else "—", ""),
             ("LoRA scale", f"{lora['scale']:g}", ""),
             ("Steps · guidance", f"{settings['steps']} · {settings['guidance']:g}", ""),
             ("Render time", render_time, ""),
             ("ACE-Step", m["acestep"].get("version") or "version unknown", "small"),
             ("Adapter", lora["path"], "small wide")]
    return "\n".join(
        f'    <div class="{"wide" if "wide" in cls else ""}"><dt>{_e(k)}</dt>'
        f'<dd class="{cls.replace("wide", "").strip()}">{_e(v)}</dd></div>'
        for k, v, cls in facts)


def _groups(clips: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Consecutive takes of one prompt (same prompt_index) share a card."""
    groups: list[list[dict[str, Any]]] = []
    for clip in clips:
        key = clip.get("prompt_index", clip["number"])
        if groups and groups[-1][0].get("prompt_index", groups[-1][0]["number"]) == key:
            groups[-1].append(clip)
        else:
            groups.append([clip])
    return groups


def _prompt_html(group: list[dict[str, Any]], m: dict[str, Any]) -> str:
    first, p = group[0], group[0]["prompt"]
    meta = [f"{p['duration']:g} s", f"bpm {p['bpm'] or 'auto'}"]
    meta += [f"key {p['key']}"] if p.get("key") else []
    meta += [f"{p['time_signature']}/4"] if p.get("time_signature") else []
    meta += [f"language {p['language']}"] if p.get("language") not in (None, "", "unknown") \
        else []
    if len(group) == 1:
        meta.insert(0, f"seed {first['seed']}")
    lyrics = p.get("lyrics") or ""
    lyr = "" if lyrics.strip() in ("", "[Instrumental]") else (
        f'<details><summary>Lyrics</summary><pre class="lyrics">{_e(lyrics)}</pre></details>')
    takes = "".join(_take_html(c, m, len(group) > 1) for c in group)
    number = f"{first['number']:02d}" + (f"–{group[-1]['number']:02d}" if len(group) > 1
                                         else "")
    return (f'<article class="card clip">\n<h3><span class="num">{number}</span>'
            f'{_e(first.get("prompt_name") or first["name"])}</h3>\n'
            f'<p class="caption">{_e(p["caption"])}</p>\n'
            f'<p class="meta">{_e(" · ".join(meta))}</p>\n{lyr}\n{takes}</article>')


def _take_html(clip: dict[str, Any], m: dict[str, Any], labelled: bool) -> str:
    label = (f'<p class="take"><span class="num">{clip["number"]:02d}</span>'
             f'seed {_e(clip["seed"])}</p>') if labelled else ""
    players = "".join(_player_html(v, clip["renders"][v], m, clip["name"])
                      for v in ("lora", "base") if v in clip["renders"])
    return f'{label}<div class="players">{players}</div>\n'


def _player_html(variant: str, render: dict[str, Any], m: dict[str, Any],
                 clip_name: str) -> str:
    label = "With LoRA" if variant == "lora" else "Base model"
    note = f"scale {m['lora']['scale']:g}" if variant == "lora" else "no LoRA"
    dur = render.get("duration_seconds")
    note += f" · {int(dur // 60)}:{int(dur % 60):02d}" if dur else ""
    if not render.get("file"):
        body = f'<p class="missing">{_e(render.get("error") or "no audio")}</p>'
    else:
        body = (f'<audio controls preload="metadata" src="{_href(render["file"])}" '
                f'aria-label="{_e(f"{clip_name}, {label[0].lower()}{label[1:]}")}"></audio>')
    return (f'\n<figure class="{variant}"><figcaption>{label}<small>{_e(note)}</small>'
            f'</figcaption>{body}</figure>')


def write_index(outbox: Path, summaries: dict[tuple[str, str], str] | None = None) -> Path:
    """(Re)write outbox/index.html listing every run, newest first."""
    entries, summaries = list_runs(outbox), summaries or {}
    rows = [_index_row(e, summaries.get((e.dataset, e.name), "")) for e in entries]
    datasets = len({e.dataset for e in entries})
    subtitle = (f"{len(entries)} run{'s' * (len(entries) != 1)} of {datasets} "
                f"dataset{'s' * (datasets != 1)}, newest first") if entries else "No runs yet"
    body = (f'<table class="runs">\n{"".join(rows)}</table>' if rows else
            '<p class="empty">Samples appear here after the first LoRA is trained.</p>')
    page = _template("index.html").substitute(
        style=_style(), subtitle=_e(subtitle), runs=body,
        updated=_e(datetime.now().astimezone().strftime("%Y-%m-%d %H:%M")))
    path = outbox / "index.html"
    atomic_write_text(path, page)
    return path


def _index_row(entry: RunEntry, summary: str) -> str:
    stamp = entry.stamp
    when = f"{stamp[:10]} {stamp[11:13]}:{stamp[13:15]}" if stamp else entry.name
    link = _href(entry.dataset, entry.name, "index.html")
    return (f'<tr><td class="when">{_e(when)}</td><td><span class="chip">{_e(entry.dataset)}'
            f'</span></td><td class="summary">{_e(summary)}</td>'
            f'<td class="open"><a href="{link}">Listen &rarr;</a></td></tr>\n')
