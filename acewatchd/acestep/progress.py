"""Parse ACE-Step's status and training progress text.

ACE-Step S and V1 have U+FFFD mojibake in place of many emoji, and their handler errors start
with it instead of ❌ and carry no "Error:" (CONTRACT §9b), so everything here matches on words
and numbers, never on emoji alone. Whether a *training* finished is not decided here: a stopped
training also ends with "Training completed!" (the run folder tells, see nightly/train).
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
# Handler errors worded without "Error:" (S/V1 prefix them with U+FFFD, V2 with ❌).
_ERROR_PHRASES = re.compile(
    r"^(directory not found|tensor directory not found|no \.pt tensor files found|"
    r"model not (fully )?initialized|no trained model found|export failed|lora path not found|"
    r"adapter name already in use|no lora adapter loaded|failed to )", re.IGNORECASE)
# "⚠️ Checkpoint path not found: …, starting fresh" and its kin (unsafe path, failed load).
_RESUME_IGNORED = re.compile(r"checkpoint.*starting fresh", re.IGNORECASE)


def _mojibake(text: str) -> str:
    """``text``'s UTF-8 bytes read as cp1252 (latin-1 where cp1252 has no character): how V1's
    handlers spell their emoji ("❌" becomes "â\x9dŒ"); S lost them to U+FFFD instead."""
    return "".join(chr(b) if b in (0x81, 0x8D, 0x8F, 0x90, 0x9D) else bytes([b]).decode("cp1252")
                   for b in text.encode("utf-8"))


_EMOJI = ("❌", "✅", "⚠️", "⚠", "ℹ️", "ℹ", "⏹️", "⏹", "🚀", "📂", "💾", "🎉", "⏱️", "🔄", "🔢",
          "🏷️")
_CROSSES = ("❌", _mojibake("❌"), "\u00e2\u0152")  # the last: cp1252 dropping 0x9D
# A line marked as a warning or a note is never an error ("⚠️ No LoRA adapter loaded.").
_NOTES = tuple(m for e in ("⚠", "ℹ") for m in (e, _mojibake(e)))
# Status marks in every spelling the real versions use, longest first (stripped before words).
_MARKS = tuple(sorted({m for e in _EMOJI for m in (e, _mojibake(e))} | {"\ufffd", "\ufe0f"},
                      key=len, reverse=True))


def readable(text: str) -> str:
    """``text`` with V1's mojibake emoji put back ("â\x9dŒ Directory…" -> "❌ Directory…"), for
    messages a user reads; the server's words are kept as they are."""
    for emoji in sorted(_EMOJI, key=len, reverse=True):
        text = text.replace(_mojibake(emoji), emoji)
    return text.replace("\u00e2\u0152", "❌")


def _words(line: str) -> str:
    """The line without its leading status marks (emoji, mojibake, U+FFFD) and spaces."""
    line = line.strip()
    while True:
        mark = next((m for m in _MARKS if line.startswith(m)), None)
        if mark is None:
            return line
        line = line[len(mark):].lstrip()
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
    """ACE-Step's own rule (status starts with ❌ or mentions training failed/error:/module not
    found) plus the handler errors the real versions word without either (CONTRACT §9b). Only
    the first line decides about ❌ and those phrases, because the log echoes old lines."""
    if not text:
        return False
    first = _first_line(text)
    if first.lstrip("\ufffd\ufe0f ").startswith(_CROSSES):
        return True
    if first.lstrip().startswith(_NOTES):
        return False
    return bool(_ERROR_PHRASES.match(_words(first))) or bool(_FAIL.search(text))


def resume_ignored(text: str) -> bool:
    """"⚠️ Checkpoint path not found: …, starting fresh": ACE-Step did not resume."""
    return bool(text) and bool(_RESUME_IGNORED.search(text))


def is_completed(text: str) -> bool:
    return bool(text) and bool(_DONE.search(text)) and not is_failure(text)


def is_stopped(text: str) -> bool:
    return bool(text) and bool(_STOP.search(text)) and not is_completed(text)
