"""Hostile inputs through the real daemon and the real CLI (issue 14, items 8-15): names that
are not UTF-8 or hold control characters, FIFOs, devices and links where songs or sidecars
should be, symlinked folders and loops, huge and empty files, files that are not audio,
config that must be refused (by `config check` and by the running daemon's reload) and dataset
names on the command line that try to leave their folder.

One daemon serves every drop case. After all of them it is still alive, nothing was written
outside the home (a sentinel tree around it is compared with its snapshot), and every case was
reported naming its file or key: in the ledger and rejected/ reason file, the log, `status
--json`, or the command's output.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from acewatchd.demo.audiogen import SongTags, make_mp3, write_id3
from tests.support.home import Home, acewatchd_cmd, lock_pid, run_cli
from tests.support.hostile import Reports, snapshot
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
DS = "hostile"
REPORT_TIMEOUT = 120  # the daemon works through every case with 6 engineers on 2 CPUs


@dataclass
class World:
    base: Path          # the sentinel tree; the home lies deep inside it
    home: Home
    outside: Path       # what links in drop/ point at
    song: bytes
    short: bytes
    hostile_tags: bytes
    proc: subprocess.Popen[bytes] | None = None
    before: dict[str, Any] = field(default_factory=dict)

    @property
    def ds(self) -> Path:
        return self.home.drop / DS

    @property
    def reports(self) -> Reports:
        return Reports(self.home)

    def write(self, name: str | bytes, data: bytes, folder: Path | None = None) -> Path:
        where = os.fsencode(folder or self.ds)
        os.makedirs(where, exist_ok=True)
        path = where + b"/" + (name if isinstance(name, bytes) else os.fsencode(name))
        with open(path, "wb") as fh:
            fh.write(data)
        return Path(os.fsdecode(path))


def config_table(home: Path) -> dict[str, Any]:
    # Absolute folders: a case's config file, wherever it lies, names the same home.
    return {
        "paths": {k: str(home / k) for k in ("drop", "outbox", "rejected", "state", "logs")},
        "acestep": {"root": str(home / "ace"), "manage_server": False},
        "watch": {"settle_seconds": 0.4, "poll_seconds": 0.1, "settle_polls": 2,
                  "rescan_minutes": 0.5, "min_duration_seconds": 2.0},
        "schedule": {"enabled": False, "catch_up": False},
        "notify": {"macos": False},
        "datasets": {DS: {"tag": "hostile test", "genre": "noise"}},
    }


# --------------------------------------------------------------------------- drop cases


@dataclass(frozen=True)
class DropCase:
    id: str
    make: Callable[[World], object]
    relpath: str                 # the ledger key (non-UTF-8 bytes shown as \xNN)
    expect: str                  # rejected | stubbed | skipped (a folder never entered)
    says: str = ""               # words the reason must hold
    check: Callable[[World], object] | None = None
    dataset: str = DS


def _fifo(name: str) -> Callable[[World], object]:
    return lambda w: (w.ds.mkdir(parents=True, exist_ok=True), os.mkfifo(w.ds / name))


def _link(name: str, target: Callable[[World], str | Path], song: bool = False,
          is_dir: bool = False) -> Callable[[World], object]:
    def make(w: World) -> None:
        w.ds.mkdir(parents=True, exist_ok=True)
        if song:
            w.write(Path(name).name.split(".")[0] + ".mp3", w.song)
        os.symlink(target(w), w.ds / name, target_is_directory=is_dir)
    return make


def _song(name: str | bytes, data: Callable[[World], bytes] = lambda w: w.song,
          folder: str = "") -> Callable[[World], object]:
    return lambda w: w.write(name, data(w), w.ds / folder if folder else None)


def _sparse(name: str, size: int) -> Callable[[World], object]:
    def make(w: World) -> None:
        path = w.write(name, b"ID3")
        os.truncate(path, size)
    return make


def _still(name: str, test: Callable[[os.stat_result], bool]) -> Callable[[World], object]:
    """The user's entry ``name`` is still there, unchanged in kind."""
    def check(w: World) -> None:
        assert test(os.lstat(w.ds / name)), f"{name} was replaced"
    return check


def _is_fifo(st: os.stat_result) -> bool:
    return (st.st_mode & 0o170000) == 0o010000


