"""render.py against a recording fake client (the simulator e2e is test_render_e2e.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from acewatchd.acestep.errors import JobFailed
from acewatchd.acestep.generation import Limits
from acewatchd.config.schema import Dataset, Prompt, Render
from acewatchd.errors import AcewatchdError
from acewatchd.ledger.db import Ledger
from acewatchd.nightly.render.lora import choose_adapter, find_training_run
from acewatchd.nightly.render.plan import build_clips, fill_tag, plan_calls
from acewatchd.nightly.render.session import render_run
from acewatchd.outbox import folders as outbox
from acewatchd.outbox.notify import RecordingNotifier
from tests.support.render import (
    DATASET,
    PROMPTS_SAME_TEXT,
    RUN_NAME,
    FakeClient,
    FakeServer,
    add_training_run,
    sample_mp3,
    write_config,
)

pytestmark = pytest.mark.usefixtures("no_thread_leak")


@pytest.fixture
def home(tmp_path: Path):
    root = tmp_path / "acestep"
    root.mkdir()
    return tmp_path, root


def _setup(home, *, extra: str = "", batch_size: int = 2, keep_runs: int = 10):
    tmp, root = home
    cfg = write_config(tmp, root, extra=extra, batch_size=batch_size, keep_runs=keep_runs)
    ledger = Ledger(cfg.paths.state)
    return cfg, ledger


def test_fill_tag_places_tag_and_tidies_separators() -> None:
    ds = Dataset(tag="kim kyung ho")
    assert fill_tag("{tag}, ballad", ds) == "kim kyung ho, ballad"
    assert fill_tag("ballad", ds) == "kim kyung ho, ballad"
    assert fill_tag("ballad", Dataset(tag="x", tag_position="append")) == "ballad, x"
    assert fill_tag("{tag}, ballad, {tag}", Dataset(tag="")) == "ballad"
    assert fill_tag("{tag} {not a field}", ds) == "kim kyung ho {not a field}"
    assert fill_tag("ballad, {tag}", Dataset()) == "ballad"
    assert fill_tag("1,000 watts, {tag}", ds) == "1,000 watts, kim kyung ho"


@pytest.mark.parametrize("n,batch", [(1, 1), (3, 2), (4, 2), (5, 8), (8, 8), (9, 4)])
def test_same_text_prompts_take_ceil_n_over_batch_calls(n: int, batch: int) -> None:
    prompts = [Prompt(caption="{tag}, rock", seed=i, name=f"p{i}") for i in range(n)]
    calls = plan_calls(build_clips(Render(prompts=prompts), Dataset(tag="t")), batch)
    assert len(calls) == math.ceil(n / batch)
    assert [c.seed for call in calls for c in call] == list(range(n))
    assert all(len(call) <= batch for call in calls)


@pytest.mark.parametrize("takes,batch,expected", [(5, 2, 3), (8, 8, 1), (1, 4, 1)])
def test_takes_of_one_prompt_share_calls(takes: int, batch: int, expected: int) -> None:
    prompts = [Prompt(caption="{tag}, rock", name="Rock", seeds=list(range(10, 10 + takes)))]
    clips = build_clips(Render(prompts=prompts), Dataset(tag="t"))
    assert len(plan_calls(clips, batch)) == expected == math.ceil(takes / batch)
    assert [c.number for c in clips] == list(range(1, takes + 1))
    if takes > 1:
        assert clips[1].slug == "rock-s11" and clips[1].name == "Rock · seed 11"


def test_default_prompts_take_one_call_each() -> None:
    rcfg = Render()                                    # three prompts with different text
    assert len(plan_calls(build_clips(rcfg, Dataset(tag="t")), rcfg.batch_size)) == 3


def test_prompts_with_different_text_never_share_a_call() -> None:
    prompts = [Prompt(caption="a", seed=1), Prompt(caption="b", seed=2),
               Prompt(caption="a", seed=3), Prompt(caption="a", seed=4, bpm=90)]
    calls = plan_calls(build_clips(Render(prompts=prompts), Dataset()), 8)
    assert [[c.number for c in call] for call in calls] == [[1, 3], [2], [4]]


ONE_COLUMN = f'[datasets.{DATASET}.render]\ncheckpoints = "last"\nscales = []\n'


def test_render_sequence_files_and_manifest(home, tmp_path: Path) -> None:
    """checkpoints = "last" and scales = []: the final adapter alone, at lora_scale."""
    cfg, ledger = _setup(home, extra=ONE_COLUMN + PROMPTS_SAME_TEXT.replace(
        "[[render", f"[[datasets.{DATASET}.render"))
    add_training_run(cfg, ledger)
    client, server, notes = FakeClient(sample_mp3(tmp_path)), FakeServer(), RecordingNotifier()
    folder = render_run(cfg, ledger, DATASET, server=server, notifier=notes,
                        client_factory=lambda *a: client)
    ops = [op for op, _ in client.log]
    # restart first, one session, LoRA set up, 2 LoRA calls, unload, then 2 base calls
    assert server.restarts == 1
    assert ops == ["connect", "load_lora", "set_use_lora", "set_lora_scale", "generate",
                   "generate", "unload_lora", "generate", "generate", "close"]
    assert client.log[1][1] == f"./lora_output/acewatchd/{DATASET}/{RUN_NAME}/final/adapter"
    assert ("set_lora_scale", 0.8) in client.log
    gens = [arg for op, arg in client.log if op == "generate"]
    assert [g[1] for g in gens] == [[1, 2], [3], [1, 2], [3]]      # same seeds for base
    assert [g[2] for g in gens] == [True, True, False, False]      # base clips without LoRA
    assert gens[0][0].startswith("김경호 <b>rock</b>")
    assert folder.parent == cfg.paths.outbox / DATASET and not folder.name.startswith(".")
    manifest = json.loads((folder / "samples.json").read_text(encoding="utf-8"))
    names = sorted(p.name for p in folder.glob("*.mp3"))
    assert names == ["01_base_ballad-one.mp3", "01_final-x0.8_ballad-one.mp3",
                     "02_base_ballad-two.mp3", "02_final-x0.8_ballad-two.mp3",
                     "03_base_ballad-three.mp3", "03_final-x0.8_ballad-three.mp3"]
    listed = sorted(r["file"] for c in manifest["clips"] for r in c["renders"].values())
    assert listed == names
    for clip in manifest["clips"]:
        for r in clip["renders"].values():
            assert r["duration_seconds"] == pytest.approx(3.0, abs=0.2)
    assert manifest["lora"]["scale"] == 0.8 and manifest["lora"]["epoch"] == 300
    assert manifest["training_run"]["final_loss"] == pytest.approx(1.0 / (1 + 59 * 0.1) + 0.05, abs=1e-5)
    assert manifest["generation_calls"] == 4
    assert (folder / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    m3u = (folder / "playlist.m3u").read_text(encoding="utf-8").splitlines()
    assert m3u[0] == "#EXTM3U" and sorted(l for l in m3u if l.endswith(".mp3")) == names
    # The fake returns one and the same audio for every clip: the LoRA changed nothing, and
    # the analysis says so on the page, in the notification, the record and the events.
    analysis = json.loads((folder / "analysis.json").read_text(encoding="utf-8"))
    assert analysis["no_effect"] is True
    assert "no audible effect" in (folder / "index.html").read_text(encoding="utf-8")
    assert notes.sent and notes.sent[-1][2] is True and DATASET in notes.sent[-1][0]
    assert "no audible effect" in notes.sent[-1][0] and "likely causes" in notes.sent[-1][1]
    index = (cfg.paths.outbox / "index.html").read_text(encoding="utf-8")
    assert f"{DATASET}/{folder.name}/index.html" in index
    row = ledger.connect().execute("SELECT * FROM runs WHERE job='render'").fetchone()
    assert row["outcome"] == "done" and row["run_name"] == folder.name
    assert "no audible effect" in row["message"]
    events = ledger.connect().execute("SELECT level, message FROM events WHERE subject="
                                      "'render'").fetchall()
    assert [e["level"] for e in events] == ["error"] and "no audible" in events[0]["message"]


def test_failure_mid_render_leaves_no_run_folder_and_reports(home, tmp_path: Path) -> None:
    cfg, ledger = _setup(home)
    add_training_run(cfg, ledger)
    ds_dir = cfg.paths.outbox / DATASET
    (ds_dir / f"{outbox.STAGING_PREFIX}2020-01-01_0000_r9").mkdir(parents=True)  # crash leftover
    client, notes = FakeClient(sample_mp3(tmp_path), fail_on=2), RecordingNotifier()
    with pytest.raises(JobFailed):
        render_run(cfg, ledger, DATASET, notifier=notes, client_factory=lambda *a: client)
    assert [p.name for p in ds_dir.iterdir()] == [outbox.LOCK_NAME]
    assert [op for op, _ in client.log][-2:] == ["unload_lora", "close"]   # unloaded anyway
    assert notes.sent and notes.sent[-1][2] is True and "simulated failure" in notes.sent[-1][1]
    row = ledger.connect().execute("SELECT * FROM runs WHERE job='render'").fetchone()
    assert row["outcome"] == "failed" and "simulated failure" in row["message"]
    events = ledger.connect().execute("SELECT message FROM events").fetchall()
    assert any("simulated failure" in e[0] for e in events)


def test_no_training_run_is_a_clear_error(home) -> None:
    cfg, ledger = _setup(home)
    notes = RecordingNotifier()
    with pytest.raises(AcewatchdError, match="no finished training run"):
        render_run(cfg, ledger, DATASET, notifier=notes,
                   client_factory=lambda *a: pytest.fail("must not connect"))
    assert notes.sent[-1][2] is True


def test_latest_successful_run_is_chosen(home) -> None:
    cfg, ledger = _setup(home)
    first = add_training_run(cfg, ledger, run_name="old")
    add_training_run(cfg, ledger, run_name="broken", outcome="failed", adapter=False)
    assert find_training_run(cfg, ledger, DATASET).id == first
    latest = add_training_run(cfg, ledger, run_name="new")
    assert find_training_run(cfg, ledger, DATASET).id == latest


def test_checkpoint_by_epoch_and_folder(home) -> None:
    cfg, ledger = _setup(home)
    run_id = add_training_run(cfg, ledger)
    train = find_training_run(cfg, ledger, DATASET, run_id)
    by_epoch = choose_adapter(cfg, DATASET, train, "100")
    assert by_epoch.path == (f"./lora_output/acewatchd/{DATASET}/{RUN_NAME}/checkpoints/"
                             "epoch_100/adapter") and by_epoch.epoch == 100
    folder = cfg.acestep.root / "lora_output/acewatchd" / DATASET / RUN_NAME / "checkpoints" \
        / "epoch_100"
    by_folder = choose_adapter(cfg, DATASET, train, str(folder))
    assert by_folder.path == by_epoch.path and by_folder.epoch == 100
    with pytest.raises(AcewatchdError, match="available: 100"):
        choose_adapter(cfg, DATASET, train, "700")
    with pytest.raises(AcewatchdError, match="not a LoRA adapter"):
        choose_adapter(cfg, DATASET, train, str(cfg.acestep.root))


def test_retention_keeps_newest_runs_after_the_new_one_is_complete(home, tmp_path) -> None:
    cfg, ledger = _setup(home, keep_runs=2)
    add_training_run(cfg, ledger)
    ds_dir = cfg.paths.outbox / DATASET
    for stamp in ("2020-01-01_0100", "2020-01-02_0100", "2020-01-03_0100"):
        (ds_dir / f"{stamp}_r1").mkdir(parents=True)
    (ds_dir / "my notes").mkdir()                    # not a run folder: never touched
    client = FakeClient(sample_mp3(tmp_path))
    folder = render_run(cfg, ledger, DATASET, client_factory=lambda *a: client)
    runs = sorted(p.name for p in ds_dir.iterdir() if not p.name.startswith("."))
    assert runs == sorted(["2020-01-03_0100_r1", folder.name, "my notes"])


def test_acestep_version_read_from_its_checkout(tmp_path: Path) -> None:
    from acewatchd.nightly.render.files import acestep_version

    assert acestep_version(tmp_path) is None
    (tmp_path / "pyproject.toml").write_text('[project]\nversion = "1.5.0"\n')
    assert acestep_version(tmp_path) == "1.5.0"
    git = tmp_path / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "packed-refs").write_text("# pack-refs\nf30aee4d00000000 refs/heads/main\n")
    assert acestep_version(tmp_path) == "1.5.0 (f30aee4)"
    (git / "refs" / "heads" / "main").write_text("abcdef1234\n")
    assert acestep_version(tmp_path) == "1.5.0 (abcdef1)"
    assert acestep_version(tmp_path, simulated=True) == "SIMULATOR (test double)"


def test_a_silent_output_is_marked_missing_not_misattributed(home, tmp_path: Path) -> None:
    extra = f"""
