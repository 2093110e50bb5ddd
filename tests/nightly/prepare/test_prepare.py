"""prepare: staging -> dataset.json -> incremental preprocessing -> sanitizing, end to end.

Real parts throughout: real MP3s (ffmpeg), a real SQLite ledger, ACE-Step's preprocessing
played by the SIMULATOR stand-in running in a real child process (``[acestep] python`` =
this interpreter), and the sanitizer in its own child process. Ledger rows are inserted the way
ingest leaves them ('stubbed'), so these tests do not depend on the watcher.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from acewatchd.acestep.dataset_json import read_dataset_json
from acewatchd.config.load import load_config
from acewatchd.config.schema import Config
from acewatchd.demo.audiogen import make_mp3
from acewatchd.errors import AcewatchdError
from acewatchd.ledger.db import Ledger
from acewatchd.nightly.prepare.prepare import PrepareResult, dataset_content_hash, prepare_dataset
from acewatchd.simulator.stub_acestep import calls, install, set_faults
from acewatchd.util.files import sha256_file

DS = "kim"
SIX_KEYS = {"target_latents", "attention_mask", "encoder_hidden_states",
            "encoder_attention_mask", "context_latents", "metadata"}


@dataclass
class PHome:
    root: Path
    ace: Path
    cfg: Config
    ledger: Ledger

    @property
    def drop(self) -> Path:
        return self.cfg.paths.drop / DS

    @property
    def tensors(self) -> Path:
        return self.ace / "datasets" / "acewatchd" / DS / "tensors"

    def add_song(self, name: str, freq: float, *, caption: str = "", lyrics: str = "",
                 seconds: float = 6.0) -> str:
        """A real MP3 with its two sidecars, recorded as ingest leaves it: state 'stubbed'."""
        audio = make_mp3(self.drop / name, seconds=seconds, freq=freq)
        stem = audio.stem
        (self.drop / f"{stem}.caption.txt").write_text(caption or f"{stem} caption\n", "utf-8")
        (self.drop / f"{stem}.lyrics.txt").write_text(lyrics or "[Instrumental]\n", "utf-8")
        self.record(name, seconds)
        return sha256_file(audio)

    def record(self, relpath: str, seconds: float = 6.0) -> None:
        path = self.drop / relpath
        st = os.lstat(path)
        sha = sha256_file(path) if path.is_file() and not path.is_symlink() else "0" * 64
        with self.ledger.tx() as conn:
            conn.execute("INSERT OR REPLACE INTO files (dataset, relpath, size, mtime_ns, inode,"
                         " sha256, state, duration, first_seen, updated) VALUES (?, ?, ?, ?, ?, "
                         "?, 'stubbed', ?, ?, ?)", (DS, relpath, st.st_size, st.st_mtime_ns,
                                                    st.st_ino, sha, seconds, time.time(),
                                                    time.time()))

    def forget(self, relpath: str) -> None:
        with self.ledger.tx() as conn:
            conn.execute("DELETE FROM files WHERE dataset=? AND relpath=?", (DS, relpath))

    def prepare(self) -> PrepareResult:
        return prepare_dataset(self.cfg, self.ledger, DS)

    def report(self) -> dict:
        return json.loads((self.ace / "datasets" / "acewatchd" / DS / "report.json").read_text())


def config_text(ace: Path, extra: str = "") -> str:
    return (f'[acestep]\nroot = "{ace}"\npython = "{sys.executable}"\n'
            f'[datasets.{DS}]\ntag = "kim kyung ho"\nlanguage = "ko"\n{extra}')


@pytest.fixture
def ph(tmp_path: Path) -> PHome:
    ace = tmp_path / "ace"
    install(ace)
    (tmp_path / "config.toml").write_text(config_text(ace), "utf-8")
    cfg = load_config(tmp_path / "config.toml")
    ledger = Ledger(cfg.paths.state)
    try:
        yield PHome(tmp_path, ace, cfg, ledger)
    finally:
        ledger.close()


def five(ph: PHome) -> list[str]:
    return [ph.add_song(f"song{i}.mp3", 300 + 70 * i) for i in range(5)]


def load_like_acestep(tensor_dir: Path) -> list[dict]:
    """CONTRACT §6: the manifest's paths, each read with plain torch.load(weights_only=True)."""
    manifest = json.loads((tensor_dir / "manifest.json").read_text())
    out = []
    for path in manifest["samples"]:
        data = torch.load(path, map_location="cpu", weights_only=True)
        assert set(data) == SIX_KEYS
        for key in SIX_KEYS - {"metadata"}:
            assert torch.isfinite(data[key]).all(), (path, key)
        out.append(data)
    assert manifest["num_samples"] == len(out)
    return out


