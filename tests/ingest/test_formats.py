"""Formats: real files made by ffmpeg in every format a drop folder meets, judged by content
(ingest.formats, validate) and, when their extension is not taken, skipped with the fix
(Ingestor.scan), never dropped in silence."""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from acewatchd.config.load import parse_config
from acewatchd.config.schema import Config, Watch
from acewatchd.demo.audiogen import ffmpeg_path
from acewatchd.errors import ConfigError
from acewatchd.ingest.formats import (
    Advice,
    parse_skip,
    skip_advice,
    skip_sentence,
    sniff,
    sniff_file,
)
from acewatchd.ingest.pipeline import Ingestor
from acewatchd.ingest.validate import validate
from acewatchd.ledger.db import Ledger
from acewatchd.ledger.files import file_row
from tests.support.audiofiles import ENCODINGS, make_audio

READ = ("mp3", "wav", "flac", "m4a", "ogg", "opus")  # what ACE-Step's preprocessing picks up
NOT_READ = ("aiff", "aif", "wma", "webm", "aac")
CONTENT = {"mp3": "mp3", "wav": "wav", "flac": "flac", "m4a": "mp4", "ogg": "ogg",
           "opus": "opus", "oga": "ogg", "aiff": "aiff", "aif": "aiff", "wma": "wma", "webm": "webm",
           "aac": "aac"}
WATCH = Watch(min_duration_seconds=2.0)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("formats")
    return {ext: make_audio(folder / f"tone.{ext}", ext) for ext in ENCODINGS}


def test_the_defaults_are_what_acestep_reads() -> None:
    assert sorted(Watch().extensions) == sorted(READ)


@pytest.mark.parametrize("ext", sorted(ENCODINGS))
def test_sniffing_names_the_real_format(media: dict[str, Path], ext: str) -> None:
    assert sniff_file(media[ext]).format == CONTENT[ext]


@pytest.mark.parametrize("ext", READ)
def test_every_format_acestep_reads_is_taken_in_any_case(media: dict[str, Path], ext: str,
                                                         tmp_path: Path) -> None:
    upper = shutil.copyfile(media[ext], tmp_path / f"TONE.{ext.upper()}")
    for path in (media[ext], upper):
        verdict = validate(path, WATCH)
        assert verdict.info is not None, verdict.reason
        assert 5.5 < verdict.info.duration < 6.5


@pytest.mark.parametrize("ext", NOT_READ)
def test_other_audio_gets_a_fix_that_works(media: dict[str, Path], ext: str,
                                           tmp_path: Path) -> None:
    name = f"내 노래 (live).{ext}"
    advice = skip_advice(name)
    assert advice is not None and "is not read by ACE-Step" in advice.reason
    assert advice.fix.startswith("convert it: ffmpeg -i ")
    shutil.copyfile(media[ext], tmp_path / name)
    # The command as printed, run as a user would paste it: its output is taken.
    argv = shlex.split(advice.fix.removeprefix("convert it: "))
    subprocess.run([ffmpeg_path(), "-nostdin", "-loglevel", "error", *argv[1:]], cwd=tmp_path,
                   check=True, stdin=subprocess.DEVNULL)
    converted = tmp_path / argv[-1]
    assert converted.suffix.lstrip(".") in READ
    verdict = validate(converted, WATCH)
    assert verdict.info is not None, verdict.reason


@pytest.mark.parametrize(("name", "fix"), [
    ("ring.m4r", "convert it: ffmpeg -i ring.m4r -vn -c:a copy ring.m4a"),
    ("clip.mov", "convert it: ffmpeg -i clip.mov -vn -c:a copy clip.m4a"),
    ("take.bwf", "rename it to take.wav"),
    ("song.mpga", "rename it to song.mp3"),
    ("memo.3gp", "convert it: ffmpeg -i memo.3gp -vn memo.flac"),
    ("talk.spx", "convert it: ffmpeg -i talk.spx -vn talk.flac"),
    ("big.rf64", "convert it: ffmpeg -i big.rf64 -vn big.flac"),
    ("old.ra", "convert it: ffmpeg -i old.ra -vn old.flac"),
    ("book.aax", "it is copy-protected; use an unprotected copy of the recording"),
])
def test_more_audio_names_get_their_fix(name: str, fix: str) -> None:
    advice = skip_advice(name)
    assert advice is not None and advice.fix == fix


def test_a_format_acestep_reads_but_not_listed_says_which_key() -> None:
    advice = skip_advice("a.opus")
    assert advice is not None and advice.fix == 'add "opus" to [watch] extensions in config.toml'
    assert skip_advice("cover.jpg") is None and skip_advice("album.cue") is None


