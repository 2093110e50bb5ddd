"""The outbox pages: a run's page and playlist, and the index of every run.

Built from the run's manifest (the same dict samples.json holds), so page and manifest always
agree. All user text (dataset names, captions, lyrics) is HTML-escaped, links URL-quoted.
"""

from __future__ import annotations

import html
from datetime import datetime
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any
from urllib.parse import quote

from acewatchd.outbox.folders import PLAYLIST, RunEntry, list_runs
from acewatchd.outbox.manifest import AceStepInfo, Clip, Manifest, Render
from acewatchd.util.files import atomic_write_text


def _template(name: str) -> Template:
    return Template(resources.files("acewatchd.outbox").joinpath(f"templates/{name}").read_text(
        encoding="utf-8"))


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _href(*parts: str) -> str:
    return _e("/".join(quote(p) for p in parts))


def write_playlist(folder: Path, manifest: Manifest) -> None:
    lines = ["#EXTM3U", "#EXTENC: UTF-8", f"#PLAYLIST:{manifest['dataset']}"]
    for clip in manifest["clips"]:
        for variant, render in clip["renders"].items():
            if not render.get("file"):
                continue
            secs = round(render.get("duration_seconds") or -1)
            label = "with LoRA" if variant == "lora" else "base model"
            title = " ".join(f"{clip['number']:02d} {clip['name']} ({label})".split())
            lines += [f"#EXTINF:{secs},{title}", str(render["file"])]
    atomic_write_text(folder / PLAYLIST, "\n".join(lines) + "\n")


def write_run_page(folder: Path, manifest: Manifest) -> None:
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


def _subtitle(m: Manifest) -> str:
    when = datetime.fromisoformat(m["created"]).strftime("%A %d %B %Y, %H:%M")
    return f"Rendered {when} · run {m['training_run'].get('run_name') or '?'}"


def _facts_html(m: Manifest) -> str:
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
             ("ACE-Step", _acestep_fact(m["acestep"]), "small"),
             ("Adapter", lora["path"], "small wide")]
    return "\n".join(
        f'    <div class="{"wide" if "wide" in cls else ""}"><dt>{_e(k)}</dt>'
        f'<dd class="{cls.replace("wide", "").strip()}">{_e(v)}</dd></div>'
        for k, v, cls in facts)


def _acestep_fact(ace: AceStepInfo) -> str:
    """"ACE-Step V2 (6d467e4, 2026-06-26) · checkout 1.5.0 (6d467e4)": API and folder."""
    parts = [str(ace[k]) for k in ("api", "version") if ace.get(k)]
    return " · checkout ".join(parts) if parts else "version unknown"


def _groups(clips: list[Clip]) -> list[list[Clip]]:
    """Consecutive takes of one prompt (same prompt_index) share a card."""
    groups: list[list[Clip]] = []
    for clip in clips:
        key = clip.get("prompt_index", clip["number"])
        if groups and groups[-1][0].get("prompt_index", groups[-1][0]["number"]) == key:
            groups[-1].append(clip)
        else:
            groups.append([clip])
    return groups


def _prompt_html(group: list[Clip], m: Manifest) -> str:
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


def _take_html(clip: Clip, m: Manifest, labelled: bool) -> str:
    label = (f'<p class="take"><span class="num">{clip["number"]:02d}</span>'
             f'seed {_e(clip["seed"])}</p>') if labelled else ""
    players = "".join(_player_html(v, clip["renders"][v], m, clip["name"])
                      for v in ("lora", "base") if v in clip["renders"])
    return f'{label}<div class="players">{players}</div>\n'


def _player_html(variant: str, render: Render, m: Manifest,
                 clip_name: str) -> str:
    label = "With LoRA" if variant == "lora" else "Base model"
    note = f"scale {m['lora']['scale']:g}" if variant == "lora" else "no LoRA"
    dur = render.get("duration_seconds")
    note += f" · {int(dur // 60)}:{int(dur % 60):02d}" if dur else ""
    file = render.get("file")
    if not file:
        body = f'<p class="missing">{_e(render.get("error") or "no audio")}</p>'
    else:
        body = (f'<audio controls preload="metadata" src="{_href(file)}" '
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
