"""Parse ACE-Step's training progress text.

ACE-Step f30aee4 has U+FFFD mojibake in place of many emoji (CONTRACT §2, Risks 9), so
everything here matches on words and numbers, never on emoji.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_STEP = re.compile(r"Epoch\s+(\d+)\s*/\s*(\d+)\s*,\s*Step\s+(\d+)\s*,\s*Loss:\s*"
                   r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)", re.IGNORECASE)
_EPOCH = re.compile(r"Epoch\s+(\d+)\s*/\s*(\d+)", re.IGNORECASE)
_LOSS = re.compile(r"Loss:\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|nan|inf)",
                   re.IGNORECASE)
_ETA = re.compile(r"ETA:\s*~?\s*([^|\n]+)")
_FAIL = re.compile(r"training failed|error:|module not found|traceback|rejected unsafe",
                   re.IGNORECASE)
_DONE = re.compile(r"training complete", re.IGNORECASE)
_STOP = re.compile(r"training stopped|\bstopped\b", re.IGNORECASE)


@dataclass
class TrainingProgress:
    epoch: int | None
    epochs: int | None
    step: int | None
    loss: float | None
    eta: str | None
    text: str


def _last(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    found = None
    for match in pattern.finditer(text):
        found = match
    return found


def parse_progress(text: str) -> TrainingProgress | None:
    """The latest epoch/step/loss/ETA in ``text``; None when it holds no progress at all."""
    if not text:
        return None
    step = _last(_STEP, text)
    eta_m = _last(_ETA, text)
    eta = eta_m.group(1).strip() if eta_m else None
    if step:
        return TrainingProgress(int(step.group(1)), int(step.group(2)), int(step.group(3)),
                                float(step.group(4)), eta, text)
    epoch = _last(_EPOCH, text)
    if not epoch:
        return None
    loss = _last(_LOSS, text)
    return TrainingProgress(int(epoch.group(1)), int(epoch.group(2)), None,
                            float(loss.group(1)) if loss else None, eta, text)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def is_failure(text: str) -> bool:
    """ACE-Step's own rule: status starts with ❌ or mentions training failed/error:/module not
    found. Only the first line decides about ❌, because the log echoes old lines."""
    if not text:
        return False
    first = _first_line(text).lstrip("\ufffd ")
    return _first_line(text).startswith("❌") or first.startswith("❌") or bool(_FAIL.search(text))


def is_completed(text: str) -> bool:
    return bool(text) and bool(_DONE.search(text)) and not is_failure(text)


def is_stopped(text: str) -> bool:
    return bool(text) and bool(_STOP.search(text)) and not is_completed(text)