def _is_link(st: os.stat_result) -> bool:
    return (st.st_mode & 0o170000) == 0o120000


def _with_sidecar(stem: str, kind: str, make_sidecar: Callable[[World, Path], object]
                  ) -> Callable[[World], object]:
    def make(w: World) -> None:
        w.write(f"{stem}.mp3", w.song)
        make_sidecar(w, w.ds / f"{stem}.{kind}.txt")
    return make


def _no_copy(name: str) -> Callable[[World], object]:
    def check(w: World) -> None:
        assert not (w.home.rejected / DS / name).exists(), "a copy of a huge or odd file"
    return check


CP949 = "김경호".encode("cp949")
SJIS = "曲名".encode("shift_jis")


def key(name: bytes) -> str:
    """The ledger key of a name that is not UTF-8: its bytes, the bad ones shown as \\xNN."""
    return name.decode("utf-8", "backslashreplace")


LONG = "가" * 80 + "x" * 6 + ".mp3"  # 250 bytes: its .caption.txt stub would not fit

DROP_CASES = [
    DropCase("name-cp949", _song(CP949 + b".mp3"), key(CP949 + b".mp3"), "rejected",
             "not valid UTF-8"),
    DropCase("name-latin1", _song(b"caf\xe9.mp3"), "caf\\xe9.mp3", "rejected", "UTF-8"),
    DropCase("name-shift-jis", _song(SJIS + b".mp3"),
             key(SJIS + b".mp3"), "rejected", "UTF-8"),
    DropCase("folder-name-not-utf8", _song("in.mp3", folder=os.fsdecode(b"\xc7\xd1")),
             "\\xc7\\xd1/in.mp3", "rejected", "UTF-8"),
    DropCase("name-lone-continuation-byte", _song(b"\x80\x80.mp3"), "\\x80\\x80.mp3",
             "rejected", "UTF-8"),
    DropCase("fifo-as-song", _fifo("pipe.mp3"), "pipe.mp3", "rejected", "not a regular file",
             _still("pipe.mp3", _is_fifo)),
    DropCase("fifo-caption", _with_sidecar("fifocap", "caption", lambda w, p: os.mkfifo(p)),
             "fifocap.mp3", "stubbed", check=_still("fifocap.caption.txt", _is_fifo)),
    DropCase("fifo-lyrics", _with_sidecar("fifolyr", "lyrics", lambda w, p: os.mkfifo(p)),
             "fifolyr.mp3", "stubbed", check=_still("fifolyr.lyrics.txt", _is_fifo)),
    DropCase("devzero-lyrics", _with_sidecar("zerolyr", "lyrics",
                                             lambda w, p: p.symlink_to("/dev/zero")),
             "zerolyr.mp3", "stubbed", check=_still("zerolyr.lyrics.txt", _is_link)),
    DropCase("devzero-caption", _with_sidecar("zerocap", "caption",
                                              lambda w, p: p.symlink_to("/dev/zero")),
             "zerocap.mp3", "stubbed", check=_still("zerocap.caption.txt", _is_link)),
    DropCase("caption-links-outside", _with_sidecar(
        "outcap", "caption", lambda w, p: p.symlink_to(w.outside / "secret.txt")),
        "outcap.mp3", "stubbed", check=_still("outcap.caption.txt", _is_link)),
    DropCase("lyrics-dangling-link-outside", _with_sidecar(
        "danglyr", "lyrics", lambda w, p: p.symlink_to(w.outside / "not-there.txt")),
        "danglyr.mp3", "stubbed", check=lambda w: not (w.outside / "not-there.txt").exists()),
    DropCase("caption-is-a-folder", _with_sidecar("dircap", "caption",
                                                  lambda w, p: p.mkdir()),
             "dircap.mp3", "stubbed", check=lambda w: (w.ds / "dircap.caption.txt").is_dir()),
    DropCase("huge-caption", _with_sidecar(
        "hugecap", "caption", lambda w, p: os.truncate(w.write(p.name, b"big"), 64 << 20)),
        "hugecap.mp3", "stubbed",
        check=lambda w: os.path.getsize(w.ds / "hugecap.caption.txt") == 64 << 20),
    DropCase("song-devzero", _link("zero.mp3", lambda w: "/dev/zero"), "zero.mp3", "rejected",
             "symbolic link"),
    DropCase("song-devurandom", _link("urandom.mp3", lambda w: "/dev/urandom"), "urandom.mp3",
             "rejected", "symbolic link"),
    DropCase("song-devnull", _link("null.flac", lambda w: "/dev/null"), "null.flac",
             "rejected", "symbolic link"),
    DropCase("song-links-outside", _link("secret.mp3", lambda w: w.outside / "secret.mp3"),
             "secret.mp3", "rejected", "outside", _no_copy("secret.mp3")),
    DropCase("song-dangling-link", _link("gone.mp3", lambda w: "/nonexistent/gone.mp3"),
             "gone.mp3", "rejected", "symbolic link"),
    DropCase("song-link-loop", _link("loop.mp3", lambda w: w.ds / "loop.mp3"), "loop.mp3",
             "rejected", "symbolic link"),
    DropCase("folder-links-outside", _link("linked", lambda w: w.outside, is_dir=True),
             "linked", "skipped", "symbolic link"),
    DropCase("folder-link-loop", _link("self", lambda w: w.ds, is_dir=True), "self",
             "skipped", "symbolic link"),
    DropCase("folder-link-to-root", _link("rootlink", lambda w: "/", is_dir=True), "rootlink",
             "skipped", "symbolic link"),
    DropCase("dataset-folder-is-a-link", lambda w: (w.home.drop.mkdir(exist_ok=True), os.symlink(
        w.outside, w.home.drop / "linked_ds", target_is_directory=True)), "linked_ds",
        "skipped", "symbolic link", dataset="linked_ds"),
    DropCase("folder-named-like-a-song", _song("inner.mp3", folder="album.mp3"),
             "album.mp3/inner.mp3", "stubbed"),
    DropCase("hardlink-to-outside", lambda w: (w.ds.mkdir(parents=True, exist_ok=True), os.link(
        w.outside / "hard.mp3", w.ds / "hard.mp3")), "hard.mp3", "stubbed"),
    DropCase("sparse-2gb", _sparse("huge.mp3", 2 << 30), "huge.mp3", "rejected", "GB",
             _no_copy("huge.mp3")),
    DropCase("zero-bytes", _song("empty.mp3", lambda w: b""), "empty.mp3", "rejected",
             "empty"),
    DropCase("text-named-mp3", _song("notes.mp3", lambda w: b"not audio at all\n" * 50),
             "notes.mp3", "rejected"),
    DropCase("random-bytes-flac", _song("noise.flac", lambda w: os.urandom(64 << 10)),
             "noise.flac", "rejected"),
    DropCase("png-named-wav", _song("picture.wav", lambda w: b"\x89PNG\r\n\x1a\n" + b"\0" * 4096),
             "picture.wav", "rejected"),
    DropCase("truncated-mp3", _song("cut.mp3", lambda w: w.song[:300]), "cut.mp3",
             "rejected"),
    DropCase("id3-header-only", _song("tagonly.mp3", lambda w: b"ID3\x03\0\0\0\0\0\0"),
             "tagonly.mp3", "rejected"),
    DropCase("wav-header-no-frames", _song("silent.wav", lambda w: _empty_wav()), "silent.wav",
             "rejected"),
    DropCase("too-short", _song("blip.mp3", lambda w: w.short), "blip.mp3", "rejected",
             "short"),
    DropCase("name-too-long-for-stub", _song(LONG), LONG, "rejected", "too long"),
    DropCase("name-escape-sequence", _song("red\x1b[31malert.mp3"), "red\x1b[31malert.mp3",
             "stubbed"),
    DropCase("name-newline", _song("two\nlines.mp3"), "two\nlines.mp3", "stubbed"),
    DropCase("name-carriage-return-bell", _song("cr\r\abell.mp3"), "cr\r\abell.mp3",
             "stubbed"),
    DropCase("name-html", _song("<img src=x onerror=alert(1)>.mp3"),
             "<img src=x onerror=alert(1)>.mp3", "stubbed"),
    DropCase("name-bidi-override", _song("\u202egnp.mp3"), "\u202egnp.mp3", "stubbed"),
    DropCase("name-dash-option", _song("-rf.mp3"), "-rf.mp3", "stubbed"),
    DropCase("name-quotes-backslash", _song("a\"b\\c'd.mp3"), "a\"b\\c'd.mp3", "stubbed"),
    DropCase("tags-path-and-control-chars", _song("tagged.mp3", lambda w: w.hostile_tags),
             "tagged.mp3", "stubbed",
             check=lambda w: (w.ds / "tagged.lyrics.txt").is_file()),
    DropCase("dataset-name-not-allowed", _song("x.mp3", folder="../bad name!"), "x.mp3",
             "any", dataset="bad name!"),
]