def test_five_songs_become_five_clean_tensors(ph: PHome) -> None:
    shas = five(ph)
    result = ph.prepare()
    assert (result.samples_ok, result.preprocessed, result.excluded) == (5, 5, [])
    assert result.tensor_dir == ph.tensors
    assert result.tensor_dir_rel == f"./datasets/acewatchd/{DS}/tensors"
    assert sorted(p.name for p in ph.tensors.glob("*.pt")) == sorted(f"{s[:16]}.pt" for s in shas)
    assert ph.report()["summary"] == {"clean": 5}
    assert [sorted(c["stems"]) for c in calls(ph.ace)] == [sorted(s[:16] for s in shas)]
    loaded = load_like_acestep(ph.tensors)
    assert len(loaded) == 5
    assert all(d["target_latents"].dtype == torch.float16 for d in loaded)  # sim auto = MPS


def test_second_prepare_with_nothing_changed_does_no_work(ph: PHome) -> None:
    five(ph)
    first = ph.prepare()
    mtimes = {p: p.stat().st_mtime_ns for p in ph.tensors.glob("*.pt")}
    again = ph.prepare()
    assert len(calls(ph.ace)) == 1
    assert again.preprocessed == 0 and again.samples_ok == 5
    assert again.content_hash == first.content_hash
    assert {p: p.stat().st_mtime_ns for p in ph.tensors.glob("*.pt")} == mtimes


def test_adding_one_song_preprocesses_exactly_that_song(ph: PHome) -> None:
    five(ph)
    before = ph.prepare()
    new = ph.add_song("song_new.mp3", 1234)
    result = ph.prepare()
    log = calls(ph.ace)
    assert len(log) == 2 and log[1]["stems"] == [new[:16]]
    assert (result.samples_ok, result.preprocessed) == (6, 1)
    assert result.content_hash != before.content_hash
    assert len(load_like_acestep(ph.tensors)) == 6


def test_editing_one_caption_reprocesses_that_sample_alone(ph: PHome) -> None:
    shas = five(ph)
    ph.prepare()
    before_hash = dataset_content_hash(ph.cfg, ph.ledger, DS)
    (ph.drop / "song2.caption.txt").write_text("power ballad, screaming guitar\n", "utf-8")
    assert dataset_content_hash(ph.cfg, ph.ledger, DS) != before_hash
    result = ph.prepare()
    assert calls(ph.ace)[-1]["stems"] == [shas[2][:16]] and len(calls(ph.ace)) == 2
    assert result.preprocessed == 1
    data = torch.load(ph.tensors / f"{shas[2][:16]}.pt", weights_only=True)
    assert "power ballad, screaming guitar" in data["metadata"]["caption"]
    doc = read_dataset_json(ph.ace / "datasets" / "acewatchd" / DS / "dataset.json")
    assert doc["samples"][[s["id"] for s in doc["samples"]].index(shas[2][:8])]["caption"] == \
        "power ballad, screaming guitar"


def test_rename_in_drop_does_no_work_and_duplicates_stage_once(ph: PHome) -> None:
    shas = five(ph)
    ph.prepare()
    staged = ph.ace / "datasets" / "acewatchd" / DS / "audio"
    inodes = {p.name: p.stat().st_ino for p in staged.iterdir()}
    for suffix in (".mp3", ".caption.txt", ".lyrics.txt"):
        os.rename(ph.drop / f"song1{suffix}", ph.drop / f"renamed{suffix}")
    ph.forget("song1.mp3")
    ph.record("renamed.mp3")
    # the same song dropped a second time under another name
    (ph.drop / "copy.mp3").write_bytes((ph.drop / "song3.mp3").read_bytes())
    for kind in ("caption", "lyrics"):
        (ph.drop / f"copy.{kind}.txt").write_text("other text\n", "utf-8")
    ph.record("copy.mp3")
    hash_before = dataset_content_hash(ph.cfg, ph.ledger, DS)
    result = ph.prepare()
    assert len(calls(ph.ace)) == 1 and result.samples_ok == 5
    assert {p.name: p.stat().st_ino for p in staged.iterdir()} == inodes
    assert sorted(inodes) == sorted(f"{s[:16]}.mp3" for s in shas)
    assert result.content_hash == hash_before


