"""Real files (ffmpeg + mutagen) for every shape lyrics and legacy-encoded tags come in, and the
caption table for junk-free descriptors (issue 12 items 1, 2, 7)."""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

import pytest

from acewatchd.config.schema import Dataset
from acewatchd.demo.audiogen import ffmpeg_path
from acewatchd.ingest.captions import genres, name_from_stem, normalize_bpm, normalize_key
from acewatchd.ingest.lyrics import clean_lyrics
from acewatchd.ingest.stubs import caption_text, lyrics_text
from acewatchd.ingest.tags import AudioInfo, read_audio
from acewatchd.nightly.prepare.dataset import _bpm, _keyscale

LYRICS = "[Verse]\n어느새 나는\n그대 곁에"
LRC = ("[ti:사랑했지만]\n[ar:김경호]\n[al:Album]\n[by:someone]\n[offset:+120]\n[length:03:40]\n"
       "[re:LRC Editor]\n[ve:1.0]\n[Verse]\n[00:12.34]어느새 나는\n[00:15.00][01:02]그대 곁에\n"
       "[00:20.345]\n")
KIM = "김경호"
MOJIBAKE = KIM.encode("cp949").decode("latin-1")  # '±è°æÈ£'


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_path(), "-nostdin", "-loglevel", "error", "-y", *args], check=True,
                   stdin=subprocess.DEVNULL)


def _tone(path: Path, *extra: str) -> Path:
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=2:sample_rate=44100", *extra,
            str(path))
    return path


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


def _mp3(media: Path, name: str) -> Path:
    return _tone(media / name, "-b:a", "32k")


def _id3(path: Path, *frames: object, v2: int = 4) -> None:
    from mutagen.id3 import ID3, ID3NoHeaderError

    try:
        id3 = ID3(path)
    except ID3NoHeaderError:
        id3 = ID3()
    for frame in frames:
        id3.add(frame)
    id3.save(path, v2_version=v2)


# --------------------------------------------------------------------------- lyrics, item 1


def test_uslt_any_language_and_description(media: Path) -> None:
    from mutagen.id3 import USLT

    path = _mp3(media, "uslt.mp3")
    _id3(path, USLT(encoding=3, lang="eng", desc="Lyrics by X", text=LYRICS))
    assert read_audio(path).lyrics == LYRICS


@pytest.mark.parametrize("desc", ["LYRICS", "UNSYNCEDLYRICS", "USLT", "lyrics-kor",
                                  "unsynced lyrics"])
def test_txxx_lyrics(media: Path, desc: str) -> None:
    from mutagen.id3 import TXXX

    path = _mp3(media, f"txxx-{desc.replace(' ', '_')}.mp3")
    _id3(path, TXXX(encoding=3, desc=desc, text=[LYRICS]))
    assert read_audio(path).lyrics == LYRICS


def test_sylt_text_without_times(media: Path) -> None:
    from mutagen.id3 import SYLT

    path = _mp3(media, "sylt.mp3")
    _id3(path, SYLT(encoding=3, lang="kor", format=2, type=1, desc="",
                    text=[("어느새 나는", 12000), ("그대 곁에", 15000)]))
    assert read_audio(path).lyrics == "어느새 나는\n그대 곁에"


@pytest.mark.parametrize("name", ["ALBUMARTIST", "ALBUM ARTIST", "ALBUM_ARTIST"])
def test_flac_album_artist_in_any_spelling(media: Path, name: str) -> None:
    from mutagen.flac import FLAC

    path = _tone(media / f"aa-{name.replace(' ', '_')}.flac", "-map_metadata", "-1")
    flac = FLAC(path)
    flac[name] = KIM
    flac.save()
    assert read_audio(path).artist == KIM


@pytest.mark.parametrize("name", ["LYRICS", "UNSYNCEDLYRICS", "UNSYNCED LYRICS"])
def test_flac_vorbis_lyrics(media: Path, name: str) -> None:
    from mutagen.flac import FLAC

    path = _tone(media / f"v-{name.replace(' ', '_')}.flac")
    flac = FLAC(path)
    flac[name] = LYRICS
    flac.save()
    assert read_audio(path).lyrics == LYRICS


def test_flac_converted_by_ffmpeg_to_mp3_keeps_lyrics(media: Path) -> None:
    """`ffmpeg -i song.flac song.mp3` writes the lyrics as TXXX `lyrics-XXX`."""
    src = _tone(media / "conv.flac", "-metadata", f"lyrics-kor={LYRICS}",
                "-metadata", f"artist={KIM}")
    out = media / "conv.mp3"
    _ffmpeg("-i", str(src), "-b:a", "32k", str(out))
    from mutagen.id3 import ID3

    assert any(f.desc.lower().startswith("lyrics") for f in ID3(out).getall("TXXX"))
    info = read_audio(out)
    assert info.lyrics == LYRICS
    assert info.artist == KIM


