"""Checks no single field can make: cron and time zones, URLs, commands, and paths that must
not overlap. Each problem names its dotted key (and line, through ``line``).

``render_budget_warnings`` is advice, not a problem: a checkpoint grid that will not fit
``[render] max_minutes`` still renders, with its oldest checkpoints left out."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from acewatchd.config.schema import (
    DATASET_NAME,
    ESTIMATED_RENDER_PACE,
    Config,
    Render,
    Schedule,
    Train,
)
from acewatchd.util.cron import CronError, parse_cron

Line = Callable[[str], str]
SERVICE_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def cross_checks(cfg: Config, problems: list[str], line: Line) -> None:
    for check in (_datasets, _schedules, _watch, _acestep, _render, _notify, _service, _paths):
        check(cfg, problems, line)


def _datasets(cfg: Config, problems: list[str], line: Line) -> None:
    for name in cfg.datasets:
        if not DATASET_NAME.match(name):
            shown = name if name.isprintable() else repr(name)
            problems.append(f"datasets.{shown}: dataset names are folder names: no '/', no "
                            "backslash, no leading '.', no control characters or blank ends, "
                            f"at most 64 characters{line(name)}")


def _schedules(cfg: Config, problems: list[str], line: Line) -> None:
    schedules = [("schedule", cfg.schedule)] + [
        (f"datasets.{n}.schedule", cfg.schedule_for(n)) for n in cfg.datasets]
    for where, sched in schedules:
        try:
            parse_cron(sched.cron)
        except CronError as exc:
            problems.append(f"{where}.cron: {exc}{line('cron')}")
            continue
        zone_ok = _zone_ok(sched)
        if not zone_ok:
            problems.append(f"{where}.timezone: unknown time zone {sched.timezone!r}"
                            f"{line('timezone')}")
        elif sched.enabled and not _ever_fires(sched):
            problems.append(f"{where}.cron: {sched.cron!r} never fires (no such date?)"
                            f"{line('cron')}")


def _zone_ok(sched: Schedule) -> bool:
    if not sched.timezone:
        return True
    try:
        ZoneInfo(sched.timezone)
    except Exception:  # noqa: BLE001 - ValueError, KeyError, OSError...: all 'unknown'
        return False
    return True


def _ever_fires(sched: Schedule) -> bool:
    """A valid cron can still name no real date ("0 1 30 2 *"): look 8 years ahead."""
    from apscheduler.triggers.cron import CronTrigger  # only when a config is checked

    zone = ZoneInfo(sched.timezone) if sched.timezone else UTC
    fields = parse_cron(sched.cron)
    trigger = CronTrigger(timezone=zone, end_date=datetime(datetime.now(UTC).year + 8, 12, 31,
                                                          tzinfo=zone), **fields)
    return trigger.get_next_fire_time(None, datetime.now(zone)) is not None


def _watch(cfg: Config, problems: list[str], line: Line) -> None:
    if cfg.watch.min_duration_seconds >= cfg.watch.max_duration_seconds:
        problems.append("watch.min_duration_seconds: must be below watch.max_duration_seconds")
    for ext in cfg.watch.extensions:
        if not re.match(r"^[a-z0-9]{1,8}$", ext):
            problems.append(f"watch.extensions: {ext!r} should be a lowercase extension without"
                            " the dot, like \"mp3\"")
        elif problem := cfg.watch.extension_problem(ext):
            problems.append(f"watch.extensions: {problem}{line('extensions')}")


def _acestep(cfg: Config, problems: list[str], line: Line) -> None:
    ace = cfg.acestep
    parts = urlsplit(ace.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problems.append(f"acestep.url: {ace.url!r} is not an http(s) URL like "
                        f"\"http://127.0.0.1:7860\"{line('url')}")
    if ace.manage_server and not [w for w in ace.server_command if w.strip()]:
        problems.append(f"acestep.server_command: empty, but manage_server = true needs the "
                        f"command that starts ACE-Step{line('server_command')}")


def _render(cfg: Config, problems: list[str], line: Line) -> None:
    names = [("render", cfg.render)] + [(f"datasets.{n}.render", cfg.render_for(n))
                                        for n in cfg.datasets]
    for where, render in names:
        if render.enabled and not render.prompts:
            problems.append(f"{where}.prompts: rendering is on but there is no prompt (add a "
                            f"[[render.prompts]] or set enabled = false){line('prompts')}")
        bad = [s for s in render.scales if not 0.0 <= s <= 1.0]
        if bad:
            problems.append(f"{where}.scales: {', '.join(f'{s:g}' for s in bad)} outside 0..1"
                            f"{line('scales')}")


# "auto" epochs are at most this many (nightly/train/params.py's table).
_AUTO_EPOCHS_MAX = 800


def render_budget_warnings(cfg: Config, pace: float | None = None) -> list[str]:
    """Renders whose grid (prompts x columns) cannot fit ``max_minutes`` at ``pace`` seconds
    per second of audio (the measured one; None: before any measurement, the estimate)."""
    speed = pace or ESTIMATED_RENDER_PACE
    how = "measured" if pace else "estimated: no render measured yet"
    names = [("render", cfg.render, cfg.train)] + [
        (f"datasets.{n}.render", cfg.render_for(n), cfg.train_for(n)) for n in cfg.datasets]
    warnings = []
    for where, render, train in names:
        clips = sum(len(p.seeds or [p.seed]) for p in render.prompts)
        audio = sum(len(p.seeds or [p.seed]) * p.duration for p in render.prompts)
        columns = _columns(render, train)
        minutes = columns * audio * speed / 60
        if render.enabled and minutes > render.max_minutes:
            warnings.append(
                f"{where}.max_minutes: {clips} clip(s) x {columns} column(s) take about "
                f"{minutes:.0f} min at {speed:g} s per second of audio ({how}), more than "
                f"{render.max_minutes:g}; the oldest checkpoints will be left out (fewer "
                "checkpoints, scales or prompts, or a larger max_minutes)")
    return warnings


def _columns(render: Render, train: Train) -> int:
    """Base + adapters x scales, for a run of ``train``'s epochs that finished."""
    epochs = train.epochs if isinstance(train.epochs, int) else _AUTO_EPOCHS_MAX
    saved = epochs // train.save_every - (epochs % train.save_every == 0)  # final's twin
    spec = render.checkpoints
    adapters = {"last": 0, "recent": min(3, saved), "all": saved}.get(spec, 0) \
        if isinstance(spec, str) else len(set(spec))
    return (adapters + 1) * len(render.lora_scales()) + int(render.compare_base)