def test_song_removed_from_drop_is_unstaged_and_left_out(ph: PHome) -> None:
    shas = five(ph)
    ph.prepare()
    for suffix in (".mp3", ".caption.txt", ".lyrics.txt"):
        (ph.drop / f"song4{suffix}").unlink()
    ph.forget("song4.mp3")
    result = ph.prepare()
    staged = ph.ace / "datasets" / "acewatchd" / DS / "audio"
    assert not (staged / f"{shas[4][:16]}.mp3").exists()
    assert not (ph.tensors / f"{shas[4][:16]}.pt").exists()
    assert result.samples_ok == 4 and len(load_like_acestep(ph.tensors)) == 4
    assert len(calls(ph.ace)) == 1


def test_nan_in_padding_rows_is_repaired_in_place(ph: PHome) -> None:
    set_faults(ph.ace, {"nan_padding": ["*"]})
    five(ph)
    result = ph.prepare()
    report = ph.report()
    assert report["summary"] == {"repaired": 5}
    for entry in report["files"]:
        assert set(entry["keys"]) == {"target_latents", "encoder_hidden_states"}
        assert entry["values"] > 0
    for data in load_like_acestep(ph.tensors):
        mask = data["attention_mask"]
        assert data["target_latents"].shape == (192, 64) and mask.shape == (192,)
        assert data["context_latents"].shape == (192, 128)
        assert data["encoder_hidden_states"].shape == (768, 2048)
        assert {data[k].dtype for k in SIX_KEYS - {"metadata"}} == {torch.float16}
        assert (data["target_latents"][mask == 0] == 0).all()
        assert (data["target_latents"][mask == 1] != 0).any()
    assert result.samples_ok == 5
    mtimes = {p: p.stat().st_mtime_ns for p in ph.tensors.glob("*.pt")}
    ph.prepare()  # repaired files are clean now: never rewritten again
    assert {p: p.stat().st_mtime_ns for p in ph.tensors.glob("*.pt")} == mtimes
    assert ph.report()["summary"] == {"clean": 5}


def test_nan_in_content_rows_gets_one_fp32_rerun_that_fixes_it(ph: PHome) -> None:
    shas = five(ph)
    set_faults(ph.ace, {"nan_content": [shas[0][:16]], "nan_content_fp16_only": True})
    result = ph.prepare()
    log = calls(ph.ace)
    assert len(log) == 2 and log[1]["stems"] == [shas[0][:16]]
    assert log[1]["precision"] == "fp32"
    statuses = {e["sha256"]: e["status"] for e in ph.report()["files"]}
    assert statuses[shas[0]] == "re-preprocessed"
    assert result.samples_ok == 5 and result.excluded == []
    fixed = torch.load(ph.tensors / f"{shas[0][:16]}.pt", weights_only=True)
    assert fixed["target_latents"].dtype == torch.float32
    ph.prepare()
    assert len(calls(ph.ace)) == 2  # the fp32 tensor is current: no more work


def test_nan_in_content_rows_that_persists_is_excluded(ph: PHome) -> None:
    shas = five(ph)
    bad = shas[1][:16]
    set_faults(ph.ace, {"nan_content": [bad], "nan_content_fp16_only": False})
    result = ph.prepare()
    log = calls(ph.ace)
    assert len(log) == 2 and log[1]["stems"] == [bad] and log[1]["precision"] == "fp32"
    assert result.excluded == ["song1.mp3"] and result.samples_ok == 4
    entry = next(e for e in ph.report()["files"] if e["sha256"] == shas[1])
    assert entry["status"] == "excluded" and "attention_mask" in entry["reason"]
    manifest = json.loads((ph.tensors / "manifest.json").read_text())
    assert not any(bad in p for p in manifest["samples"])
    assert not (ph.tensors / f"{bad}.pt").exists()
    assert (ph.tensors / "excluded" / f"{bad}.pt").exists()
    assert len(load_like_acestep(ph.tensors)) == 4
    events = ph.ledger.connect().execute(
        "SELECT message FROM events WHERE subject='song1.mp3'").fetchall()
    assert any("excluded" in e[0] for e in events)
    again = ph.prepare()  # judged once for these inputs: no retry every night
    assert len(calls(ph.ace)) == 2 and again.excluded == ["song1.mp3"]