def _empty_wav() -> bytes:
    fmt = (b"fmt " + (16).to_bytes(4, "little") + (1).to_bytes(2, "little")
           + (1).to_bytes(2, "little") + (44100).to_bytes(4, "little")
           + (88200).to_bytes(4, "little") + (2).to_bytes(2, "little")
           + (16).to_bytes(2, "little"))
    body = b"WAVE" + fmt + b"data" + (0).to_bytes(4, "little")
    return b"RIFF" + len(body).to_bytes(4, "little") + body


# --------------------------------------------------------------------------- the shared daemon


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("sentinel")
    home = Home(base / "a" / "b" / "c" / "home")
    (home.root / "ace").mkdir(parents=True)
    home.write_config(tomli_w.dumps(config_table(home.root)))
    outside = base / "outside"
    outside.mkdir()
    src = tmp_path_factory.mktemp("songs")
    song = make_mp3(src / "song.mp3", seconds=4, tags=SongTags(title="노래", artist="가수"))
    short = make_mp3(src / "short.mp3", seconds=1)
    tagged = make_mp3(src / "tagged.mp3", seconds=4)
    write_id3(tagged, SongTags(title="../../../etc/passwd\x1b[2J", artist="<b>x</b>\r\n",
                               genre="\u202e", lyrics="line\x00one\x07\n" * 2000))
    w = World(base, home, outside, song.read_bytes(), short.read_bytes(), tagged.read_bytes())
    for name in ("secret.mp3", "hard.mp3"):
        shutil.copyfile(song, outside / name)
    (outside / "secret.txt").write_text("the user's own file, outside drop/\n", "utf-8")
    (outside / "nested").mkdir()
    (outside / "nested" / "deep.mp3").write_bytes(w.song)
    # `train ../../x` from home/drop would reach base/a/b/c/x: a folder of songs is there.
    shutil.copyfile(song, w.write("escaped.mp3", w.song, base / "a" / "b" / "c" / "x"))
    for case in DROP_CASES:
        case.make(w)
    w.before = snapshot(base, home.root)
    log = home.root / "daemon.out"
    with open(log, "wb") as out:
        w.proc = subprocess.Popen(acewatchd_cmd(home, "run"), stdout=out,
                                  stderr=subprocess.STDOUT, cwd=home.root,
                                  stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: w.proc is not None and (w.proc.poll() is not None
                                                   or lock_pid(home) == w.proc.pid), 60,
                   message="the daemon's lock")
        assert w.proc.poll() is None, log.read_text("utf-8", errors="replace")
        yield w
    finally:
        if w.proc.poll() is None:
            w.proc.send_signal(signal.SIGTERM)
            try:
                w.proc.wait(30)
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait(10)


