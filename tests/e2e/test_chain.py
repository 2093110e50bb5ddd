"""The whole chain through the real daemon, with the simulator as the managed ACE-Step server.

`acewatchd run` is a real subprocess; songs are real MP3s (ffmpeg) copied into drop/; the
nightly schedule fires every minute; the managed server is the real simulator subprocess that
ServerManager starts and stops. Nothing is called by hand between the drop and the outbox.
Also: SIGTERM in the middle of a training ends the daemon cleanly (exit 0 within 15 s, run
'interrupted', server stopped), and the next daemon resumes that run from its checkpoint.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from acewatchd.acestep import serverproc
from acewatchd.acestep.versions import V1, V2
from tests.support.chain import DATASET, ChainHome  # DATASET: Korean tag and titles

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture()
def make_home(tmp_path: Path) -> Iterator[Callable[..., ChainHome]]:
    homes: list[ChainHome] = []

    def make(**kw: Any) -> ChainHome:
        home = ChainHome(tmp_path / f"home{len(homes)}", **kw)
        homes.append(home)
        return home

    yield make
    for home in homes:
        home.cleanup()


@pytest.mark.parametrize("version", [V1.commit, V2.commit], ids=[V1.label, V2.label])
def test_dropped_songs_reach_the_outbox_with_no_manual_step(make_home, version: str) -> None:
    """The whole chain through the real daemon and its managed ACE-Step (the simulator as
    each supported version)."""
    home = make_home(speed=50.0, catch_up=False, version=version)
    proc = home.start()
    home.drop_songs(2)
    drop = home.path / "drop" / DATASET.name
    home.wait("stubs", lambda: len(list(drop.glob("*.caption.txt"))) == 2
              and len(list(drop.glob("*.lyrics.txt"))) == 2, 60, proc)
    run = home.wait("an outbox run", lambda: home.outbox_runs(), 300, proc)[0]
    assert (run / "index.html").is_file()
    assert list(run.rglob("*.mp3")), "the outbox run has no rendered audio"
    manifest = json.loads((run / "samples.json").read_text(encoding="utf-8"))
    assert version in manifest["acestep"]["api"]          # the page names who rendered it
    home.wait("the outbox index", lambda: (home.path / "outbox" / "index.html").is_file(), 30,
              proc)   # written right after the run folder is in place
    nightly = home.wait("the nightly row to close", lambda: home.rows(
        "SELECT outcome, message FROM runs WHERE job='nightly' AND outcome != 'running'"
        " ORDER BY id"), 60, proc)
    assert nightly[0]["outcome"] == "done", nightly[0]["message"]
    train = home.rows("SELECT outcome, epochs_done FROM runs WHERE job='train'")
    assert [(r["outcome"], r["epochs_done"]) for r in train] == [("done", 100)]
    # After the night's work the managed server is stopped (memory free by day).
    home.wait("the managed server to stop", lambda: home.server_pid() is None
              and not serverproc.port_open("127.0.0.1", home.port), 60, proc)
    code, took = home.sigterm(proc)
    assert code == 0 and took < 15


def test_sigterm_during_training_interrupts_and_the_next_run_resumes(make_home) -> None:
    # 100 epochs at speed 4 take ~25 s; the checkpoint at epoch 50 is the resume point.
    home = make_home(speed=4.0, catch_up=True)
    proc = home.start()
    home.drop_songs(1)
    home.wait("training past the epoch-50 checkpoint", lambda: home.rows(
        "SELECT 1 FROM runs r JOIN progress p ON p.run_id = r.id WHERE r.job='train' AND"
        " r.outcome='running' AND p.epoch >= 55"), 300, proc)
    server = home.server_pid()
    assert server is not None and serverproc._pid_alive(server)
    code, took = home.sigterm(proc)
    assert code == 0, home.log_tail()
    assert took < 15, f"shutdown took {took:.1f}s"
    train = home.rows("SELECT outcome, run_name, epochs_done FROM runs WHERE job='train'")
    assert [r["outcome"] for r in train] == ["interrupted"]
    assert train[0]["epochs_done"] >= 50
    # The catch-up fire at start-up may come before the song is dropped: it is skipped.
    nightly = home.rows("SELECT outcome FROM runs WHERE job='nightly' AND outcome != 'skipped'")
    assert [r["outcome"] for r in nightly] == ["interrupted"]
    assert not serverproc._pid_alive(server), "the managed server outlived the daemon"
    assert not serverproc.port_open("127.0.0.1", home.port)
    # The interrupted run has a forecast from the pace the daemon's session measured.
    status = subprocess.run([sys.executable, "-m", "acewatchd", "--config", str(home.config),
                             "status", "--json"], capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    fc = json.loads(status.stdout)["forecast"][DATASET.name]
    assert fc["run_name"] == train[0]["run_name"] and not fc["finished"]
    assert fc["seconds_per_epoch"] > 0 and fc["nights_left"] >= 1
    assert fc["epochs_done"] == train[0]["epochs_done"] and fc["epochs_total"] == 100
    assert f"{fc['epochs_done']}/100 epochs" in fc["sentence"]

    proc = home.start()  # catch-up: the interrupted night is still inside its window
    done = home.wait("the resumed training to finish", lambda: home.rows(
        "SELECT id, run_name FROM runs WHERE job='train' AND outcome='done'"), 300, proc)
    assert done[0]["run_name"] == train[0]["run_name"], "a new run instead of a resume"
    first = home.rows("SELECT MIN(epoch) AS e FROM progress WHERE run_id=?", done[0]["id"])
    assert first[0]["e"] > 50, "training restarted from epoch 1 instead of the checkpoint"
    home.wait("an outbox run", lambda: home.outbox_runs(), 300, proc)
    code, took = home.sigterm(proc)
    assert code == 0 and took < 15


def _reconfigure(home: ChainHome, **sections: dict[str, Any]) -> None:
    import tomllib

    table = tomllib.loads(home.config.read_text(encoding="utf-8"))
    for name, values in sections.items():
        table.setdefault(name, {}).update(values)
    home.config.write_text(tomli_w.dumps(table), encoding="utf-8")


@pytest.mark.parametrize("fault", ["", "lora-no-effect"], ids=["normal", "no-effect"])
def test_the_morning_page_ranks_the_checkpoints_and_raises_the_no_effect_alarm(
        make_home, fault: str) -> None:
    """Through the real daemon: the grid of checkpoints 50/100/150 + final (epoch 200) is
    measured. The simulator makes epoch 150 the closest to the songs and the final adapter a copy of one;
    with its no-effect fault every LoRA clip equals base, and the page, `status` and the
    notification say the LoRA had no audible effect."""
    from acewatchd.simulator.faults import write_control
    from tests.support.webhook import webhook_receiver

    home = make_home(speed=50.0, catch_up=False)
    root = home.path / "acestep-simulator"
    if fault:
        write_control(root, [fault])
    with webhook_receiver() as (url, posts):
        _reconfigure(home, train={"epochs": 200, "save_every": 50},
                     notify={"macos": False, "webhook_url": url})
        proc = home.start()
        home.drop_songs(2)
        run = home.wait("an outbox run", lambda: home.outbox_runs(), 400, proc)[0]
        analysis = json.loads((run / "analysis.json").read_text(encoding="utf-8"))
        manifest = json.loads((run / "samples.json").read_text(encoding="utf-8"))
        home.wait("the notification", lambda: posts, 60, proc)
        status = subprocess.run([sys.executable, "-m", "acewatchd", "--config",
                                 str(home.config), "status", "--json"], capture_output=True,
                                text=True, timeout=60)
        code, _took = home.sigterm(proc)
    assert code == 0
    assert {c["checkpoint"] for c in manifest["columns"]} == {
        "base", "epoch_50", "epoch_100", "epoch_150", "final"}
    assert len(analysis["columns"]) == 4 * 2          # adapters x scales
    page = (run / "index.html").read_text(encoding="utf-8")
    report = json.loads(status.stdout)
    problems = " ".join(e["message"] for e in report["recent_errors"])
    title, body = posts[-1]
    if fault:
        assert analysis["no_effect"] is True
        assert all(c["no_effect"] for c in analysis["columns"])
        assert 'role="alert"' in page and "no audible effect" in page
        assert "no audible effect" in problems
        assert "no audible effect" in report["last"][DATASET.name]["render"]["message"]
        assert "no audible effect" in title and "likely causes" in body
        return
    assert analysis["no_effect"] is False and not any(c["no_effect"] for c in analysis["columns"])
    ranked = sorted((c for c in analysis["columns"] if c["rank"]), key=lambda c: c["rank"])
    assert ranked[0]["checkpoint"] == "epoch_150", ranked
    copying = {c["checkpoint"] for c in analysis["columns"] if c["copying"]}
    assert "final" in copying and "epoch_150" not in copying
    assert "closest to your songs: epoch 150" in analysis["advice"]
    assert 'role="alert"' not in page and "Which checkpoint?" in page
    assert "no audible effect" not in problems
    assert "samples ready" in title and "closest to your songs" in body