def test_failing_file_is_marked_failed_and_others_go_on(ph: PHome) -> None:
    shas = five(ph)
    set_faults(ph.ace, {"fail": [shas[3][:16]]})
    (ph.tensors).mkdir(parents=True)
    (ph.tensors / "leftover.tmp.pt").write_bytes(b"half a file")
    result = ph.prepare()
    assert result.samples_ok == 4 and result.excluded == ["song3.mp3"]
    entry = next(e for e in ph.report()["files"] if e["sha256"] == shas[3])
    assert entry["status"] == "failed" and "injected failure" in entry["reason"]
    assert not list(ph.tensors.glob("*.tmp.pt")) and not list(ph.tensors.glob(".*"))
    row = ph.ledger.connect().execute("SELECT status, reason FROM samples WHERE sha256=?",
                                      (shas[3],)).fetchone()
    assert row["status"] == "failed" and "injected failure" in row["reason"]
    set_faults(ph.ace, {})
    healed = ph.prepare()  # a failed sample is tried again next time
    assert healed.samples_ok == 5 and calls(ph.ace)[-1]["stems"] == [shas[3][:16]]


def test_dataset_json_follows_the_contract(ph: PHome) -> None:
    shas = five(ph)
    (ph.drop / "song0.lyrics.txt").write_text("첫 줄\n둘째 줄\n", "utf-8")
    ph.prepare()
    doc = read_dataset_json(ph.ace / "datasets" / "acewatchd" / DS / "dataset.json")
    meta = doc["metadata"]
    assert (meta["name"], meta["custom_tag"], meta["num_samples"]) == (DS, "kim kyung ho", 5)
    by_id = {s["id"]: s for s in doc["samples"]}
    assert set(by_id) == {s[:8] for s in shas}
    for sample in doc["samples"]:
        assert sample["labeled"] is True and sample["custom_tag"] == "kim kyung ho"
        assert Path(sample["audio_path"]).is_relative_to(ph.ace)
        assert Path(sample["audio_path"]).name == sample["filename"]
        assert sample["duration"] == 6 and sample["language"] == "ko"
    vocal = by_id[shas[0][:8]]
    assert vocal["lyrics"] == vocal["raw_lyrics"] == "첫 줄\n둘째 줄"
    assert vocal["is_instrumental"] is False
    inst = by_id[shas[1][:8]]
    assert (inst["lyrics"], inst["raw_lyrics"], inst["is_instrumental"]) == \
        ("[Instrumental]", "", True)


@pytest.mark.parametrize("edited", ["Instrumental\n", "(instrumental)\n", "연주곡\n",
                                    "[00:00.00]纯音乐，请欣赏\n"])
def test_a_stub_edited_to_say_instrumental_is_an_instrumental(ph: PHome, edited: str) -> None:
    shas = five(ph)
    (ph.drop / "song0.lyrics.txt").write_text(edited, "utf-8")
    (ph.drop / "song2.lyrics.txt").write_text("Instrumental break\nla la\n", "utf-8")
    ph.prepare()
    doc = read_dataset_json(ph.ace / "datasets" / "acewatchd" / DS / "dataset.json")
    by_id = {s["id"]: s for s in doc["samples"]}
    edited_entry, sung = by_id[shas[0][:8]], by_id[shas[2][:8]]
    assert (edited_entry["lyrics"], edited_entry["is_instrumental"]) == ("[Instrumental]", True)
    assert (sung["lyrics"], sung["is_instrumental"]) == ("Instrumental break\nla la", False)


def test_strict_reader_rejects_unknown_and_missing_fields(ph: PHome, tmp_path: Path) -> None:
    five(ph)
    ph.prepare()
    good = json.loads((ph.ace / "datasets" / "acewatchd" / DS / "dataset.json").read_text())
    cases = [("samples", 0, "extra_field", 1, "unknown field"),
             ("metadata", None, "bogus", True, "unknown field"),
             ("samples", 0, "bpm", "120", "wrong type"),
             ("samples", 0, "labeled", 1, "wrong type"),
             ("samples", 0, "id", "xyz", "8 lowercase hex")]
    for section, index, key, value, message in cases:
        doc = json.loads(json.dumps(good))
        target = doc[section] if index is None else doc[section][index]
        target[key] = value
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(doc))
        with pytest.raises(AcewatchdError, match=message):
            read_dataset_json(path)
    doc = json.loads(json.dumps(good))
    del doc["samples"][2]["caption"]
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(AcewatchdError, match=r"samples\[2\]\.caption: missing"):
        read_dataset_json(tmp_path / "bad.json")