def test_ogg_lyrics_converted_from_lrc_style(media: Path) -> None:
    from mutagen.oggvorbis import OggVorbis

    path = _tone(media / "o.ogg", "-c:a", "libvorbis")
    ogg = OggVorbis(path)
    ogg["lyrics"] = LRC
    ogg.save()
    assert read_audio(path).lyrics == LYRICS


def test_flac_lyrics_in_several_values_keep_their_lines(media: Path) -> None:
    from mutagen.flac import FLAC

    path = _tone(media / "multi.flac")
    flac = FLAC(path)
    flac["LYRICS"] = ["첫 줄", "둘째 줄"]
    flac.save()
    assert read_audio(path).lyrics == "첫 줄\n둘째 줄"


def test_mp4_lyr_atom(media: Path) -> None:
    from mutagen.mp4 import MP4

    path = _tone(media / "m.m4a", "-c:a", "aac", "-b:a", "32k")
    mp4 = MP4(path)
    mp4["\xa9lyr"] = [LYRICS]
    mp4.save()
    assert read_audio(path).lyrics == LYRICS


@pytest.mark.parametrize("atom", ["----:com.apple.iTunes:LYRICS",
                                  "----:com.apple.iTunes:UNSYNCEDLYRICS",
                                  "----:com.apple.iTunes:Unsynced Lyrics"])
def test_mp4_freeform_lyrics_and_key_in_any_case(media: Path, atom: str) -> None:
    from mutagen.mp4 import MP4, MP4FreeForm

    path = _tone(media / "f.m4a", "-c:a", "aac", "-b:a", "32k")
    mp4 = MP4(path)
    mp4[atom] = [MP4FreeForm(LYRICS.encode("utf-8"))]
    mp4["----:com.apple.iTunes:KEY"] = [MP4FreeForm(b"Em")]
    mp4.save()
    info = read_audio(path)
    assert info.lyrics == LYRICS and info.key == "Em"


def test_apev2_lyrics_in_wavpack(media: Path) -> None:
    from mutagen.apev2 import APEv2

    path = _tone(media / "w.wv", "-c:a", "wavpack")
    ape = APEv2()
    ape["Lyrics"] = LYRICS
    ape.save(path)
    assert read_audio(path).lyrics == LYRICS


def test_apev2_appended_to_mp3(media: Path) -> None:
    from mutagen.apev2 import APEv2

    path = _mp3(media, "ape.mp3")
    ape = APEv2()
    ape["Lyrics"] = LYRICS
    ape.save(path)
    assert read_audio(path).lyrics == LYRICS


def test_lrc_beside_song(media: Path) -> None:
    path = _mp3(media, "withlrc.mp3")
    (media / "withlrc.lrc").write_text(LRC, encoding="utf-8")
    info = read_audio(path)
    assert info.lyrics == LYRICS
    assert lyrics_text(info, Dataset()) == LYRICS + "\n"


def test_lrc_in_cp949(media: Path) -> None:
    path = _mp3(media, "lrc949.mp3")
    (media / "lrc949.lrc").write_bytes(LRC.encode("cp949"))
    assert read_audio(path).lyrics == LYRICS


@pytest.mark.parametrize("name", ["upper.LRC", "upper.mp3.lrc"])
def test_lrc_named_in_other_ways(media: Path, name: str) -> None:
    path = _mp3(media, "upper.mp3")
    (media / name).write_text(LRC, encoding="utf-8")
    assert read_audio(path).lyrics == LYRICS


def test_lrc_of_the_stem_wins_over_other_names(media: Path) -> None:
    path = _mp3(media, "several.mp3")
    (media / "several.lrc").write_text("[00:01.00]the stem's\n", encoding="utf-8")
    (media / "several.mp3.lrc").write_text(LRC, encoding="utf-8")
    assert read_audio(path).lyrics == "the stem's"


# ------------------------------------------------------- tags beside a format's own block


def test_mp3_with_only_apev2_tags(media: Path) -> None:
    from mutagen.apev2 import APEv2

    path = _tone(media / "apeonly.mp3", "-b:a", "32k", "-map_metadata", "-1",
                 "-id3v2_version", "0", "-write_id3v1", "0")
    ape = APEv2()
    ape["Title"], ape["Artist"], ape["Genre"], ape["Year"] = "제목", KIM, "Ballad", "1996"
    ape.save(path)
    info = read_audio(path)
    assert (info.title, info.artist, info.genre, info.year) == ("제목", KIM, "Ballad", "1996")


def test_id3_wins_over_apev2_beside_it(media: Path) -> None:
    from mutagen.apev2 import APEv2
    from mutagen.id3 import TIT2

    path = _mp3(media, "id3ape.mp3")
    _id3(path, TIT2(encoding=3, text="from id3"))
    ape = APEv2()
    ape["Title"], ape["Artist"] = "from ape", "ape artist"
    ape.save(path)
    info = read_audio(path)
    assert (info.title, info.artist) == ("from id3", "ape artist")