def _notify(cfg: Config, problems: list[str], line: Line) -> None:
    url = cfg.notify.webhook_url
    if not url:
        return
    parts = urlsplit(url)
    loopback = parts.hostname in ("localhost",) or _is_loopback(parts.hostname or "")
    if not parts.hostname or not (parts.scheme == "https" or
                                  (parts.scheme == "http" and loopback)):
        problems.append(f"notify.webhook_url: {url!r} must be https:// (http:// only to this "
                        f"machine){line('webhook_url')}")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _service(cfg: Config, problems: list[str], line: Line) -> None:
    if not SERVICE_LABEL.match(cfg.service.label):
        problems.append(f"service.label: {cfg.service.label!r} must be letters, digits, '.', "
                        f"'_' or '-' (it names a file){line('label')}")


def _paths(cfg: Config, problems: list[str], line: Line) -> None:
    """Folders the daemon writes must not lie in the folder it watches (a rejected copy would
    be ingested again, without end), the drop folder must not be ACE-Step's (it would train on
    its own clips), and none may be / or the home folder itself."""
    drop = _real(cfg.paths.drop)
    ace = _real(cfg.acestep.root)
    danger = {Path("/"), _real(Path.home())}
    named = {f"paths.{k}": _real(getattr(cfg.paths, k))
             for k in ("drop", "outbox", "rejected", "state", "logs")}
    for key, path in named.items():
        if path in danger:
            problems.append(f"{key}: {path} is too wide a folder for acewatchd to own "
                            f"(use a folder of its own){line(key.split('.')[1])}")
        elif key != "paths.drop" and (path == drop or path.is_relative_to(drop)):
            problems.append(f"{key}: {path} is inside paths.drop ({drop}); acewatchd would "
                            f"ingest its own files{line(key.split('.')[1])}")
    if drop == ace or drop.is_relative_to(ace):
        problems.append(f"paths.drop: {drop} is inside the ACE-Step folder ({ace}); acewatchd "
                        f"would train on ACE-Step's own files{line('drop')}")
    if ace in danger:
        problems.append(f"acestep.root: {ace} is not an ACE-Step folder{line('root')}")


def _real(path: Path) -> Path:
    """The path with symlinks resolved as far as it exists (strict=False)."""
    return Path(path).expanduser().resolve(strict=False)