def _reported(w: World, case: DropCase) -> str:
    """Where the case was reported, naming its file ('' = not yet)."""
    r = w.reports
    if case.expect == "skipped":
        hits = r.logged("folder skipped", case.relpath)
        return f"log: {hits[-1]}" if hits else ""
    row = r.file_row(case.dataset, case.relpath)
    if row is None or row["state"] not in ("rejected", "stubbed"):
        return ""
    if row["state"] == "rejected":
        sentence = r.reason(case.dataset, case.relpath)
        return f"rejected/: {sentence}" if sentence else ""
    hits = r.logged("stubbed", json.dumps(case.relpath, ensure_ascii=False)[1:-1])
    return f"stubbed, log: {hits[-1]}" if hits else ""


@pytest.mark.parametrize("case", DROP_CASES, ids=[c.id for c in DROP_CASES])
def test_drop_case(world: World, case: DropCase) -> None:
    where = str(wait_until(lambda: _reported(world, case), REPORT_TIMEOUT,
                           interval=0.2, message=f"a report of {case.id}"))
    assert world.proc is not None and world.proc.poll() is None, "the daemon died"
    if case.expect in ("rejected", "stubbed"):
        row = world.reports.file_row(case.dataset, case.relpath)
        assert row is not None and row["state"] == case.expect, (dict(row or {}), where)
    if case.says:
        assert case.says in where, where
    if case.check is not None:
        assert case.check(world) is not False