def test_symlinks_in_drop_are_never_followed(ph: PHome, tmp_path: Path) -> None:
    five(ph)
    outside = make_mp3(tmp_path / "outside" / "secret.mp3", seconds=6, freq=999)
    (ph.drop / "link.mp3").symlink_to(outside)
    (ph.drop / "link.caption.txt").write_text("x", "utf-8")
    (ph.drop / "link.lyrics.txt").write_text("x", "utf-8")
    ph.record("link.mp3")
    (tmp_path / "elsewhere").mkdir()
    (ph.drop / "sub").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    make_mp3(tmp_path / "elsewhere" / "deep.mp3", seconds=6, freq=777)
    ph.record("sub/deep.mp3")
    result = ph.prepare()
    assert result.samples_ok == 5
    staged = ph.ace / "datasets" / "acewatchd" / DS / "audio"
    assert sha256_file(outside)[:16] not in {p.stem for p in staged.iterdir()}
    events = [r[0] for r in ph.ledger.connect().execute("SELECT message FROM events")]
    assert sum("symlink" in e for e in events) == 2


def test_no_valid_samples_and_missing_python_are_clear_errors(ph: PHome, tmp_path: Path) -> None:
    with pytest.raises(AcewatchdError, match="no valid songs"):
        ph.prepare()
    five(ph)
    (tmp_path / "config.toml").write_text(config_text(ph.ace).replace(
        sys.executable, str(tmp_path / "nope" / "python")), "utf-8")
    cfg = load_config(tmp_path / "config.toml")
    with pytest.raises(AcewatchdError, match="ACE-Step's python not found"):
        prepare_dataset(cfg, ph.ledger, DS)


def test_staging_finds_nfd_names_and_copies_across_filesystems(ph: PHome, monkeypatch) -> None:
    import errno
    import unicodedata

    from acewatchd.nightly.prepare import staging

    nfd = unicodedata.normalize("NFD", "노래")
    make_mp3(ph.drop / f"{nfd}.mp3", seconds=6, freq=515)
    (ph.drop / f"{nfd}.caption.txt").write_text("한국 발라드\n", "utf-8")
    (ph.drop / f"{nfd}.lyrics.txt").write_text("[Instrumental]\n", "utf-8")
    st = (ph.drop / f"{nfd}.mp3").stat()
    with ph.ledger.tx() as conn:  # ingest records NFC relpaths whatever the disk holds
        conn.execute("INSERT INTO files (dataset, relpath, size, mtime_ns, sha256, state, "
                     "first_seen, updated) VALUES (?, ?, ?, ?, ?, 'stubbed', 0, 0)",
                     (DS, "노래.mp3", st.st_size, st.st_mtime_ns,
                      sha256_file(ph.drop / f"{nfd}.mp3")))
    samples, problems = staging.collect_samples(ph.cfg, ph.ledger, DS)
    assert problems == [] and [s.caption for s in samples] == ["한국 발라드"]

    def no_link(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EXDEV, "cross-device link")

    monkeypatch.setattr(staging.os, "link", no_link)
    [staged] = staging.stage(ph.cfg, DS, samples)
    assert staged.stat().st_ino != st.st_ino
    assert sha256_file(staged) == samples[0].sha256
    assert not [p for p in staged.parent.iterdir() if p.name.startswith(".")]


def test_changed_or_undecodable_sidecars_are_skipped_with_a_reason(ph: PHome) -> None:
    from acewatchd.nightly.prepare import staging

    five(ph)
    (ph.drop / "song0.caption.txt").write_bytes(b"\xff\xfe\x00bad")
    with open(ph.drop / "song1.mp3", "ab") as fh:
        fh.write(b"\0" * 10)  # changed after ingest hashed it
    (ph.drop / "song2.lyrics.txt").unlink()
    samples, problems = staging.collect_samples(ph.cfg, ph.ledger, DS)
    assert len(samples) == 2
    text = "\n".join(problems)
    assert "song0.mp3: song0.caption.txt is not UTF-8" in text
    assert "song1.mp3: changed since it was checked" in text
    assert "song2.mp3: song2.lyrics.txt: not found in the drop folder" in text


def test_stop_event_ends_the_child_and_leaves_nothing_behind(ph: PHome) -> None:
    import threading

    five(ph)
    stop = threading.Event()
    stop.set()  # acewatchd is shutting down while preprocessing runs
    with pytest.raises(AcewatchdError, match="interrupted"):
        prepare_dataset(ph.cfg, ph.ledger, DS, stop=stop)
    assert not list(ph.tensors.glob("*.pt")) and not list(ph.tensors.glob(".*"))
    assert ph.prepare().samples_ok == 5  # the next run does the work


