"""outbox.py, lossplot.py and notify.py on their own: folders, index, escaping, plots, the
notification channels (a real local HTTP server stands in for an ntfy webhook)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from acewatchd.config.schema import Config, Notify
from acewatchd.outbox import folders as outbox
from acewatchd.outbox import page as pages
from acewatchd.outbox.lossplot import LossPoint, epoch_means, final_loss, plot_loss
from acewatchd.outbox.notify import (
    MacNotifier,
    MultiNotifier,
    NullNotifier,
    RecordingNotifier,
    WebhookNotifier,
    applescript_string,
    build_notifier,
    osascript_command,
)
from tests.support.webhook import Posts, webhook_receiver

PNG = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.usefixtures("no_thread_leak")


def test_slugify_keeps_ascii_words_and_falls_back_for_other_scripts() -> None:
    assert outbox.slugify("Slow Ballad, piano!") == "slow-ballad-piano"
    assert outbox.slugify("Café Del Mar") == "cafe-del-mar"
    assert outbox.slugify("밤하늘", "prompt3") == "prompt3"
    assert outbox.slugify("../../etc/passwd") == "etc-passwd"
    assert len(outbox.slugify("x" * 200)) == 40


def test_index_lists_runs_newest_first_and_escapes_names(tmp_path: Path) -> None:
    box = tmp_path / "outbox"
    for ds, name in [("a&b", "2026-01-02_0100_r1"), ('<b>x"', "2026-03-01_0700_r9"),
                     ("a&b", "2026-02-01_0100_r2"), ("a&b", "not-a-run"),
                     ("a&b", f"{outbox.STAGING_PREFIX}2026-09-09_0000_r3")]:
        (box / ds / name).mkdir(parents=True)
    runs = outbox.list_runs(box)
    assert [(e.dataset, e.name) for e in runs] == [
        ('<b>x"', "2026-03-01_0700_r9"), ("a&b", "2026-02-01_0100_r2"),
        ("a&b", "2026-01-02_0100_r1")]
    page = pages.write_index(box, {("a&b", "2026-02-01_0100_r2"): "3 prompts <script>"}
                              ).read_text(encoding="utf-8")
    assert "<b>x" not in page and "&lt;b&gt;x&#34;" in page
    assert "<script>" not in page and "3 prompts &lt;script&gt;" in page
    assert 'href="a%26b/2026-02-01_0100_r2/index.html"' in page
    assert "3 runs of 2 datasets" in page
    assert page.index("2026-03-01 07:00") < page.index("2026-02-01 01:00")


def test_empty_outbox_index(tmp_path: Path) -> None:
    page = pages.write_index(tmp_path).read_text(encoding="utf-8")
    assert "No runs yet" in page and "<table" not in page


def test_prune_keeps_newest_and_never_the_protected_run(tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    names = [f"2026-01-0{i}_0100_r{i}" for i in range(1, 6)]
    for name in names:
        (ds / name).mkdir(parents=True)
    removed = outbox.prune(tmp_path, "ds", 2, protect=ds / names[0])
    assert sorted(p.name for p in removed) == names[1:3]
    assert sorted(p.name for p in ds.iterdir()) == sorted([names[0], names[3], names[4]])


def test_runs_of_a_decomposed_folder_name_belong_to_the_dataset(tmp_path: Path) -> None:
    """An outbox folder whose name a Mac (or a copy from one) stored in NFD is still the
    dataset's: listed under the NFC name, pruned when that dataset is."""
    import unicodedata

    ds = tmp_path / unicodedata.normalize("NFD", "김경호")
    names = [f"2026-01-0{i}_0100_r{i}" for i in range(1, 4)]
    for name in names:
        (ds / name).mkdir(parents=True)
    assert {e.dataset for e in outbox.list_runs(tmp_path)} == {"김경호"}
    removed = outbox.prune(tmp_path, "김경호", 1, protect=ds / names[2])
    assert sorted(p.name for p in removed) == names[:2]
    assert [p.name for p in ds.iterdir()] == [names[2]]