def test_flac_tagged_with_id3_in_front(media: Path) -> None:
    from mutagen.id3 import ID3, TIT2, TPE1, USLT

    path = _tone(media / "id3.flac", "-map_metadata", "-1")
    id3 = ID3()
    id3.add(TIT2(encoding=0, text=KIM.encode("cp949").decode("latin-1")))
    id3.add(TPE1(encoding=3, text="가수"))
    id3.add(USLT(encoding=3, lang="kor", desc="", text=LYRICS))
    raw = path.read_bytes()
    id3.save(path)  # mutagen writes the tag into the file it is given: in front of the FLAC
    assert path.read_bytes().startswith(b"ID3") and path.read_bytes().endswith(raw[-64:])
    info = read_audio(path)
    assert (info.format, info.title, info.artist, info.lyrics) == ("FLAC", KIM, "가수", LYRICS)


# --------------------------------------------------------------------------- WAV's RIFF INFO


def _info_chunk(**fields: bytes) -> bytes:
    body = b"INFO"
    for cid, value in fields.items():
        data = value + b"\0"
        body += cid.encode() + struct.pack("<I", len(data)) + data + b"\0" * (len(data) & 1)
    return b"LIST" + struct.pack("<I", len(body)) + body


def _with_chunk(path: Path, chunk: bytes, *, at_end: bool) -> None:
    """Add a chunk to a WAV (before its first chunk, or after its last) and fix the size."""
    raw = path.read_bytes()
    body = raw[12:] + chunk if at_end else chunk + raw[12:]
    path.write_bytes(b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body)


def test_wav_info_tags_written_by_ffmpeg(media: Path) -> None:
    path = _tone(media / "info.wav", "-metadata", "title=사랑했지만", "-metadata",
                 f"artist={KIM}", "-metadata", "album=Album", "-metadata", "genre=Ballad",
                 "-metadata", "date=1995")
    info = read_audio(path)
    assert (info.title, info.artist, info.album, info.genre, info.year) == (
        "사랑했지만", KIM, "Album", "Ballad", "1995")
    assert caption_text(info, Dataset(caption_template="{artist}, {title}, {decade}"),
                        "x") == f"{KIM}, 사랑했지만, 1990s\n"


def test_wav_info_in_a_legacy_codepage_after_the_audio(media: Path) -> None:
    path = _tone(media / "cp949.wav", "-map_metadata", "-1")
    _with_chunk(path, _info_chunk(INAM="사랑".encode("cp949"), IART=KIM.encode("cp949")),
                at_end=True)
    info = read_audio(path)
    assert (info.title, info.artist) == ("사랑", KIM)
    assert MOJIBAKE not in caption_text(info, Dataset(), "x")


def test_wav_id3_chunk_wins_over_info(media: Path) -> None:
    from mutagen.id3 import TIT2
    from mutagen.wave import WAVE

    path = _tone(media / "both.wav", "-metadata", "title=from info", "-metadata",
                 "artist=info artist")
    wave = WAVE(path)
    wave.add_tags()
    wave.tags.add(TIT2(encoding=3, text="from id3"))
    wave.save()
    info = read_audio(path)
    assert (info.title, info.artist) == ("from id3", "info artist")


@pytest.mark.parametrize("chunk", [
    b"LIST" + struct.pack("<I", 0xFFFFFFF0) + b"INFOINAM",   # sizes past the file's end
    b"LIST" + struct.pack("<I", 2) + b"IN",                  # a list too short for its name
    _info_chunk(INAM=b"") + b"junk",                         # an empty value, trailing junk
])
def test_wav_with_broken_info_still_reads(media: Path, chunk: bytes) -> None:
    path = _tone(media / "broken.wav", "-map_metadata", "-1")
    _with_chunk(path, chunk, at_end=True)
    info = read_audio(path)
    assert info.duration > 1.9 and info.title == ""


def test_embedded_lyrics_win_over_lrc(media: Path) -> None:
    from mutagen.id3 import USLT

    path = _mp3(media, "both.mp3")
    _id3(path, USLT(encoding=3, lang="kor", desc="", text="embedded"))
    (media / "both.lrc").write_text(LRC, encoding="utf-8")
    assert read_audio(path).lyrics == "embedded"


def test_lrc_symlink_fifo_and_huge_are_ignored(media: Path, tmp_path: Path) -> None:
    real = tmp_path / "elsewhere.lrc"
    real.write_text(LRC, encoding="utf-8")
    for stem, make in (("link", lambda p: os.symlink(real, p)),
                       ("fifo", lambda p: os.mkfifo(p)),
                       ("huge", lambda p: p.write_bytes(b"[00:01.00]x\n" * 100_000)),
                       ("dir", lambda p: p.mkdir())):
        song = _mp3(tmp_path, f"{stem}.mp3")
        make(tmp_path / f"{stem}.lrc")
        assert read_audio(song).lyrics == "", stem