def test_acestep_that_cannot_run_is_a_clear_error(ph: PHome) -> None:
    five(ph)
    # A broken install: its package raises on import (e.g. a dependency missing from its venv).
    (ph.ace / "acestep" / "__init__.py").write_text("raise ImportError('torchaudio is missing')\n")
    with pytest.raises(AcewatchdError, match=r"exited with 1 .*torchaudio is missing"):
        ph.prepare()
    assert not list(ph.tensors.glob(".*"))


def test_acestep_without_training_v2_is_refused_before_any_work(ph: PHome) -> None:
    import shutil

    five(ph)
    shutil.rmtree(ph.ace / "acestep" / "training_v2")  # ACE-Step before c4cdd99 (S)
    with pytest.raises(AcewatchdError, match=r"too old.*training_v2.*update ACE-Step"):
        ph.prepare()
    assert not (ph.ace / "datasets" / "acewatchd" / DS).exists()  # nothing staged


@pytest.mark.parametrize("name", ["../../x", "/etc", "a/b", ".hidden", ""])
def test_a_dataset_name_that_is_not_a_folder_name_is_refused(ph: PHome, name: str) -> None:
    with pytest.raises(AcewatchdError, match="not a dataset name"):
        prepare_dataset(ph.cfg, ph.ledger, name)
    assert not (ph.ace / "datasets").exists() and not (ph.root / "x").exists()


def test_a_hangul_dataset_in_an_nfd_folder_is_staged_under_its_safe_name(ph: PHome) -> None:
    """macOS (and a copy from it) may store the folder name decomposed; the ledger and config
    use NFC. Prepare finds the folder and stages into ACE-Step's folder under the safe name."""
    import unicodedata

    from acewatchd.acestep.layout import safe_name

    name = "김경호"
    folder = ph.cfg.paths.drop / unicodedata.normalize("NFD", name)
    audio = make_mp3(folder / "노래.mp3", seconds=6.0, freq=330)
    (folder / "노래.caption.txt").write_text("ballad\n", "utf-8")
    (folder / "노래.lyrics.txt").write_text("[Instrumental]\n", "utf-8")
    st = os.lstat(audio)
    with ph.ledger.tx() as conn:
        conn.execute("INSERT INTO files (dataset, relpath, size, mtime_ns, inode, sha256, state,"
                     " duration, first_seen, updated) VALUES (?, ?, ?, ?, ?, ?, 'stubbed', 6.0,"
                     " ?, ?)", (name, "노래.mp3", st.st_size, st.st_mtime_ns, st.st_ino,
                                sha256_file(audio), time.time(), time.time()))
    result = prepare_dataset(ph.cfg, ph.ledger, name)
    assert result.samples_ok == 1 and not result.excluded
    root = ph.ace / "datasets" / "acewatchd"
    assert [p.name for p in root.iterdir()] == [safe_name(name)]
    doc = read_dataset_json(root / safe_name(name) / "dataset.json")
    assert doc["metadata"]["name"] == name and doc["samples"][0]["caption"] == "ballad"


def test_a_song_whose_content_is_another_format_is_staged_under_the_contents_extension(
        ph: PHome) -> None:
    from acewatchd.nightly.prepare import staging
    from tests.support.audiofiles import make_audio

    make_audio(ph.drop / "itunes.mp3", "m4a")  # an M4A under an mp3 name
    make_mp3(ph.drop / "plain.mp3", seconds=6, freq=515)
    for name in ("itunes", "plain"):
        (ph.drop / f"{name}.caption.txt").write_text("ballad\n", "utf-8")
        (ph.drop / f"{name}.lyrics.txt").write_text("[Instrumental]\n", "utf-8")
        ph.record(f"{name}.mp3")
    samples, problems = staging.collect_samples(ph.cfg, ph.ledger, DS)
    assert problems == []
    staged = {s.relpath: p for s, p in zip(samples, staging.stage(ph.cfg, DS, samples),
                                            strict=True)}
    assert staged["itunes.mp3"].suffix == ".m4a" and staged["plain.mp3"].suffix == ".mp3"
    assert sha256_file(staged["itunes.mp3"]) == sha256_file(ph.drop / "itunes.mp3")