def test_unique_name_and_commit_never_replace_a_run(tmp_path: Path) -> None:
    (tmp_path / "2026-01-01_0100_r1").mkdir()
    assert outbox.unique_name(tmp_path, "2026-01-01_0100_r1") == "2026-01-01_0100_r1-2"
    staging = outbox.new_staging(tmp_path, "x")
    (staging / "f").write_text("1")
    with pytest.raises(Exception, match="already exists"):
        outbox.commit(staging, tmp_path / "2026-01-01_0100_r1")
    final = outbox.commit(staging, tmp_path / "2026-01-01_0100_r1-2")
    assert (final / "f").read_text() == "1" and not staging.exists()


def test_dataset_lock_refuses_a_second_render(tmp_path: Path) -> None:
    with outbox.dataset_lock(tmp_path), pytest.raises(Exception, match="another render"), \
            outbox.dataset_lock(tmp_path):
        pass
    with outbox.dataset_lock(tmp_path):  # released again
        pass


def test_clean_staging_removes_only_staging_folders(tmp_path: Path) -> None:
    (tmp_path / f"{outbox.STAGING_PREFIX}old").mkdir()
    (tmp_path / "2026-01-01_0100_r1").mkdir()
    outbox.clean_staging(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["2026-01-01_0100_r1"]


def test_restarted_step_counters_continue_the_curve() -> None:
    from acewatchd.outbox.lossplot import continuous_steps

    night1 = [LossPoint(s, 1, 1.0) for s in (10, 20, 30)]
    night2 = [LossPoint(s, 2, 0.5) for s in (10, 20)] + [LossPoint(None, 2, 0.4)]
    steps = [p.step for p in continuous_steps(night1 + night2)]
    assert steps == [10, 20, 30, 40, 50, None]
    assert [p.step for p in continuous_steps(night1)] == [10, 20, 30]


def test_loss_plot_with_and_without_data() -> None:
    points = [LossPoint(s, s // 50 + 1, 1.0 / s) for s in range(10, 210, 10)]
    points.append(LossPoint(220, 5, float("nan")))
    assert final_loss(points) == pytest.approx(1.0 / 200)
    means = epoch_means(points)
    assert [m[1] for m in means] == [1, 2, 3, 4, 5] and means[-1][0] == 200.0
    assert plot_loss(points)[:8] == PNG
    assert plot_loss([])[:8] == PNG
    assert plot_loss([LossPoint(None, None, float("nan"))])[:8] == PNG
    assert plot_loss([LossPoint(None, e, 1.0 / e) for e in range(1, 5)])[:8] == PNG
    assert final_loss([]) is None


def test_osascript_gets_text_as_arguments_never_as_script() -> None:
    evil = 'x" & (do shell script "rm -rf ~") & "\n\tline'
    cmd = osascript_command("acewatchd · 김경호", evil, "/usr/bin/osascript")
    assert cmd[0] == "/usr/bin/osascript" and cmd[-3] == "--"
    script = " ".join(cmd[1:-3])
    assert "rm -rf" not in script and "김경호" not in script
    assert cmd[-1] == 'x" & (do shell script "rm -rf ~") & " line'   # one line, as data
    assert applescript_string('say "hi" \\ bye') == '"say \\"hi\\" \\\\ bye"'


def test_mac_notifier_failure_is_logged_not_raised(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    MacNotifier(str(tmp_path / "no-such-osascript")).notify("t", "m")
    fake = tmp_path / "osascript"
    fake.write_text("#!/bin/sh\necho boom >&2\nexit 3\n")
    fake.chmod(0o755)
    MacNotifier(str(fake)).notify("t", "m")
    assert "exit 3" in caplog.text and "boom" in caplog.text


@pytest.fixture
def webhook() -> Iterator[tuple[str, Posts]]:
    with webhook_receiver() as hook:
        yield hook


def test_webhook_posts_ntfy_style(webhook) -> None:
    url, got = webhook
    WebhookNotifier(url).notify("samples ready · 김경호", "3 prompts\nready", failed=False)
    WebhookNotifier(url).notify("render failed", "boom", failed=True)
    (t1, b1), (_, b2) = got
    h1, h2 = got.headers
    assert b1 == "3 prompts ready" and h1["Title"].startswith("=?UTF-8?B?")
    assert t1 == "samples ready · 김경호"
    assert h1["Priority"] == "default" and h2["Priority"] == "high" and b2 == "boom"


def test_unreachable_webhook_is_logged_with_the_secret_redacted(
        caplog: pytest.LogCaptureFixture) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]        # closed again: nothing listens there
    WebhookNotifier(f"http://127.0.0.1:{port}/secret-topic", timeout=2).notify("t", "m")
    assert "webhook notification" in caplog.text and "secret-topic" not in caplog.text


def test_build_notifier_by_platform_and_config(webhook) -> None:
    url, got = webhook
    assert isinstance(build_notifier(Config(), platform="linux"), NullNotifier)
    off = Config(notify=Notify(macos=False, webhook_url=url))
    chosen = build_notifier(off, platform="darwin")
    assert isinstance(chosen, WebhookNotifier)
    chosen.notify("t", "m")
    assert got[-1][1] == "m"


def test_multi_notifier_survives_a_broken_channel() -> None:
    class Broken:
        def notify(self, title: str, message: str, *, failed: bool = False) -> None:
            raise RuntimeError("bug")

    rec = RecordingNotifier()
    MultiNotifier([Broken(), rec]).notify("t", "m", failed=True)
    assert rec.sent == [("t", "m", True)]


def test_prune_hides_a_run_before_deleting_it(tmp_path: Path, monkeypatch) -> None:
    """A kill mid-delete must not leave a half-deleted run visible: the run is renamed to a
    dot-folder first, and the next render's clean_staging removes any leftover."""
    import shutil

    ds = tmp_path / "kim"
    for stamp in ("2026-01-01_0100_r1", "2026-01-02_0100_r2", "2026-01-03_0100_r3"):
        (ds / stamp).mkdir(parents=True)
        (ds / stamp / "index.html").write_text("x")
    seen: list[str] = []

    def killed_mid_delete(path, *a, **kw) -> None:  # the daemon dies inside rmtree
        seen.append(Path(path).name)
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "rmtree", killed_mid_delete)
    with pytest.raises(KeyboardInterrupt):
        outbox.prune(tmp_path, "kim", 1, ds / "2026-01-03_0100_r3")
    assert seen == [".acewatchd-deleting-2026-01-02_0100_r2"]
    visible = sorted(p.name for p in ds.iterdir() if not p.name.startswith("."))
    assert visible == ["2026-01-01_0100_r1", "2026-01-03_0100_r3"]
    monkeypatch.undo()
    outbox.clean_staging(ds)
    assert sorted(p.name for p in ds.iterdir()) == visible


def test_webhook_body_names_no_folder_of_the_users_disk() -> None:
    home = str(Path.home())
    req = WebhookNotifier("https://ntfy.example/t").request(
        "acewatchd: render failed · kim", f"{home}/ACE-Step/lora_output/x: not found", True)
    body = (req.data or b"").decode("utf-8")
    assert home + "/" not in body and body.startswith("~/ACE-Step/lora_output/x")


def test_status_text_escapes_control_characters_of_file_names() -> None:
    from acewatchd.commands.status import render

    report = {"config": {"path": "c.toml", "valid": True, "error": ""},
              "daemon": {"running": False, "pid": None}, "datasets": {}, "runs": [],
              "last": {}, "schedule_next": {}, "acestep": {},
              "recent_errors": [{"level": "warning", "time": "t", "dataset": "kim",
                                 "subject": "evil\x1b[2J.mp3", "message": "bad\nline\udcb1"}]}
    text = render(report)
    assert "\x1b" not in text and "\\x1b[2J" in text and "\\udcb1" in text
    assert text.count("\n") == 3          # the message's newline did not start a new line