@pytest.mark.parametrize(("raw", "clean"), [
    ("[00:12.34]a\n[01:02]b\n[00:12.345]c", "a\nb\nc"),
    ("[00:01.00][00:30.00]twice", "twice"),
    ("[ti:x]\n[ar:y]\n[al:z]\n[by:w]\n[offset:-50]\n[length:3:00]\n[re:t]\n[ve:2]\nonly",
     "only"),
    ("[Verse]\nla\n\n\n\n[Chorus]\nlo", "[Verse]\nla\n\n[Chorus]\nlo"),
    ("[00:01.00]<00:01.00>word <00:01.50>by word", "word by word"),
    ("[1:02:03.00]an hour in\n[00:12,34]a decimal comma", "an hour in\na decimal comma"),
    ("line\r\nline2\x00", "line\nline2"),
])
def test_clean_lyrics(raw: str, clean: str) -> None:
    assert clean_lyrics(raw) == clean


# --------------------------------------------------------------------------- encodings, item 2


def _legacy_mp3(media: Path, name: str, text: str, codec: str, *, v2: int = 3) -> Path:
    from mutagen.id3 import TCON, TIT2, TPE1, USLT

    path = _mp3(media, name)
    raw = text.encode(codec).decode("latin-1")
    _id3(path, TIT2(encoding=0, text=raw), TPE1(encoding=0, text=raw),
         TCON(encoding=0, text="Ballad"),
         USLT(encoding=0, lang="kor", desc="", text=raw + "\n" + raw), v2=v2)
    return path


def test_id3v23_latin1_cp949_is_guessed(media: Path) -> None:
    path = _legacy_mp3(media, "cp949.mp3", KIM, "cp949")
    info = read_audio(path)
    assert (info.title, info.artist, info.lyrics) == (KIM, KIM, f"{KIM}\n{KIM}")
    caption = caption_text(info, Dataset(tag="kkh"), path.stem)
    assert KIM in caption and MOJIBAKE not in caption
    assert lyrics_text(info, Dataset()) == f"{KIM}\n{KIM}\n"


@pytest.mark.parametrize(("text", "codec", "language"), [
    ("こんにちは世界", "shift_jis", "ja"), ("你好世界", "gbk", "zh"), (KIM, "cp949", "ko")])
def test_dataset_language_picks_the_codepage(media: Path, text: str, codec: str,
                                              language: str) -> None:
    path = _legacy_mp3(media, f"lang-{language}.mp3", text, codec)
    info = read_audio(path)
    ds = Dataset(language=language)
    assert caption_text(info, ds, path.stem).startswith(f"{text} style") or \
        text in caption_text(info, ds, path.stem)
    assert lyrics_text(info, ds) == f"{text}\n{text}\n"


def test_tag_encoding_override(media: Path) -> None:
    path = _legacy_mp3(media, "override.mp3", "你好世界", "gbk")
    info = read_audio(path)
    assert "你好世界" not in info.title  # the guess prefers Korean: the override fixes it
    ds = Dataset(tag_encoding="gbk", caption_template="{title}")
    assert caption_text(info, ds, path.stem) == "你好世界\n"


def _legacy_vorbis(path: Path, codec: str, **tags: str) -> Path:
    """ffmpeg writes the bytes it is given into the Vorbis comments: not UTF-8 here, as
    rippers of the 2000s wrote them."""
    meta = [arg for name, text in tags.items()
            for arg in (b"-metadata", name.encode() + b"=" + text.encode(codec))]
    subprocess.run([ffmpeg_path().encode(), b"-nostdin", b"-loglevel", b"error", b"-y", b"-f",
                    b"lavfi", b"-i", b"sine=frequency=440:duration=2", *meta, bytes(path)],
                   check=True, stdin=subprocess.DEVNULL)
    return path


@pytest.mark.parametrize("ext", ["flac", "ogg", "opus"])
def test_cp949_bytes_in_vorbis_comments(media: Path, ext: str) -> None:
    path = _legacy_vorbis(media / f"vc949.{ext}", "cp949", title="사랑했지만", artist=KIM,
                          lyrics="[00:01.00]어느새 나는")
    info = read_audio(path)
    assert (info.title, info.artist, info.lyrics) == ("사랑했지만", KIM, "어느새 나는")
    caption = caption_text(info, Dataset(), path.stem)
    assert "\ufffd" not in caption and caption == f"{KIM} style\n"


def test_vorbis_comments_in_a_codepage_the_guess_gets_wrong(media: Path) -> None:
    path = _legacy_vorbis(media / "vcgbk.flac", "gbk", title="你好世界")
    info = read_audio(path)
    assert "\ufffd" not in info.title and "你好世界" not in info.title
    ds = Dataset(tag_encoding="gbk", caption_template="{title}")
    assert caption_text(info, ds, path.stem) == "你好世界\n"


def test_utf8_vorbis_comments_are_left_as_they_are(media: Path) -> None:
    path = _legacy_vorbis(media / "vcutf8.flac", "utf-8", title="a \ufffd in its title",
                          artist=KIM)
    info = read_audio(path)
    assert (info.title, info.artist) == ("a \ufffd in its title", KIM)