@pytest.mark.parametrize(("content", "name", "mutagen_type"), [
    ("mp3", "song.flac", "MP3"), ("m4a", "song.mp3", "MP4"), ("flac", "song.wav", "FLAC"),
    ("wav", "song.mp3", "WAVE"), ("opus", "song.ogg", "OggOpus"), ("oga", "song.flac", "OggFLAC")])
def test_a_readable_format_under_another_name_is_read_as_what_it_is(
        media: dict[str, Path], content: str, name: str, mutagen_type: str, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    path = shutil.copyfile(media[content], tmp_path / name)
    with caplog.at_level(logging.INFO, logger="acewatchd.ingest.validate"):
        verdict = validate(path, WATCH)
    assert verdict.info is not None, verdict.reason
    assert verdict.info.format == mutagen_type and verdict.info.duration > 5.5
    noted = [r.getMessage() for r in caplog.records if "judged by its content" in r.getMessage()]
    assert noted == [] if {content, Path(name).suffix} == {"opus", ".ogg"} else len(noted) == 1


@pytest.mark.parametrize(("content", "name", "words"), [
    ("wma", "song.mp3", "its content is Windows Media Audio"),
    ("webm", "song.ogg", "its content is WebM"),
    ("aiff", "song.wav", "its content is AIFF"),
    ("aac", "song.m4a", "its content is raw ADTS AAC"),
    ("wma", "song.flac", "its content is Windows Media Audio")])
def test_content_acestep_cannot_read_is_refused_whatever_its_name(
        media: dict[str, Path], content: str, name: str, words: str, tmp_path: Path) -> None:
    path = shutil.copyfile(media[content], tmp_path / name)
    verdict = validate(path, WATCH)
    assert verdict.info is None
    assert words in verdict.reason and f"ffmpeg -i {name} -vn" in verdict.reason
    # The fix as printed works and never writes over the file it reads.
    argv = shlex.split(verdict.reason.split("; convert it: ", 1)[1])
    assert argv[-1] != name
    subprocess.run([ffmpeg_path(), "-nostdin", "-loglevel", "error", *argv[1:]], cwd=tmp_path,
                   check=True, stdin=subprocess.DEVNULL)
    converted = validate(tmp_path / argv[-1], WATCH)
    assert converted.info is not None, converted.reason


@pytest.mark.parametrize(("data", "words"), [
    (b"<!DOCTYPE html><html><body>404 Not Found</body></html>\n" * 50, "an HTML page"),
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40, "a PNG image"),
    (b"PK\x03\x04" + bytes(5000), "a ZIP archive"),
    ("\ufeff<html><body>페이지를 찾을 수 없습니다</body></html>".encode() * 9, "an HTML page"),
    (("\ufeff" + "가사 메모: not a song\n" * 30).encode(), "a text file")])
def test_junk_is_rejected_by_what_it_is(data: bytes, words: str, tmp_path: Path) -> None:
    path = tmp_path / "download.mp3"
    path.write_bytes(data)
    verdict = validate(path, WATCH)
    assert verdict.info is None and verdict.reason == f"it is not audio: its content is {words}"


def test_bytes_nobody_knows_are_left_to_mutagen() -> None:
    assert sniff(bytes(64)) == sniff(b"") == sniff(b"\x00\x01\x02garbage\xfe")
    assert sniff(bytes(64)).format == "" and sniff(bytes(64)).junk == ""