# --------------------------------------------------------------------------- config cases


def _set(table: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(table))
    *parents, last = dotted.split(".")
    node = out
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return out


def _dumps(table: dict[str, Any]) -> str:
    text = tomli_w.dumps(table)
    return text


@dataclass(frozen=True)
class ConfigCase:
    id: str
    key: str
    value: Callable[[Path], Any]   # from the home folder
    says: str = ""


CONFIG_CASES = [
    ConfigCase("settle-nan", "watch.settle_seconds", lambda h: float("nan")),
    ConfigCase("settle-inf", "watch.settle_seconds", lambda h: float("inf")),
    ConfigCase("poll-minus-inf", "watch.poll_seconds", lambda h: float("-inf")),
    ConfigCase("rank-beyond-64-bits", "train.rank", lambda h: 2 ** 70),
    ConfigCase("render-no-prompts", "render.prompts", lambda h: []),
    ConfigCase("cron-never-fires", "schedule.cron", lambda h: "0 3 31 2 *"),
    ConfigCase("cron-garbage", "schedule.cron", lambda h: "every night please"),
    ConfigCase("server-command-empty", "acestep.server_command", lambda h: []),
    ConfigCase("url-file-scheme", "acestep.url", lambda h: "file:///etc/passwd"),
    ConfigCase("url-javascript", "acestep.url", lambda h: "javascript:alert(1)"),
    ConfigCase("rejected-inside-drop", "paths.rejected", lambda h: str(h / "drop" / "rej")),
    ConfigCase("outbox-inside-drop", "paths.outbox", lambda h: str(h / "drop" / "out")),
    ConfigCase("state-inside-drop", "paths.state", lambda h: str(h / "drop")),
    ConfigCase("logs-inside-drop", "paths.logs", lambda h: str(h / "drop" / DS / "logs")),
    ConfigCase("drop-inside-acestep", "paths.drop", lambda h: str(h / "ace" / "drop")),
    ConfigCase("drop-is-root", "paths.drop", lambda h: "/"),
    ConfigCase("outbox-is-root", "paths.outbox", lambda h: "/"),
    ConfigCase("drop-is-home-folder", "paths.drop", lambda h: str(Path.home())),
    ConfigCase("acestep-root-is-root", "acestep.root", lambda h: "/"),
    ConfigCase("label-path", "service.label", lambda h: "../../evil"),
    ConfigCase("label-shell", "service.label", lambda h: "a b;rm -rf ~"),
    ConfigCase("webhook-ftp", "notify.webhook_url", lambda h: "ftp://example.com/x"),
    ConfigCase("webhook-plain-http", "notify.webhook_url", lambda h: "http://example.com/hook"),
    ConfigCase("webhook-file", "notify.webhook_url", lambda h: "file:///etc/passwd"),
    ConfigCase("dataset-name-dotdot", "datasets.../x", lambda h: {"tag": "x"}, "../x"),
]


def _bad_config(world: World, case: ConfigCase) -> str:
    table = config_table(world.home.root)
    if case.key == "datasets.../x":
        table["datasets"]["../x"] = case.value(world.home.root)
    else:
        table = _set(table, case.key, case.value(world.home.root))
        if case.key == "acestep.server_command":
            table["acestep"]["manage_server"] = True
        if case.key == "schedule.cron":  # a disabled schedule's cron is never used
            table["schedule"]["enabled"] = True
    return _dumps(table)


@pytest.mark.parametrize("case", CONFIG_CASES, ids=[c.id for c in CONFIG_CASES])
def test_config_check_refuses(world: World, case: ConfigCase, tmp_path: Path) -> None:
    path = world.home.root / "cases" / f"{case.id}.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(_bad_config(world, case), encoding="utf-8")
    tomllib.loads(path.read_text("utf-8"))  # the file itself is valid TOML
    result = run_cli(world.home, "config", "check", str(path), timeout=60)
    said = result.stdout + result.stderr
    assert result.returncode != 0, said
    assert (case.says or case.key) in said, said


