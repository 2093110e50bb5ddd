"""kill -9 the real daemon at random moments during a 300-file ingest, at least 10 times.
Afterwards every valid file is stubbed exactly once, no stub is half-written, no edit is lost."""

from __future__ import annotations

import random
import shutil
import time
from pathlib import Path

import pytest

from acewatchd.config.load import load_config
from acewatchd.demo.audiogen import SongTags, make_mp3, write_id3
from acewatchd.ingest.stubs import caption_text, lyrics_text
from acewatchd.ingest.tags import read_audio
from acewatchd.util.files import sha256_file
from tests.support.home import Home
from tests.support.home import ledger_rows as rows
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow
N_FILES, N_BAD, KILLS = 300, 12, 12
DATASETS = ("kim_kyungho", "ambient", "third")


def make_corpus(tmp_path: Path) -> list[Path]:
    """300 distinct MP3s (a few ffmpeg encodes, re-tagged so every file has its own hash)
    plus a few text files named .mp3."""
    bases = [make_mp3(tmp_path / f"base{k}.mp3", seconds=3, freq=300 + 50 * k) for k in range(6)]
    out = []
    for i in range(N_FILES):
        dest = tmp_path / "corpus" / DATASETS[i % 3] / f"곡 {i:03d}.mp3"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bases[i % len(bases)], dest)
        write_id3(dest, SongTags(title=f"노래 {i}", artist="가수" if i % 2 else "",
                                 year=str(1970 + i % 50), lyrics=f"가사 {i}" if i % 4 == 0 else ""))
        out.append(dest)
    for i in range(N_BAD):
        bad = tmp_path / "corpus" / DATASETS[i % 3] / f"bad {i}.mp3"
        bad.write_text("not audio at all\n" * (i + 1), encoding="utf-8")
        out.append(bad)
    return out


def test_kill_nine_during_ingest(home: Home, run_daemon, tmp_path: Path) -> None:
    rng = random.Random(1234)
    corpus = make_corpus(tmp_path)
    rng.shuffle(corpus)
    pending = list(corpus)
    edits: dict[Path, str] = {}
    for cycle in range(KILLS):
        daemon = run_daemon()
        for src in pending[:40]:  # more songs arrive while it runs
            dest = home.drop / src.parent.name / src.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
        del pending[:40]
        time.sleep(rng.uniform(0.3, 1.8))  # a random moment to kill at (not a wait-for)
        captions = sorted(home.drop.rglob("*.caption.txt"))
        if captions and cycle % 3 == 1:  # the user edits a stub mid-ingest
            victim = rng.choice(captions)
            victim.write_text(f"edited in cycle {cycle}, 내가 씀\n", encoding="utf-8")
            edits[victim] = victim.read_text("utf-8")
        daemon.kill9()
    for src in pending:
        dest = home.drop / src.parent.name / src.name
        shutil.copyfile(src, dest)

    final = run_daemon()
    valid = [p for p in corpus if p.name.startswith("곡")]
    wait_until(lambda: len(rows(home, "SELECT 1 FROM files WHERE state='stubbed'")) == N_FILES
               and len(rows(home, "SELECT 1 FROM files WHERE state='rejected'")) == N_BAD,
               240, 0.5, "all files finished after the kills")
    assert final.stop() == 0

    assert len(edits) >= 3
    for stub, text in edits.items():
        assert stub.read_text("utf-8") == text  # no lost edit
    cfg = load_config(home.config)
    stub_rows = {(r["relpath"], r["kind"]): r for r in rows(home, "SELECT * FROM stubs")}
    for src in valid:
        audio = home.drop / src.parent.name / src.name
        assert sha256_file(audio) == sha256_file(src)
        siblings = sorted(p.name for p in audio.parent.iterdir()
                          if p.name.startswith(audio.stem + "."))
        assert siblings == [f"{audio.stem}.caption.txt", f"{audio.stem}.lyrics.txt",
                            audio.name]  # exactly once
        info = read_audio(audio)
        ds = cfg.dataset(src.parent.name)
        for kind, want in (("caption", caption_text(info, ds, audio.stem)),
                           ("lyrics", lyrics_text(info, ds))):
            path = audio.with_name(f"{audio.stem}.{kind}.txt")
            text = path.read_text("utf-8")
            assert text == want or edits.get(path) == text, path  # whole, never half-written
            if text == want:
                assert (audio.name, kind) in stub_rows, path
    for bad in (p for p in corpus if p.name.startswith("bad")):
        assert (home.rejected / bad.parent.name / f"{bad.name}.reason.txt").exists()
        assert not (home.drop / bad.parent.name / f"{bad.stem}.caption.txt").exists()
    leftovers = list(home.drop.rglob(".acewatchd-tmp-*"))
    assert leftovers == []
    assert len(rows(home, "SELECT 1 FROM files")) == N_FILES + N_BAD