def test_id3_in_front_of_flac_is_flac(media: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "tagged.flac"
    path.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x0a" + bytes(10) + media["flac"].read_bytes())
    assert sniff_file(path).format == "flac"


def _ingestor(tmp_path: Path, extra: str = "") -> tuple[Ingestor, Ledger, list[Config]]:
    holder = [parse_config(extra, tmp_path / "config.toml")]  # [0] is swapped to reload
    ledger = Ledger(holder[0].paths.state)
    return Ingestor(ledger, lambda: holder[0]), ledger, holder


def test_a_scan_records_skipped_audio_once_and_forgets_it_when_gone(
        media: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ing, ledger, holder = _ingestor(tmp_path, '[watch]\nextensions = ["mp3"]\n')
    folder = tmp_path / "drop" / "kim"
    folder.mkdir(parents=True)
    for ext in (*NOT_READ, "flac"):
        shutil.copyfile(media[ext], folder / f"tone.{ext}")
    (folder / "cover.jpg").write_bytes(b"\xff\xd8\xff" + bytes(100))
    with caplog.at_level(logging.WARNING, logger="acewatchd.ingest.pipeline"):
        assert ing.scan(startup=True) == []
        assert ing.scan() == []  # the same files again: nothing new written or logged
    conn = ledger.connect()
    states = dict(conn.execute("SELECT relpath, state FROM files").fetchall())
    assert states == {f"tone.{ext}": "skipped" for ext in (*NOT_READ, "flac")}
    assert [r.getMessage() for r in caplog.records].count("skipped") == len(NOT_READ) + 1
    wma = file_row(conn, "kim", "tone.wma")
    assert wma is not None and wma.reason == (
        "tone.wma was skipped: .wma (Windows Media Audio) is not read by ACE-Step; convert it: "
        "ffmpeg -i tone.wma -vn tone.flac")
    flac = file_row(conn, "kim", "tone.flac")
    assert flac is not None and 'add "flac" to [watch] extensions' in (flac.reason or "")

    holder[0] = parse_config("", tmp_path / "config.toml")  # back to the defaults
    (folder / "tone.wma").unlink()
    todo = ing.scan()
    assert todo == [folder / "tone.flac"]  # now taken: it goes to be settled and read
    gone = file_row(conn, "kim", "tone.wma")
    assert gone is not None and gone.state == "gone"
    ledger.close()


def test_names_that_say_nothing_are_sniffed(media: dict[str, Path], tmp_path: Path) -> None:
    ing, ledger, _ = _ingestor(tmp_path)
    folder = tmp_path / "drop" / "kim"
    folder.mkdir(parents=True)
    shutil.copyfile(media["mp3"], folder / "download")          # no extension
    shutil.copyfile(media["flac"], folder / "song.flac.bak")    # a backup copy
    shutil.copyfile(media["wma"], folder / "old track")
    (folder / "README").write_text("liner notes\n", encoding="utf-8")  # text: not mentioned
    (folder / "notes.txt").write_bytes(media["mp3"].read_bytes())  # .txt is never opened
    assert ing.scan(startup=True) == []
    reasons = dict(ledger.connect().execute("SELECT relpath, reason FROM files").fetchall())
    assert reasons == {
        "download": "download was skipped: it holds MP3 but its name does not say so; "
                    "rename it to download.mp3",
        "song.flac.bak": "song.flac.bak was skipped: it holds FLAC but its name does not say "
                         "so; rename it to song.flac",
        "old track": "old track was skipped: it holds Windows Media Audio under a name that "
                     "does not say audio, and ACE-Step does not read that format; convert it: "
                     "ffmpeg -i 'old track' -vn 'old track.flac'"}
    ledger.close()


def test_advice_for_containers_and_files_no_ffmpeg_line_helps() -> None:
    mp4 = skip_advice("clip.mp4")
    assert mp4 is not None and mp4.fix == "convert it: ffmpeg -i clip.mp4 -vn -c:a copy clip.m4a"
    assert skip_advice("a.wave") == Advice(".wave is not an extension ACE-Step picks up",
                                           "rename it to a.wav")
    m4p = skip_advice("bought.m4p")
    assert m4p is not None and "use an unprotected copy" in m4p.fix
    assert sniff(b"\x00\x00\x00\x1cftypM4P \x00\x00\x00\x00").format == "m4p"
    assert sniff(b"MThd\x00\x00\x00\x06").format == "midi"
    assert parse_skip("a;b.wma", skip_sentence("a;b.wma", Advice("r", "fix; more"))) == Advice(
        "r", "fix; more")


def test_a_format_listed_by_hand_is_still_refused_by_content(media: dict[str, Path],
                                                             tmp_path: Path) -> None:
    path = shutil.copyfile(media["aiff"], tmp_path / "take.aiff")
    verdict = validate(path, Watch(extensions=["mp3", "aiff"], min_duration_seconds=2))
    assert verdict.reason == ("it is AIFF, which ACE-Step does not read; convert it: "
                              "ffmpeg -i take.aiff -vn take.flac")


def test_an_original_kept_beside_its_conversion_is_not_mentioned(
        media: dict[str, Path], tmp_path: Path) -> None:
    ing, ledger, _ = _ingestor(tmp_path)
    folder = tmp_path / "drop" / "kim"
    folder.mkdir(parents=True)
    shutil.copyfile(media["wma"], folder / "live.wma")
    shutil.copyfile(media["aiff"], folder / "demo.aiff")
    assert ing.scan(startup=True) == []
    shutil.copyfile(media["flac"], folder / "live.flac")  # the fix, original kept
    assert ing.scan() == [folder / "live.flac"]
    states = dict(ledger.connect().execute("SELECT relpath, state FROM files").fetchall())
    assert states == {"live.wma": "gone", "demo.aiff": "skipped"}
    ledger.close()


def test_config_refuses_an_extension_acestep_does_not_pick_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config('[watch]\nsettle_seconds = 1\nextensions = ["mp3", "wma"]\n',
                     tmp_path / "config.toml")
    assert err.value.problems == [
        "watch.extensions: ACE-Step's preprocessing does not pick up .wma files (it takes "
        "mp3, wav, flac, m4a, ogg, opus); convert them instead: `acewatchd status` lists each "
        "with the ffmpeg line (line 3)"]
    assert parse_config('[watch]\nextensions = ["flac"]\n', tmp_path / "c.toml").watch.extensions \
        == ["flac"]