RELOAD_CASES = [c for c in CONFIG_CASES if c.id in (
    "settle-nan", "rank-beyond-64-bits", "rejected-inside-drop", "drop-is-root", "label-path",
    "webhook-plain-http", "cron-never-fires")]


@pytest.mark.parametrize("case", RELOAD_CASES, ids=[c.id for c in RELOAD_CASES])
def test_running_daemon_refuses_on_reload(world: World, case: ConfigCase) -> None:
    good = world.home.config.read_text("utf-8")
    world.home.write_config(_bad_config(world, case))
    try:
        # The ledger is polled, not `status` (one status run per check at the end): the
        # daemon's own word on config.toml is the key `status` shows as config.daemon_error.
        error = wait_until(world.reports.config_error, REPORT_TIMEOUT, 0.2,
                           f"the reload of {case.id}")
        assert (case.says or case.key) in str(error), error
        shown = world.reports.status()["config"]
        assert shown["daemon_error"] == error and not shown["valid"]
        assert world.proc is not None and world.proc.poll() is None
    finally:
        world.home.write_config(good)
    wait_until(lambda: not world.reports.config_error(), REPORT_TIMEOUT, 0.2,
               "the good config to be loaded again")


def test_a_config_read_all_the_time_is_still_reloaded(world: World) -> None:
    """Something reading config.toml every moment (`status` in a loop, an editor, a backup)
    must not keep an edit from being applied: only writes count as changes."""
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            world.home.config.read_bytes()
            stop.wait(0.05)

    reader = threading.Thread(target=read, name="config-reader")
    good = world.home.config.read_text("utf-8")
    reader.start()
    try:
        world.home.write_config(_bad_config(world, RELOAD_CASES[0]))
        error = wait_until(world.reports.config_error, 30, 0.2, "the bad config while read")
        assert RELOAD_CASES[0].key in str(error)
        world.home.write_config(good)
        wait_until(lambda: not world.reports.config_error(), 30, 0.2,
                   "the good config while read")
    finally:
        world.home.write_config(good)
        stop.set()
        reader.join()


# --------------------------------------------------------------------------- command lines


CLI_CASES = [
    ("prepare", "../../x"), ("prepare", "/etc"), ("prepare", "a/../../b"),
    ("train", "../../x"), ("render", "../../x"), ("render", "/"),
    ("export", "../../x"), ("prepare", "x\x1b[2J"), ("train", ".."), ("prepare", ""),
]


@pytest.mark.parametrize(("command", "name"), CLI_CASES,
                         ids=[f"{c}-{n.encode('unicode_escape').decode() or 'empty'}"
                              for c, n in CLI_CASES])
def test_command_line_dataset_name(world: World, command: str, name: str) -> None:
    args = [command, name] + (["--now"] if command == "train" else [])
    result = run_cli(world.home, *args, timeout=120)
    said = result.stdout + result.stderr
    assert result.returncode != 0, said
    assert name.encode("unicode_escape").decode() in said or repr(name)[1:-1] in said \
        or f"drop/{name}" in said, said
    assert "Traceback" not in said


# --------------------------------------------------------------------------- after all cases


def test_daemon_alive_and_nothing_written_outside(world: World) -> None:
    for case in DROP_CASES:  # (each case ran already; this is the whole set's end state)
        wait_until(lambda case=case: _reported(world, case), REPORT_TIMEOUT, 0.2, case.id)
    assert world.proc is not None and world.proc.poll() is None, "the daemon died"
    after = snapshot(world.base, world.home.root)
    changed = {k: (world.before.get(k), after.get(k)) for k in set(world.before) | set(after)
               if world.before.get(k) != after.get(k)}
    assert changed == {}, f"written outside the home: {changed}"


def test_status_survives_and_escapes_control_characters(world: World) -> None:
    doc = world.reports.status()
    assert doc["daemon"]["running"]
    assert doc["datasets"][DS]["files"].get("rejected", 0) >= 20
    text = world.reports.status_text()
    assert text.returncode == 0, text.stderr
    assert not any(ch in text.stdout for ch in "\x1b\r\a\u202e"), text.stdout


def test_the_daemon_stops_cleanly_after_everything(world: World) -> None:
    assert world.proc is not None
    world.proc.send_signal(signal.SIGTERM)
    assert world.proc.wait(30) == 0
    assert not os.path.exists(world.base / "a" / "b" / "c" / "x" / "escaped.caption.txt")
