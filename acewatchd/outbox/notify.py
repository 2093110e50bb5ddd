"""Tell the user something happened: samples are ready, or a run failed.

Two channels, both optional: a macOS notification through ``osascript`` and an ntfy-style
webhook (one POST, the message as the body, the title in a header). A notification is a
courtesy: every failure to deliver one is logged and swallowed, never raised into the job that
finished. Tests use ``RecordingNotifier``.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from acewatchd.config.schema import Config

logger = logging.getLogger(__name__)

_MAX_TEXT = 240  # Notification Center truncates long text anyway; keep argv small.
_TIMEOUT = 10.0

# The text arrives as osascript's argv ("on run argv"), so it is never parsed as AppleScript:
# quotes, backslashes and `do shell script` in a dataset name stay plain text.
_APPLESCRIPT = [
    "on run argv",
    "display notification (item 2 of argv) with title (item 1 of argv)",
    "end run",
]


class Notifier(Protocol):
    def notify(self, title: str, message: str, *, failed: bool = False) -> None:
        """Deliver one notification; never raises."""
        ...


def clean_text(text: str, limit: int = _MAX_TEXT) -> str:
    """One line of printable text (control characters would garble a banner or a header)."""
    flat = "".join(ch if ch.isprintable() else " " for ch in str(text))
    flat = " ".join(flat.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def private(text: str) -> str:
    """What leaves this machine names no folder of the user's disk: the home folder becomes
    "~" (a webhook goes to a third-party server)."""
    home = str(Path.home())
    return text.replace(home + "/", "~/").replace(home, "~") if len(home) > 1 else text


def applescript_string(text: str) -> str:
    """``text`` as an AppleScript string literal (for callers that must build a script)."""
    escaped = clean_text(text).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def osascript_command(title: str, message: str, osascript: str = "osascript") -> list[str]:
    cmd = [osascript]
    for line in _APPLESCRIPT:
        cmd += ["-e", line]
    return cmd + ["--", clean_text(title, 80), clean_text(message)]


class NullNotifier:
    def notify(self, title: str, message: str, *, failed: bool = False) -> None:
        logger.debug("notification (not sent): %s: %s", title, message)


class MacNotifier:
    def __init__(self, osascript: str) -> None:
        self.osascript = osascript

    def notify(self, title: str, message: str, *, failed: bool = False) -> None:
        cmd = osascript_command(title, message, self.osascript)
        try:
            done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            logger.warning("macOS notification failed: %s", exc)
            return
        if done.returncode != 0:
            logger.warning("macOS notification failed (exit %s): %s", done.returncode,
                           done.stderr.decode("utf-8", "replace").strip()[:200])


class WebhookNotifier:
    """ntfy-style: POST the message as text/plain; Title/Priority/Tags headers."""

    def __init__(self, url: str, timeout: float = _TIMEOUT) -> None:
        self.url = url
        self.timeout = timeout

    def request(self, title: str, message: str, failed: bool) -> urllib.request.Request:
        # HTTP headers are latin-1 on the wire; ntfy accepts RFC 2047 for anything else.
        title = clean_text(title, 120)
        header_title = title if title.isascii() else _rfc2047(title)
        headers = {"Title": header_title, "Content-Type": "text/plain; charset=utf-8",
                   "Priority": "high" if failed else "default",
                   "Tags": "warning" if failed else "musical_note"}
        body = clean_text(private(message), 2000)
        return urllib.request.Request(self.url, data=body.encode("utf-8"), headers=headers,
                                      method="POST")

    def notify(self, title: str, message: str, *, failed: bool = False) -> None:
        try:
            with urllib.request.urlopen(self.request(title, message, failed),
                                        timeout=self.timeout) as resp:
                resp.read(1024)
        except Exception as exc:  # noqa: BLE001 - any failure to notify is logged, never raised
            logger.warning("webhook notification to %s failed: %s", _redact(self.url), exc)


def _rfc2047(text: str) -> str:
    import base64

    return "=?UTF-8?B?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="


def _redact(url: str) -> str:
    """Webhook URLs often embed a secret topic or token: log only scheme and host."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}/…"


@dataclass
class MultiNotifier:
    notifiers: list[Notifier] = field(default_factory=list)

    def notify(self, title: str, message: str, *, failed: bool = False) -> None:
        for notifier in self.notifiers:
            try:
                notifier.notify(title, message, failed=failed)
            except Exception:  # a buggy channel must not stop the others
                logger.exception("notifier %r failed", notifier)


@dataclass
class RecordingNotifier:
    """Test double: keeps every (title, message, failed) it is given."""

    sent: list[tuple[str, str, bool]] = field(default_factory=list)

    def notify(self, title: str, message: str, *, failed: bool = False) -> None:
        self.sent.append((title, message, failed))


def build_notifier(cfg: Config, *, platform: str | None = None) -> Notifier:
    """The channels config asks for that this machine has; a NullNotifier when none."""
    channels: list[Notifier] = []
    if cfg.notify.macos and (platform or sys.platform) == "darwin":
        osascript = shutil.which("osascript")
        if osascript:
            channels.append(MacNotifier(osascript))
        else:
            logger.warning("notify.macos is on but osascript was not found")
    if cfg.notify.webhook_url:
        channels.append(WebhookNotifier(cfg.notify.webhook_url))
    if not channels:
        return NullNotifier()
    return channels[0] if len(channels) == 1 else MultiNotifier(channels)