@pytest.mark.parametrize("cut", [0, 4, 9, 42, 60, 70, 100, 130, 200, 500])
@pytest.mark.parametrize("ext", ["flac", "ogg"])
def test_raw_vorbis_comments_of_a_cut_file_are_whole_or_none(media: Path, tmp_path: Path,
                                                                 ext: str, cut: int) -> None:
    import io

    from acewatchd.ingest import vorbisraw

    whole = _legacy_vorbis(media / f"cut.{ext}", "cp949", title="사랑했지만").read_bytes()
    kind = "FLAC" if ext == "flac" else "OggVorbis"
    assert vorbisraw.read_raw(io.BytesIO(whole), kind)["title"] == ["사랑했지만".encode("cp949")]
    # Never an error, never a tag cut short: all of it or nothing.
    assert vorbisraw.read_raw(io.BytesIO(whole[:cut]), kind).get("title") in (
        None, ["사랑했지만".encode("cp949")])


def test_the_daemons_one_open_reads_the_blocks_beside_the_tags(media: Path) -> None:
    """ingest reads a song through one open file (validate_open), not by its path: the
    secondary blocks are read from that file too."""
    from mutagen.apev2 import APEv2

    from acewatchd.config.schema import Watch
    from acewatchd.ingest.validate import validate

    wav = _tone(media / "open-info.wav", "-metadata", f"artist={KIM}")
    flac = _legacy_vorbis(media / "open-949.flac", "cp949", title="사랑했지만")
    mp3 = _tone(media / "open-ape.mp3", "-b:a", "32k", "-map_metadata", "-1",
                "-id3v2_version", "0", "-write_id3v1", "0")
    ape = APEv2()
    ape["Artist"], ape["Lyrics"] = KIM, LYRICS
    ape.save(mp3)
    watch = Watch(min_duration_seconds=1)
    got = {}
    for path in (wav, flac, mp3):
        info = validate(path, watch).info
        assert info is not None, path.name
        got[path.suffix] = (info.title, info.artist, info.lyrics)
    assert got == {".wav": ("", KIM, ""), ".flac": ("사랑했지만", "", ""),
                   ".mp3": ("", KIM, LYRICS)}


def _id3v1(path: Path, title: bytes, artist: bytes, genre: int) -> None:
    block = b"TAG" + title.ljust(30, b"\0") + artist.ljust(30, b"\0") + b"\0" * 30 + b"1994" + \
        b"\0" * 30 + struct.pack("B", genre)
    with path.open("ab") as f:
        f.write(block)


def test_id3v1_cp949_and_numeric_genre(media: Path, tmp_path: Path) -> None:
    path = _tone(tmp_path / "v1.mp3", "-b:a", "32k", "-write_id3v2", "0")
    _id3v1(path, "사랑했지만".encode("cp949"), KIM.encode("cp949"), 17)
    info = read_audio(path)
    assert (info.title, info.artist, info.genre) == ("사랑했지만", KIM, "Rock")
    caption = caption_text(info, Dataset(), path.stem)
    assert caption == f"Rock, 1990s, {KIM} style\n"


def test_utf8_bytes_in_frames_marked_latin1_are_read_as_utf8(media: Path, tmp_path: Path) -> None:
    """Many taggers write UTF-8 bytes into ID3 frames marked latin-1 (and into ID3v1): read
    as latin-1 they are 'CafÃ©' mojibake, and guessed as CP949 they were Hangul garbage."""
    from mutagen.id3 import TALB, TIT2, TPE1, USLT

    def as_latin1(text: str) -> str:
        return text.encode("utf-8").decode("latin-1")

    path = _mp3(media, "utf8-in-latin1.mp3")
    _id3(path, TIT2(encoding=0, text=as_latin1("사랑했지만")),
         TPE1(encoding=0, text=as_latin1("Beyoncé")), TALB(encoding=0, text=as_latin1("東京事変")),
         USLT(encoding=0, lang="kor", desc="", text=as_latin1(LYRICS)), v2=3)
    info = read_audio(path)
    assert (info.title, info.artist, info.album, info.lyrics) == (
        "사랑했지만", "Beyoncé", "東京事変", LYRICS)
    assert info.reencoded("cp949").artist == "Beyoncé"  # a dataset's codepage changes nothing
    caption = caption_text(info, Dataset(caption_template="{artist} style, {title}"), "x")
    assert caption == "Beyoncé style, 사랑했지만\n"
    v1 = _tone(tmp_path / "v1-utf8.mp3", "-b:a", "32k", "-write_id3v2", "0")
    _id3v1(v1, "사랑했지만".encode(), "Mötley Crüe".encode(), 17)
    info = read_audio(v1)
    assert (info.title, info.artist, info.genre) == ("사랑했지만", "Mötley Crüe", "Rock")


def test_plain_latin1_stays(media: Path) -> None:
    from mutagen.id3 import TIT2, TPE1

    path = _mp3(media, "cafe.mp3")
    _id3(path, TIT2(encoding=0, text="Café"), TPE1(encoding=0, text="Mötley Crüe"), v2=3)
    info = read_audio(path)
    assert (info.title, info.artist) == ("Café", "Mötley Crüe")
    assert info.reencoded("cp949").artist == "Mötley Crüe"
    assert info.reencoded("gb18030").title == "Café"


