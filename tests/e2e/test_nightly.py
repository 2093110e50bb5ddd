"""The whole chain with the real parts: real MP3s, `acewatchd scan`, real prepare (SIMULATOR
preprocessing stand-in), training and rendering on the running simulator through the real
client, `acewatchd train --now` as a subprocess; and the real daemon rescheduling on a cron
edit."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from acewatchd.acestep.layout import final_adapter, run_dir
from acewatchd.acestep.versions import V1, V2
from acewatchd.config.load import load_config
from acewatchd.demo.audiogen import make_mp3
from acewatchd.ledger.db import Ledger
from acewatchd.nightly.env import NightlyEnv
from acewatchd.nightly.run import run_dataset
from acewatchd.simulator.harness import SimHandle, running_simulator
from acewatchd.util.locks import JobLock
from acewatchd.util.power import FakePower
from tests.support.clock import FakeClock
from tests.support.simhome import cli, sim_config

pytestmark = pytest.mark.timeout(300)
NIGHT = datetime(2026, 6, 3, 1, tzinfo=UTC).timestamp()


@pytest.fixture(params=[V1.commit, V2.commit], ids=[V1.label, V2.label])
def chain(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, SimHandle]]:
    """Three real songs scanned into a home, and the simulator as each supported version."""
    marker = request.node.get_closest_marker("epochs")
    epochs = marker.args[0] if marker else 100
    with running_simulator(tmp_path / "ace", speed=25.0, version=request.param) as sim:
        config = tmp_path / "config.toml"
        config.write_text(sim_config(sim, epochs=epochs,
                                     extra='[datasets.band]\ntag = "the band"\n'), "utf-8")
        for i in range(3):
            add_song(tmp_path, i)
        scan = cli(config, "scan")
        assert scan.returncode == 0, scan.stdout + scan.stderr
        yield config, sim


def add_song(home: Path, i: int) -> None:
    make_mp3(home / "drop" / "band" / f"track {i}.mp3", seconds=4, freq=220 + 110 * i)


def test_train_now_then_nightly_skips_unchanged_and_trains_changed(
        chain: tuple[Path, SimHandle]) -> None:
    config, sim = chain
    done = cli(config, "train", "band", "--now")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "band: done" in done.stdout
    cfg = load_config(config)
    ledger = Ledger(cfg.paths.state)
    try:
        first = ledger.connect().execute("SELECT * FROM runs WHERE job='train'").fetchone()
        assert first["outcome"] == "done" and first["epochs_done"] == 100
        assert final_adapter(run_dir(cfg.acestep.root, "band", first["run_name"])) is not None
        outbox = list((cfg.paths.outbox / "band").glob("*/index.html"))
        assert len(outbox) == 1, "rendered samples in the outbox"
        env = NightlyEnv.default(ledger, lambda: cfg, clock=FakeClock(NIGHT, ticking=True), power=FakePower(),
                                 backoff=0.2, guard_interval=0.05)
        # Same songs, captions, lyrics: the nightly run does not train again.
        assert run_dataset(lambda: cfg, env, "band", scheduled_for=NIGHT,
                           window_end=NIGHT + 6 * 3600) == "skipped"
        add_song(config.parent, 3)
        assert cli(config, "scan").returncode == 0
        assert run_dataset(lambda: cfg, env, "band", scheduled_for=NIGHT + 86400,
                           window_end=NIGHT + 86400 + 6 * 3600) == "done"
        rows = ledger.connect().execute("SELECT run_name, content_hash FROM runs WHERE "
                                        "job='train' ORDER BY id").fetchall()
        assert len(rows) == 2 and rows[0][1] != rows[1][1]
        assert len(list((cfg.paths.outbox / "band").glob("*/index.html"))) == 2
    finally:
        ledger.close()


@pytest.mark.epochs(200)
def test_two_nights_real_prepare_train_resume_render(chain: tuple[Path, SimHandle]) -> None:
    """The chain on each version: real prepare, training stopped by the window's end (every
    version then says "Training completed!"), resumed the next night from its checkpoint,
    finished, rendered; the outbox page names the ACE-Step version, status shows it."""
    config, sim = chain
    cfg = load_config(config)
    ledger = Ledger(cfg.paths.state)
    clock = FakeClock(NIGHT, ticking=True)
    env = NightlyEnv.default(ledger, lambda: cfg, clock=clock, power=FakePower(),
                             backoff=0.2, guard_interval=0.05)
    end = NIGHT + 6 * 3600

    def window_ends_at_epoch_60() -> None:
        _poll(lambda: (ledger.connect().execute("SELECT MAX(epoch) FROM progress").fetchone()[0]
                       or 0) >= 60, 120)
        clock.set_wall(end + 1)

    try:
        worker = threading.Thread(target=window_ends_at_epoch_60)
        worker.start()
        try:
            first = run_dataset(lambda: cfg, env, "band", scheduled_for=NIGHT, window_end=end)
        finally:
            worker.join(130)
        assert first == "interrupted"
        clock.set_wall(NIGHT + 86400)
        second = run_dataset(lambda: cfg, env, "band", scheduled_for=NIGHT + 86400,
                             window_end=NIGHT + 86400 + 6 * 3600)
        assert second == "done"
        rows = ledger.connect().execute("SELECT * FROM runs WHERE job='train' ORDER BY id"
                                        ).fetchall()
        assert [r["outcome"] for r in rows] == ["interrupted", "done"]
        assert rows[0]["run_name"] == rows[1]["run_name"]            # one run, two nights
        assert ledger.connect().execute("SELECT MIN(epoch) FROM progress WHERE run_id=?",
                                        (rows[1]["id"],)).fetchone()[0] == 51
        pages = sorted((cfg.paths.outbox / "band").glob("*/samples.json"))
        manifests = [json.loads(p.read_text(encoding="utf-8")) for p in pages]
        # The first night's progress report of its checkpoints, then the finished run.
        assert [m["finished"] for m in manifests] == [False, True]
        manifest = manifests[1]
        assert sim.version in manifest["acestep"]["api"]
        page = (pages[1].parent / "index.html").read_text(encoding="utf-8")
        assert sim.version in page
    finally:
        ledger.close()
    status = cli(config, "status", "--json")
    ace = json.loads(status.stdout)["acestep"]
    assert ace["contract"] == sim.version and ace["api"] in ("V1", "V2")
    assert sim.version in cli(config, "status").stdout


@pytest.mark.epochs(2000)
def test_ctrl_c_on_train_now_stops_the_training_and_records_it_interrupted(
        chain: tuple[Path, SimHandle]) -> None:
    config, sim = chain
    cfg = load_config(config)
    # Ctrl-C as in a terminal. A shell's background job (`make test &`, nohup) ignores SIGINT,
    # its children inherit that, and Python then installs no KeyboardInterrupt: the command
    # would rightly go on. So the child starts with SIGINT at its default whatever runs pytest.
    proc = subprocess.Popen([sys.executable, "-m", "acewatchd", "--config", str(config),
                             "train", "band", "--now"], cwd=config.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=_sigint_default)
    try:
        db = cfg.paths.state / "ledger.sqlite3"

        def epoch() -> int:
            try:
                with sqlite3.connect(db, timeout=5) as conn:
                    return int(conn.execute("SELECT MAX(epoch) FROM progress").fetchone()[0]
                               or 0)
            except sqlite3.Error:
                return 0

        assert _poll(lambda: epoch() >= 10, 120), "training did not start"
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            status = Path(f"/proc/{proc.pid}/status")
            signals = [ln for ln in status.read_text().splitlines()
                       if ln.startswith("Sig")] if status.exists() else []
            proc.kill()
            out, _ = proc.communicate()
            pytest.fail(f"still running 60 s after SIGINT; {signals}; output:\n{out[-4000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out
    assert "stopping training" in out
    with sqlite3.connect(cfg.paths.state / "ledger.sqlite3") as conn:
        rows = conn.execute("SELECT job, outcome FROM runs WHERE job IN ('train', 'manual') "
                            "ORDER BY id").fetchall()
    assert rows == [("manual", "interrupted"), ("train", "interrupted")], rows
    assert sim.call_counts().get("/stop_training", 0) >= 1     # stopped in ACE-Step itself
    assert epoch() < 2000


def _sigint_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_train_now_refuses_while_another_job_trains(chain: tuple[Path, SimHandle]) -> None:
    config, _sim = chain
    cfg = load_config(config)
    with JobLock(cfg.paths.state):
        busy = cli(config, "train", "band", "--now", timeout=60)
    assert busy.returncode == 3, busy.stdout + busy.stderr
    assert "another training job is running" in busy.stderr


# --------------------------------------------------------------------------- the real daemon


def _next_from_ledger(state: Path) -> dict[str, str]:
    try:
        with sqlite3.connect(state / "ledger.sqlite3", timeout=5) as conn:
            row = conn.execute("SELECT value FROM kv WHERE key='schedule.next'").fetchone()
    except sqlite3.Error:
        return {}
    return json.loads(row[0]) if row else {}


def _poll(pred, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    return None


def test_daemon_reschedules_when_cron_is_edited(home, run_daemon) -> None:  # type: ignore
    (home.drop / "ambient").mkdir(parents=True, exist_ok=True)
    base = ('[acestep]\nurl = "http://127.0.0.1:9"\n[watch]\nsettle_seconds = 0.4\n'
            'poll_seconds = 0.1\nsettle_polls = 2\n[datasets.ambient]\ntag = "calm"\n')
    home.write_config(base + '[schedule]\ncron = "0 1 * * *"\ntimezone = "UTC"\n'
                             'catch_up = false\n')
    daemon = run_daemon()
    first = _poll(lambda: _next_from_ledger(home.state).get("ambient"))
    assert first and first.endswith("T01:00:00+00:00"), daemon.output()
    home.write_config(base + '[schedule]\ncron = "45 4 * * 2"\ntimezone = "UTC"\n'
                             'catch_up = false\n')
    moved = _poll(lambda: (v := _next_from_ledger(home.state).get("ambient")) != first and v)
    assert moved, daemon.output()
    when = datetime.fromisoformat(moved)
    assert (when.hour, when.minute, when.weekday()) == (4, 45, 1)  # cron 2 = Tuesday
    status = subprocess.run([sys.executable, "-m", "acewatchd", "--config", str(home.config),
                             "status", "--json"], capture_output=True, text=True, timeout=60)
    assert moved in status.stdout
    assert daemon.stop() == 0
