"""nightly.py with a fake ACE-Step session: datasets in turn, failures isolated, power policy,
server unreachable = skipped (not failed), never twice per start time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acewatchd.ledger.db import Ledger
from acewatchd.nightly.env import NightlyEnv
from acewatchd.nightly.run import needs_training, run_dataset, run_nightly
from acewatchd.util.power import FakePower
from tests.support.clock import FakeClock
from tests.support.fakes import FakeClient, FakeStages, make_config

START = 1_780_000_000.0


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[dict[str, Any]]:
    text = "[datasets.b.render]\nenabled = false\n"
    cfg = make_config(tmp_path, text)
    for name in ("a", "b", "c"):
        (cfg.paths.drop / name).mkdir()
    ledger = Ledger(cfg.paths.state)
    stages = FakeStages()
    box: dict[str, Any] = {"down": False}

    def factory() -> FakeClient:
        return FakeClient(cfg.acestep.root, down=box["down"])

    env = NightlyEnv(ledger, factory, FakeClock(START, ticking=True), threading.Event(), FakePower(),
                     hooks=stages.hooks(), backoff=0.1, backoff_max=0.2, guard_interval=0.02)
    try:
        yield {"cfg": cfg, "ledger": ledger, "stages": stages, "env": env, "box": box,
               "config": lambda: cfg}
    finally:
        ledger.close()


def outcomes(ledger: Ledger, job: str = "nightly") -> list[tuple[str, str]]:
    rows = ledger.connect().execute("SELECT dataset, outcome FROM runs WHERE job=? ORDER BY id",
                                    (job,))
    return [(r[0], r[1]) for r in rows]


def test_one_failing_dataset_does_not_stop_the_others(rig: dict[str, Any]) -> None:
    rig["stages"].fail_prepare.add("b")
    got = run_nightly(rig["config"], rig["env"], ["a", "b", "c"], scheduled_for=START,
                      window_end=START + 3600)
    assert got == {"a": "done", "b": "failed", "c": "done"}
    assert outcomes(rig["ledger"]) == [("a", "done"), ("b", "failed"), ("c", "done")]
    assert [d for d, _ in rig["stages"].rendered] == ["a", "c"]
    event = rig["ledger"].connect().execute("SELECT dataset, message FROM events").fetchone()
    assert event[0] == "b" and "prepare exploded" in event[1]


def test_render_disabled_per_dataset(rig: dict[str, Any]) -> None:
    assert run_dataset(rig["config"], rig["env"], "b", scheduled_for=None,
                       window_end=None) == "done"
    assert rig["stages"].rendered == []


def test_never_twice_for_one_start_but_interrupted_resumes(rig: dict[str, Any]) -> None:
    env, ledger = rig["env"], rig["ledger"]
    assert run_dataset(rig["config"], env, "a", scheduled_for=START, window_end=None) == "done"
    assert run_dataset(rig["config"], env, "a", scheduled_for=START, window_end=None) == \
        "already"
    with ledger.tx() as conn:  # a nightly run cut short by a daemon stop may go on
        conn.execute("INSERT INTO runs (dataset, job, scheduled_for, outcome) VALUES"
                     " ('c', 'nightly', ?, 'interrupted')", (START,))
    assert run_dataset(rig["config"], env, "c", scheduled_for=START, window_end=None) == "done"


def test_battery_skips_when_ac_required_and_job_holds_awake(rig: dict[str, Any],
                                                             tmp_path: Path) -> None:
    cfg = make_config(tmp_path, "[schedule]\nrequire_ac_power = true\n")
    env = rig["env"]
    env.power.ac = False
    assert run_dataset(lambda: cfg, env, "a", scheduled_for=None, window_end=None) == "skipped"
    assert env.power.holds_total == 0 and rig["stages"].prepared == []
    env.power.ac = True
    assert run_dataset(lambda: cfg, env, "a", scheduled_for=None, window_end=None) == "done"
    assert env.power.holds_total == 1 and env.power.held == 0


def test_unchanged_skipped_changed_trained_and_interrupted_resumes(rig: dict[str, Any]) -> None:
    ledger = rig["ledger"]
    assert needs_training(ledger, "a", "h1") == "first LoRA"
    with ledger.tx() as conn:
        conn.execute("INSERT INTO runs (dataset, job, outcome, content_hash, run_name) VALUES"
                     " ('a', 'train', 'done', 'h1', 'r1')")
    assert needs_training(ledger, "a", "h1") == ""
    assert needs_training(ledger, "a", "h2") == "content changed"
    with ledger.tx() as conn:
        conn.execute("INSERT INTO runs (dataset, job, outcome, content_hash, run_name) VALUES"
                     " ('a', 'train', 'interrupted', 'h2', 'r2')")
    assert needs_training(ledger, "a", "h2") == "resuming run r2"


def test_server_unreachable_all_window_is_skipped(rig: dict[str, Any]) -> None:
    rig["box"]["down"] = True
    env = rig["env"]
    end = env.clock.time() + 0.5   # real half second of retries
    assert run_dataset(rig["config"], env, "a", scheduled_for=START, window_end=end) == \
        "skipped"
    row = rig["ledger"].connect().execute("SELECT message FROM runs WHERE job='nightly'"
                                          ).fetchone()
    assert "did not answer" in row[0]
    assert outcomes(rig["ledger"], "train") == []
    assert rig["ledger"].connect().execute("SELECT COUNT(*) FROM events").fetchone()[0] == 0


def test_stale_running_rows_are_marked_interrupted(rig: dict[str, Any]) -> None:
    ledger = rig["ledger"]
    with ledger.tx() as conn:
        conn.execute("INSERT INTO runs (dataset, job, outcome, content_hash, run_name)"
                     " VALUES ('a', 'train', 'running', ?, 'old')", ("h0" * 8,))
    assert run_dataset(rig["config"], rig["env"], "a", scheduled_for=None,
                       window_end=None) == "done"
    rows = outcomes(ledger, "train")
    assert rows[0] == ("a", "interrupted") and rows[-1] == ("a", "done")


def test_failed_training_is_failed_with_reason(rig: dict[str, Any]) -> None:
    cfg = rig["cfg"]
    rig["env"].client_factory = lambda: FakeClient(cfg.acestep.root, status="failed")
    assert run_dataset(rig["config"], rig["env"], "a", scheduled_for=None,
                       window_end=None) == "failed"
    msg = rig["ledger"].connect().execute("SELECT message FROM runs WHERE job='nightly'"
                                          ).fetchone()[0]
    assert "Training failed" in msg


def test_stop_while_waiting_for_server_is_interrupted_not_skipped(rig: dict[str, Any]) -> None:
    rig["box"]["down"] = True
    env = rig["env"]
    timer = threading.Timer(0.3, env.stop.set)
    timer.start()
    try:
        assert run_dataset(rig["config"], env, "a", scheduled_for=START,
                           window_end=env.clock.time() + 3600) == "interrupted"
    finally:
        timer.cancel()
    # interrupted is resumable: a restart inside the window may run this start time again
    from acewatchd.nightly.run import already_ran
    assert not already_ran(rig["ledger"], "a", START)


def test_window_ending_during_prepare_does_not_start_training(rig: dict[str, Any]) -> None:
    env, stages = rig["env"], rig["stages"]
    end = env.clock.time() + 3600
    real_prepare = stages.prepare

    def slow_prepare(*a: Any, **kw: Any) -> Any:
        env.clock.set_wall(end + 1)  # preprocessing ate the rest of the window
        return real_prepare(*a, **kw)

    env.hooks.prepare = slow_prepare
    assert run_dataset(rig["config"], env, "a", scheduled_for=START, window_end=end) == \
        "interrupted"
    assert outcomes(rig["ledger"], "train") == []


class CountingServer:
    """A managed server stand-in: counts restarts (ACE-Step's decoder stays wrapped after
    training until its process restarts, CONTRACT §2)."""

    managed = True

    def __init__(self) -> None:
        self.restarts = 0

    def ensure_running(self) -> None:
        pass

    def restart(self) -> None:
        self.restarts += 1


def test_managed_server_restarts_before_training_after_an_unrendered_training(
        rig: dict[str, Any]) -> None:
    # a: trained + rendered (render restarts and unloads: clean); b: trained, render disabled
    # (decoder left wrapped); c must therefore get a fresh server before it trains.
    server = CountingServer()
    rig["env"].server = server
    got = run_nightly(rig["config"], rig["env"], ["a", "b", "c"], scheduled_for=START,
                      window_end=START + 3600)
    assert got == {"a": "done", "b": "done", "c": "done"}
    assert server.restarts == 1


def test_empty_dataset_is_skipped_without_waking_ace_step(rig: dict[str, Any]) -> None:
    from acewatchd.nightly.run import EMPTY_CONTENT_HASH

    server = CountingServer()
    started: list[int] = []
    server.ensure_running = lambda: started.append(1)  # type: ignore[method-assign]
    rig["env"].server = server
    rig["stages"].hashes["a"] = EMPTY_CONTENT_HASH
    assert run_dataset(rig["config"], rig["env"], "a", scheduled_for=None,
                       window_end=None) == "skipped"
    assert started == [] and rig["stages"].prepared == []
    row = rig["ledger"].connect().execute("SELECT message FROM runs").fetchone()
    assert "no songs ready" in row[0]


def test_empty_content_hash_matches_prepare(tmp_path: Path) -> None:
    from acewatchd.nightly.prepare.prepare import dataset_content_hash
    from acewatchd.nightly.run import EMPTY_CONTENT_HASH

    cfg = make_config(tmp_path, "")
    (cfg.paths.drop / "empty").mkdir()
    ledger = Ledger(cfg.paths.state)
    try:
        assert dataset_content_hash(cfg, ledger, "empty") == EMPTY_CONTENT_HASH
    finally:
        ledger.close()


def test_a_manual_run_never_marks_its_own_row_stale(rig: dict[str, Any]) -> None:
    """`train --now` opens its row, then clears rows of dead processes: not its own (status
    would show the running command as interrupted)."""
    from acewatchd.ledger.runs import Job

    ledger, stages = rig["ledger"], rig["stages"]
    seen: list[str] = []
    real_prepare = stages.prepare

    def prepare(cfg: Any, led: Any, dataset: str, stop: Any = None) -> Any:
        row = ledger.connect().execute("SELECT outcome FROM runs WHERE job='manual'").fetchone()
        seen.append(row[0])
        return real_prepare(cfg, led, dataset, stop)

    stages.prepare = prepare  # type: ignore[method-assign]
    rig["env"].hooks = stages.hooks()
    assert run_dataset(rig["config"], rig["env"], "a", scheduled_for=None, window_end=None,
                       job=Job.MANUAL, force=True) == "done"
    assert seen == ["running"]
    assert outcomes(ledger, "manual") == [("a", "done")]


def test_a_render_that_failed_is_pending_work_the_next_night(rig: dict[str, Any]) -> None:
    """The LoRA trained, its render died: the next night renders it alone (no retraining),
    instead of "unchanged since its last LoRA" for ever."""
    stages, ledger, env = rig["stages"], rig["ledger"], rig["env"]
    stages.fail_render.add("a")
    assert run_dataset(rig["config"], env, "a", scheduled_for=START,
                       window_end=START + 3600) == "failed"
    stages.fail_render.clear()
    assert run_dataset(rig["config"], env, "a", scheduled_for=START + 86400,
                       window_end=START + 86400 + 3600) == "done"
    assert len(outcomes(ledger, "train")) == 1                      # not trained again
    assert [d for d, _ in stages.rendered] == ["a", "a"]
    last = ledger.connect().execute("SELECT message FROM runs WHERE job='nightly' ORDER BY id "
                                    "DESC").fetchone()[0]
    assert "render had not finished" in last
    assert run_dataset(rig["config"], env, "a", scheduled_for=START + 2 * 86400,
                       window_end=START + 2 * 86400 + 3600) == "skipped"   # now up to date


def test_an_api_acewatchd_cannot_drive_is_refused_once_and_named(rig: dict[str, Any]) -> None:
    """A managed server whose API does not match is not restarted all night: the first dataset
    fails naming the mismatch, the next ones fail at once with the same words."""
    from acewatchd.acestep.errors import ContractMismatch

    class MismatchedServer:
        managed = True
        starts = 0

        def ensure_running(self) -> None:
            MismatchedServer.starts += 1
            raise ContractMismatch("ACE-Step's API does not match what acewatchd needs (1 "
                                   "mismatch(es)): /set_lora_scale scale: expected parameter")

        def restart(self) -> None:
            self.ensure_running()

        def stop(self, deadline: float | None = None) -> None:
            pass

    rig["env"].server = MismatchedServer()
    got = run_nightly(rig["config"], rig["env"], ["a", "c"], scheduled_for=START,
                      window_end=START + 3600)
    assert got == {"a": "failed", "c": "failed"}
    assert MismatchedServer.starts == 1                           # refused once, not retried
    messages = [r[0] for r in rig["ledger"].connect().execute(
        "SELECT message FROM runs WHERE job='nightly' ORDER BY id")]
    assert all("does not match" in m and "/set_lora_scale" in m for m in messages), messages