def test_utf8_frames_are_never_reinterpreted(media: Path) -> None:
    from mutagen.id3 import TPE1

    path = _mp3(media, "utf8.mp3")
    _id3(path, TPE1(encoding=3, text=MOJIBAKE))  # a UTF-8 frame is what it says
    info = read_audio(path)
    assert info.latin1 == ()
    assert info.reencoded("cp949").artist == MOJIBAKE


# --------------------------------------------------------------------------- captions, item 7

_TPL = Dataset(caption_template="{tag}, {genre}, {artist} style, {title}, {album}, {bpm}, {key}")


@pytest.mark.parametrize(("fields", "ds", "stem", "caption"), [
    ({}, Dataset(), "02 - 사랑했지만", "사랑했지만"),
    ({}, Dataset(), "01. Song", "Song"),
    ({}, Dataset(), "03_My_Song [Official Audio]", "My Song"),
    ({}, Dataset(), "Kim - Love (Remastered 2011)", "Kim Love"),
    ({}, Dataset(), "05   spaced    out", "spaced out"),
    ({"artist": "Unknown Artist", "album": "Unknown Album", "title": "Track 01",
      "genre": "Other"}, _TPL, "04 - Real Name", "Real Name"),
    ({"title": "Track 1", "genre": "Unknown"}, _TPL, "x", "x"),
    ({"artist": "알 수 없는 아티스트", "album": "알 수 없는 앨범 (2007-03-01 오후 3:12:45)",
      "title": "트랙 3", "genre": "알 수 없는 장르"}, _TPL, "03 사랑했지만", "사랑했지만"),
    ({"artist": "不明なアーティスト", "album": "不明なアルバム", "title": "トラック 1"}, _TPL,
     "x", "x"),
    ({"artist": "未知艺术家", "album": "未知专辑", "title": "音轨 01"}, _TPL, "x", "x"),
    ({"album": "Unknown Album (1/4/2008 10:12:33 PM)", "title": "AudioTrack 01"}, _TPL, "x",
     "x"),
    ({"artist": "Unbekannter Künstler", "album": "Album inconnu", "title": "Pista 2"}, _TPL,
     "x", "x"),
    ({"title": "Other (1999)", "album": "Unknown Pleasures (2019 Remaster)"}, _TPL, "x",
     "Unknown Pleasures"),
    ({"genre": "Rock; Ballad"}, _TPL, "x", "Rock, Ballad"),
    ({"genre": "Rock/Ballad"}, _TPL, "x", "Rock, Ballad"),
    ({"genre": "Rock, Ballad, rock"}, _TPL, "x", "Rock, Ballad"),
    ({"genre": "(17)"}, _TPL, "x", "Rock"),
    ({"title": "Yesterday (Remastered 2009)", "album": "Help! [Remastered]"}, _TPL, "x",
     "Yesterday, Help!"),
    ({"key": "Em", "bpm": "76.4"}, _TPL, "x", "76 bpm, E minor"),
    ({"key": "F#"}, _TPL, "x", "F# major"),
    ({"key": "Fsharp min"}, _TPL, "x", "F# minor"),
    ({"key": "8A"}, _TPL, "x", "A minor"),
    ({"key": "E min"}, _TPL, "x", "E minor"),
    ({"bpm": "0"}, Dataset(caption_template="{bpm}", bpm=90), "x", "90 bpm"),
    ({"artist": "Kim Kyung Ho"}, Dataset(tag="kim kyung ho"), "x", "kim kyung ho, x"),
    ({"artist": "김경호"}, Dataset(tag="kkh"), "x", "kkh, 김경호 style"),
])
def test_caption_table(fields: dict[str, str], ds: Dataset, stem: str, caption: str) -> None:
    info = AudioInfo(duration=10, format="MP3", **fields)
    assert caption_text(info, ds, stem) == caption + "\n"


def test_several_tcon_values_are_separate_genres(media: Path) -> None:
    from mutagen.id3 import TCON

    path = _mp3(media, "tcon.mp3")
    _id3(path, TCON(encoding=3, text=["Rock", "Ballad"]))
    info = read_audio(path)
    assert caption_text(info, Dataset(caption_template="{genre}"), "x") == "Rock, Ballad\n"


@pytest.mark.parametrize(("tag", "key"), [
    ("Am", "A minor"), ("A min", "A minor"), ("F#", "F# major"), ("Fsharp", "F# major"),
    ("Bb", "Bb major"), ("C#m", "C# minor"), ("8B", "C major"), ("08A", "A minor"),
    ("1d", "C major"), ("1m", "A minor"), ("6d", "B major"), ("12m", "D minor"),
    ("C#m/Dbm", "C# minor"), ("8A/Am", "A minor"), ("junk", ""), ("", "")])
def test_key_is_the_same_in_caption_and_dataset_json(tag: str, key: str) -> None:
    assert normalize_key(tag) == _keyscale(tag) == key
    info = AudioInfo(duration=1, format="MP3", key=tag)
    assert caption_text(info, Dataset(caption_template="{key}"), "x") == (key or "x") + "\n"


