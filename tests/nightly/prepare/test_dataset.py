"""dataset.json carries the trigger tag so that ACE-Step's prompt holds it exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from acewatchd.config.schema import Dataset
from acewatchd.nightly.prepare.dataset import build, untagged
from acewatchd.nightly.prepare.staging import SourceSample

TAG = "kim kyung ho"


def acestep_prompt(entry: dict[str, object], tag_position: str) -> str:
    """The training prompt as ACE-Step builds it from a dataset.json sample (CONTRACT §9c:
    get_training_prompt / build_simple_prompt add custom_tag whatever the caption holds)."""
    text, tag = str(entry["caption"]), str(entry["custom_tag"])
    if tag_position == "prepend":
        return f"{tag}, {text}" if text else tag
    if tag_position == "append":
        return f"{text}, {tag}" if text else tag
    return tag


def sample(tmp_path: Path, caption: str) -> SourceSample:
    audio = tmp_path / "song.mp3"
    audio.write_bytes(b"not audio: tags cannot be read, the dataset settings are used")
    return SourceSample(dataset="kim", relpath="song.mp3", source=audio, sha256="ab" * 32,
                        caption=caption, lyrics="[Verse]\nla la", duration=30.0)


@pytest.mark.parametrize("position", ["prepend", "append", "replace"])
@pytest.mark.parametrize("caption", [
    f"{TAG}, Korean power rock ballad, 1990s",        # the stub acewatchd writes (prepend)
    f"Korean power rock ballad, 1990s, {TAG}",        # an append-style caption
    "Korean power rock ballad, Kim  Kyung Ho, 1990s",  # the user's own spelling, mid-caption
    "Korean power rock ballad, 1990s",                 # no tag at all
])
def test_prompt_holds_the_tag_once(tmp_path: Path, position: str, caption: str) -> None:
    ds = Dataset(tag=TAG, tag_position=position, genre="ballad")  # type: ignore[arg-type]
    s = sample(tmp_path, caption)
    doc = build("kim", ds, [s], [s.source])
    entry = doc["samples"][0]
    prompt = acestep_prompt(entry, doc["metadata"]["tag_position"])
    assert prompt.casefold().count(TAG) == 1, prompt
    assert entry["custom_tag"] == TAG
    if position != "replace":
        assert "Korean power rock ballad" in prompt  # the caption itself is kept


def test_untagged_keeps_text_that_only_contains_the_tag_words() -> None:
    assert untagged(f"{TAG}, rock", TAG) == "rock"
    assert untagged("songs like kim kyung ho's", TAG) == "songs like kim kyung ho's"
    assert untagged("rock, ballad", "") == "rock, ballad"