[[datasets.{DATASET}.render.prompts]]
name = "takes"
caption = "{{tag}}, rock"
seeds = [1, 2, 3]
"""
    cfg, ledger = _setup(home, extra=ONE_COLUMN + extra, batch_size=3)
    add_training_run(cfg, ledger)
    client = FakeClient(sample_mp3(tmp_path), drop_seed=2)
    folder = render_run(cfg, ledger, DATASET, client_factory=lambda *a: client)
    manifest = json.loads((folder / "samples.json").read_text(encoding="utf-8"))
    files = {c["seed"]: c["renders"]["final@0.8"]["file"] for c in manifest["clips"]}
    assert files == {1: "01_final-x0.8_takes-s1.mp3", 2: None, 3: "03_final-x0.8_takes-s3.mp3"}
    assert "silent" in manifest["clips"][1]["renders"]["final@0.8"]["error"]
    page = (folder / "index.html").read_text(encoding="utf-8")
    assert page.count("<audio ") == 4 and page.count('class="missing"') == 2
    m3u = (folder / "playlist.m3u").read_text(encoding="utf-8")
    assert "takes-s2" not in m3u and m3u.count(".mp3") == 4


def test_bad_dataset_name_and_stale_rows(home, tmp_path: Path) -> None:
    cfg, ledger = _setup(home)
    with pytest.raises(AcewatchdError, match="not a dataset name"):
        render_run(cfg, ledger, "../escape", notifier=RecordingNotifier(),
                   client_factory=lambda *a: pytest.fail("must not connect"))
    assert not (cfg.paths.outbox.parent / "escape").exists()
    add_training_run(cfg, ledger)
    with ledger.tx() as conn:  # a render killed with -9 left its row 'running'
        conn.execute("INSERT INTO runs (dataset, job, outcome) VALUES (?, 'render', 'running')",
                     (DATASET,))
    render_run(cfg, ledger, DATASET, client_factory=lambda *a: FakeClient(sample_mp3(tmp_path)))
    outcomes = [r[0] for r in ledger.connect().execute(
        "SELECT outcome FROM runs WHERE job='render' AND dataset=? ORDER BY id", (DATASET,))]
    assert outcomes == ["interrupted", "done"]


def test_generation_timeout_grows_with_batch_and_length(home) -> None:
    from acewatchd.nightly.render.session import default_client

    cfg, _ = _setup(home, batch_size=4)
    client = default_client(cfg, cfg.render_for(DATASET))
    assert client.timeout == pytest.approx(60 + 2 * 4 * 30.0)
    assert default_client(cfg).timeout == 60.0


def test_without_compare_base_only_lora_clips(home, tmp_path: Path) -> None:
    cfg, ledger = _setup(home, extra=ONE_COLUMN + "compare_base = false\n")
    add_training_run(cfg, ledger)
    client = FakeClient(sample_mp3(tmp_path))
    folder = render_run(cfg, ledger, DATASET, client_factory=lambda *a: client)
    ops = [op for op, _ in client.log]
    assert ops[-2:] == ["unload_lora", "close"] and ops.count("generate") == 3
    assert sorted(p.name for p in folder.glob("*.mp3")) == [
        "01_final-x0.8_energetic.mp3", "02_final-x0.8_ballad.mp3", "03_final-x0.8_acoustic.mp3"]
    page = (folder / "index.html").read_text(encoding="utf-8")
    assert page.count("<audio ") == 3 and "Base model" not in page


def test_render_stays_within_the_servers_limits(home, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """A GPU-less ACE-Step allows batch 1 and 180 s: the render is planned within that and
    says so once, instead of every call failing with "greater than maximum value 1"."""
    cfg, ledger = _setup(home, extra=PROMPTS_SAME_TEXT.replace("[[render", f"[[datasets.{DATASET}.render")
                         .replace("duration = 12.0", "duration = 240.0"))
    add_training_run(cfg, ledger)
    client = FakeClient(sample_mp3(tmp_path), limits=Limits(max_duration=180.0, max_batch=1))
    with caplog.at_level("WARNING"):
        folder = render_run(cfg, ledger, DATASET, client_factory=lambda *a: client)
    gens = [arg for op, arg in client.log if op == "generate"]
    assert gens and all(len(seeds) == 1 for _, seeds, _ in gens)
    assert all(req.batch_size == 1 and req.duration <= 180 for req in client.requests)
    warnings = [r.getMessage() for r in caplog.records if "on this machine" in r.getMessage()]
    assert len(warnings) == 2, warnings   # one for the batch, one for the length
    manifest = json.loads((folder / "samples.json").read_text(encoding="utf-8"))
    assert manifest["settings"]["batch_size"] == 1


def test_outbox_files_are_world_readable(home, tmp_path: Path) -> None:
    """A local web server (or another user) can serve the pages, like the clips beside them."""
    import stat

    cfg, ledger = _setup(home)
    add_training_run(cfg, ledger)
    folder = render_run(cfg, ledger, DATASET,
                        client_factory=lambda *a: FakeClient(sample_mp3(tmp_path)))
    for name in ("samples.json", "index.html", "loss.png", "playlist.m3u"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o644, name
    assert stat.S_IMODE((cfg.paths.outbox / "index.html").stat().st_mode) == 0o644


def test_start_up_clears_a_killed_render_but_not_a_running_one(home) -> None:
    from acewatchd.ledger import runs
    from acewatchd.ledger.runs import Job
    from acewatchd.nightly.render.session import clear_unfinished

    cfg, ledger = _setup(home)
    for ds in ("killed", "busy"):
        (cfg.paths.outbox / ds / f"{outbox.STAGING_PREFIX}2026-01-01_0100_r1").mkdir(parents=True)
        runs.open_run(ledger, ds, Job.RENDER, 1.0)
    with outbox.dataset_lock(cfg.paths.outbox / "busy"):   # `acewatchd render` at work
        assert clear_unfinished(cfg, ledger) == ["killed"]
    states = dict(ledger.connect().execute("SELECT dataset, outcome FROM runs").fetchall())
    assert states == {"killed": "interrupted", "busy": "running"}
    assert [p.name for p in (cfg.paths.outbox / "killed").iterdir()] == [outbox.LOCK_NAME]
    assert len(list((cfg.paths.outbox / "busy").iterdir())) == 2


def test_the_datasets_no_effect_threshold_reaches_the_analysis(home, tmp_path: Path) -> None:
    cfg, ledger = _setup(home, extra=ONE_COLUMN + "no_effect_db = 7.5\n" +
                         PROMPTS_SAME_TEXT.replace("[[render", f"[[datasets.{DATASET}.render"))
    add_training_run(cfg, ledger)
    client = FakeClient(sample_mp3(tmp_path))
    folder = render_run(cfg, ledger, DATASET, server=FakeServer(), notifier=RecordingNotifier(),
                        client_factory=lambda *a: client)
    analysis = json.loads((folder / "analysis.json").read_text(encoding="utf-8"))
    assert analysis["no_effect_threshold"] == 7.5
    assert "7.5 dB" in (folder / "index.html").read_text(encoding="utf-8")


def test_a_full_disk_is_told_by_the_folder_it_filled(home, tmp_path: Path) -> None:
    import errno
    import sqlite3

    from acewatchd.nightly.render.session import failure_message

    cfg, _ = _setup(home)
    clip = cfg.paths.outbox / DATASET / ".acewatchd-staging-x" / "01.mp3"
    copy = OSError(errno.ENOSPC, "No space left on device", "/tmp/gradio/a.mp3", None, str(clip))
    assert failure_message(cfg, DATASET, copy).startswith(
        f"no space left on the disk holding the outbox ({cfg.paths.outbox}): free some space")
    ledger_full = sqlite3.OperationalError("database or disk is full")
    ledger_full.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
    assert f"the ledger ({cfg.paths.state})" in failure_message(cfg, "김경호", ledger_full)
    assert "acewatchd render '김경호'" in failure_message(cfg, "김경호", ledger_full)
    other = OSError(errno.EACCES, "Permission denied")
    assert failure_message(cfg, DATASET, other) == str(other)