@pytest.mark.parametrize(("tag", "bpm"), [("76", 76), ("76.6", 77), ("120 BPM", 120),
                                          ("128,00", 128), ("1,200", None),
                                          ("0", None), ("999", None), ("", None)])
def test_bpm_is_the_same_in_caption_and_dataset_json(tag: str, bpm: int | None) -> None:
    assert normalize_bpm(tag) == _bpm(tag) == bpm


def test_helpers() -> None:
    assert genres("(17)(6); Other") == ["Rock", "Grunge"]
    assert name_from_stem("A1 Intro") == "Intro"


# --------------------------------------------------------------------------- broken tags


def _tagged(path: Path) -> bytearray:
    _tone(path, "-b:a", "32k", "-id3v2_version", "3", "-metadata", "title=Hello",
          "-metadata", "artist=World", "-metadata", "album=Album")
    return bytearray(path.read_bytes())


def test_an_mp3_whose_id3_tag_mutagen_refuses_is_still_a_song(tmp_path: Path) -> None:
    from acewatchd.config.schema import Watch
    from acewatchd.ingest.validate import validate

    path = tmp_path / "odd-version.mp3"
    data = _tagged(path)
    data[3] = 5  # "ID3v2.5": mutagen refuses the whole file over its tag
    path.write_bytes(bytes(data))
    verdict = validate(path, Watch(min_duration_seconds=1))
    assert verdict.info is not None, verdict.reason
    assert verdict.info.duration == pytest.approx(2.0, abs=0.2)
    assert (verdict.info.title, verdict.info.format) == ("", "MP3")
    assert caption_text(verdict.info, Dataset(), "03 - 사랑했지만") == "사랑했지만\n"
    (tmp_path / "noise.mp3").write_bytes(b"ID3\x05\x00\x00\x00\x00\x00\x10" + b"\x00" * 400)
    refused = validate(tmp_path / "noise.mp3", Watch(min_duration_seconds=1))
    assert refused.info is None and "ID3v2.5 not supported" in refused.reason  # no audio


def test_a_frame_whose_length_is_too_large_gives_its_own_text_only(tmp_path: Path) -> None:
    path = tmp_path / "long-frame.mp3"
    data = _tagged(path)
    at = data.find(b"TIT2")
    data[at + 4:at + 8] = struct.pack(">I", struct.unpack(">I", data[at + 4:at + 8])[0] + 40)
    path.write_bytes(bytes(data))
    info = read_audio(path)
    assert info.title == "Hello"  # not "Hello; TPE1; \x07; World; TALB; ..."
    assert all(ch.isprintable() for value in (info.title, info.artist, info.album)
               for ch in value)


def test_control_characters_never_reach_a_stub(media: Path) -> None:
    from mutagen.id3 import TIT2, TPE1, USLT

    path = _mp3(media, "controls.mp3")
    _id3(path, TIT2(encoding=3, text="Hel\x07lo\x1b"), TPE1(encoding=3, text="Wor\x85ld"),
         USLT(encoding=3, lang="eng", desc="", text="line\x0b one\nline\x01 two"))
    info = read_audio(path)
    assert (info.title, info.artist, info.lyrics) == ("Hello", "World", "line one\nline two")
    assert clean_lyrics("a\tb\x1f\nc") == "a\tb\nc"


def test_the_decade_is_the_original_releases_not_the_remasters(media: Path) -> None:
    from mutagen.id3 import TDOR, TDRC

    mp3 = _mp3(media, "remaster.mp3")
    _id3(mp3, TDRC(encoding=3, text="2011-03-01"), TDOR(encoding=3, text="1994"))
    v23 = _mp3(media, "remaster23.mp3")
    _id3(v23, TDRC(encoding=3, text="2011"), TDOR(encoding=3, text="1994"), v2=3)  # as TORY
    flac = _tone(media / "remaster.flac", "-metadata", "date=2011",
                 "-metadata", "originaldate=1994-05-01")
    plain = _tone(media / "plain.flac", "-metadata", "date=2011")
    decades = [read_audio(p).decade for p in (mp3, v23, flac, plain)]
    assert decades == ["1990s", "1990s", "1990s", "2010s"]


@pytest.mark.parametrize(("lyrics", "stub"), [
    ("Instrumental", "[Instrumental]"), ("[inst]", "[Instrumental]"),
    ("纯音乐，请欣赏", "[Instrumental]"), ("[00:00.00]此歌曲为没有填词的纯音乐，请您欣赏", "[Instrumental]"),
    ("연주곡", "[Instrumental]"), ("Instrumental break\nla la", "Instrumental break\nla la")])
def test_lyrics_tags_that_only_say_instrumental_give_an_instrumental_stub(
        media: Path, lyrics: str, stub: str) -> None:
    """Lyrics plugins and music apps fill the lyrics tag of a song without words; sung, it
    would teach the LoRA to sing "instrumental"."""
    from mutagen.id3 import USLT

    path = _mp3(media, f"inst-{abs(hash(lyrics))}.mp3")
    _id3(path, USLT(encoding=3, lang="chi", desc="", text=lyrics))
    assert lyrics_text(read_audio(path), Dataset()) == stub + "\n"


def test_credit_lines_at_the_top_of_lyrics_are_not_sung(media: Path) -> None:
    """Lyrics sites put the credits first (NetEase's LRC files, Melon's lyrics); a song's
    lines that merely look alike stay."""
    path = _mp3(media, "credits.mp3")
    (media / "credits.lrc").write_text(
        "[ti:晴天]\n[00:00.000] 作词 : 周杰伦\n[00:01.000] 作曲 : 周杰伦\n"
        "[00:02.000] 编曲 : 钟兴民\n[00:20.00]故事的小黄花\n[00:24.00]从出生那年就飘着\n",
        encoding="utf-8")
    assert lyrics_text(read_audio(path), Dataset()) == "故事的小黄花\n从出生那年就飘着\n"
    assert clean_lyrics("작사 : 김형석\n작곡 : 김형석\n\n[Verse]\n어느새 나는\n노래: 가사") == \
        "[Verse]\n어느새 나는\n노래: 가사"
    assert clean_lyrics("Lyrics by: John\nMusic by: Paul\nHello darkness") == "Hello darkness"
    assert clean_lyrics("Written by the river\nComposer: me") == \
        "Written by the river\nComposer: me"


def test_a_leading_line_naming_the_song_is_not_sung(media: Path) -> None:
    """KuGou's and QQ Music's LRC files start with "<title> - <artist>"."""
    from mutagen.id3 import TIT2, TPE1

    path = _mp3(media, "heading.mp3")
    _id3(path, TIT2(encoding=3, text="晴天"), TPE1(encoding=3, text="周杰伦"))
    (media / "heading.lrc").write_text(
        "[00:00.00]晴天 - 周杰伦\n[00:01.00]词：方文山\n[00:02.00]曲：周杰伦\n"
        "[00:20.00]故事的小黄花\n[00:30.00]晴天 - 周杰伦\n", encoding="utf-8")
    assert lyrics_text(read_audio(path), Dataset()) == "故事的小黄花\n晴天 - 周杰伦\n"
    assert clean_lyrics("Beatles - Yesterday\nYesterday\nall my troubles", "Yesterday",
                        "Beatles") == "Yesterday\nall my troubles"  # a title alone is sung


def test_lyrics_scraped_from_a_web_page_lose_the_pages_furniture(tmp_path: Path) -> None:
    """beets' lyrics plugin and others write what they scraped into the tag: HTML breaks and
    entities, and Genius's "12 Contributors… Lyrics", "You might also like" and "45Embed"."""
    scraped = ("12 ContributorsYesterday Lyrics\n[Verse 1]\nYesterday, all my troubles<br>"
               "seemed so far awayYou might also like[Chorus]\nWhy she had to go, I don&#39;t "
               "know &amp; she wouldn't say\nI believe in yesterday45Embed")
    path = _tone(tmp_path / "scraped.flac", "-metadata", "title=Yesterday",
                 "-metadata", "artist=The Beatles", "-metadata", f"lyrics={scraped}")
    assert lyrics_text(read_audio(path), Dataset()) == (
        "[Verse 1]\nYesterday, all my troubles\nseemed so far away\n[Chorus]\n"
        "Why she had to go, I don't know & she wouldn't say\nI believe in yesterday\n")
    assert clean_lyrics("Some Lyrics\nreal line\nI dream of Embed") == \
        "Some Lyrics\nreal line\nI dream of Embed"  # no page around them: words stay


def test_a_whole_cd_in_one_file_is_told_to_be_split_along_its_cue_sheet(tmp_path: Path) -> None:
    from acewatchd.config.schema import Watch
    from acewatchd.ingest.validate import validate

    watch = Watch(min_duration_seconds=0.5, max_duration_seconds=1)  # the 2 s tone: "too long"
    album = _tone(tmp_path / "Album.flac")
    assert "cue sheet" not in (validate(album, watch).reason)
    (tmp_path / "Album.cue").write_text('FILE "Album.flac" WAVE\n  TRACK 01 AUDIO\n', "utf-8")
    reason = validate(album, watch).reason
    assert "longer than [watch] max_duration_seconds = 1" in reason
    assert "whole CD in one file (Album.cue lies beside it)" in reason
    other = _tone(tmp_path / "CDImage.flac")
    (tmp_path / "Some Band - Live.cue").write_bytes(
        'PERFORMER "김경호"\nFILE "CDImage.flac" WAVE\n'.encode("cp949"))
    assert "(Some Band - Live.cue lies beside it)" in validate(other, watch).reason
    (tmp_path / "Album.cue").unlink()
    (tmp_path / "Album.cue").symlink_to(tmp_path / "Some Band - Live.cue")  # never followed
    assert "cue sheet" not in validate(album, watch).reason
