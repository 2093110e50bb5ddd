"""doctor's server checks: which contract matched, and does a server the user started resolve
acewatchd's root-relative paths in ACE-Step's folder (CONTRACT §9c)."""

from __future__ import annotations

from pathlib import Path

import pytest

from acewatchd.acestep import versions
from acewatchd.acestep.apicheck import ApiMatch
from acewatchd.acestep.errors import JobFailed, ServerUnavailable
from acewatchd.doctor.server import (
    PATHS_CHECK,
    PROBE_PREFIX,
    api_check,
    check_relative_paths,
    check_server,
    judge_probe,
)
from acewatchd.simulator.harness import free_port, running_simulator
from tests.doctor.folders import fake_acestep

FIX_START = "start ACE-Step from its own folder (its working folder must be "


class FakeServer:
    """Answers /load_training_dataset like a server whose working folder is ``cwd``."""

    def __init__(self, cwd: Path, style: str = "v2") -> None:
        self.cwd, self.style = cwd, style
        self.sent: list[str] = []
        self.existed: list[bool] = []

    def load_training_dataset(self, tensor_dir: str) -> str:
        self.sent.append(tensor_dir)
        folder = self.cwd / tensor_dir
        self.existed.append(folder.is_dir())
        if self.style == "crash":
            raise RuntimeError("boom")
        if self.style == "gone":
            raise ServerUnavailable("ACE-Step at http://x is unavailable")
        if self.style == "s":  # S and V1 answer with the path as sent, not as an error
            if not folder.is_dir():
                return f"\ufffd Directory not found: {tensor_dir}"
            return f"\ufffd No .pt tensor files found in {tensor_dir}"
        absolute = Path(str(folder.resolve()))
        if not folder.is_dir():
            raise JobFailed(f"ACE-Step /load_training_dataset: ❌ Directory not found: {absolute}")
        raise JobFailed(f"ACE-Step /load_training_dataset: ❌ No .pt tensor files found in "
                        f"{absolute}")


def probes(root: Path) -> list[Path]:
    return list((root / "datasets/acewatchd").glob(PROBE_PREFIX + "*")) \
        if (root / "datasets/acewatchd").is_dir() else []


@pytest.mark.parametrize("style", ["v2", "s"])
def test_probe_passes_when_the_server_works_in_the_root(tmp_path: Path, style: str) -> None:
    server = FakeServer(tmp_path, style)
    check = check_relative_paths(server, tmp_path)
    assert check.ok and check.name == PATHS_CHECK, check.render()
    assert server.sent[0].startswith(f"./datasets/acewatchd/{PROBE_PREFIX}")
    assert server.existed == [True]  # the probe folder was there during the call
    assert not (tmp_path / "datasets").exists()  # probe and the folders it made are gone


@pytest.mark.parametrize("style", ["v2", "s"])
def test_probe_fails_when_the_server_works_elsewhere(tmp_path: Path, style: str) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    root = tmp_path / "ace"
    root.mkdir()
    check = check_relative_paths(FakeServer(elsewhere, style), root)
    assert not check.ok and "not found" in check.detail.lower()
    assert check.fix.startswith(f"{FIX_START}{root})")
    assert not (root / "datasets").exists()


def test_probe_keeps_folders_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "datasets/acewatchd/mine").mkdir(parents=True)
    assert check_relative_paths(FakeServer(tmp_path), tmp_path).ok
    assert [p.name for p in (tmp_path / "datasets/acewatchd").iterdir()] == ["mine"]


@pytest.mark.parametrize("style", ["crash", "gone"])
def test_probe_folder_removed_whatever_happens(tmp_path: Path, style: str) -> None:
    if style == "crash":
        with pytest.raises(RuntimeError):
            check_relative_paths(FakeServer(tmp_path, style), tmp_path)
    else:
        check = check_relative_paths(FakeServer(tmp_path, style), tmp_path)
        assert not check.ok and "could not ask" in check.detail and check.fix
    assert not (tmp_path / "datasets").exists()


def test_judge_reads_each_versions_answer(tmp_path: Path) -> None:
    root = tmp_path / "ace"
    probe = root / "datasets/acewatchd/.doctor-probe-x"
    probe.mkdir(parents=True)
    sent = "./datasets/acewatchd/.doctor-probe-x"

    def judge(answer: str) -> bool:
        check = judge_probe(answer, root, probe, sent)
        assert check.ok or check.fix.startswith(FIX_START + str(root)), check.render()
        return check.ok

    # the folder was found, empty (S's U+FFFD, V1's mojibake, V2's absolute path, SIMULATOR)
    assert judge(f"\ufffd No .pt tensor files found in {sent}")
    assert judge(f"\u00e2\u009d\u0152 No .pt tensor files found in {sent}")
    assert judge(f"ACE-Step /load_training_dataset: ❌ No .pt tensor files found in {probe}")
    assert judge(f"✅ Found 0 tensor files in {sent} [SIMULATOR]")
    link = tmp_path / "link"
    link.symlink_to(root)  # the server's realpath(cwd) may differ from the configured root
    assert judge(f"❌ No .pt tensor files found in {link}/datasets/acewatchd/.doctor-probe-x")
    # not ours
    assert not judge(f"❌ Directory not found: {sent}")
    assert not judge("❌ Rejected unsafe tensor directory path: /tmp/x")
    assert not judge("❌ No .pt tensor files found in /srv/other/datasets/acewatchd/"
                     ".doctor-probe-x")
    assert not judge("❌ Model not initialized. Please initialize the service first.")
    assert not judge("")
    assert not judge(f"📂 Found 3 tensor files in {sent}")  # our folder is empty: not ours


def test_api_check_names_the_matched_contract() -> None:
    v2 = api_check(ApiMatch("V2", versions.V2.commit))
    assert v2.ok and v2.detail == ("matches the V2 contract (6d467e4, 2026-06-26): every endpoint "
                                "and parameter acewatchd uses")
    unknown = api_check(ApiMatch("unknown", None, ("param_70 is new",)))
    assert unknown.ok and "not tested with" in unknown.detail
    assert "note: param_70 is new" in unknown.detail


def test_managed_server_is_not_probed(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    checks = {c.name: c for c in check_server(url, manage_server=True, root=tmp_path)}
    assert checks[PATHS_CHECK].ok
    assert checks[PATHS_CHECK].detail == "not checked: acewatchd starts the server itself"
    assert PATHS_CHECK not in {c.name for c in check_server(url, manage_server=False,
                                                            root=tmp_path)}


# --------------------------------------------------------------------------- the simulator


def test_probe_against_the_simulator(tmp_path: Path) -> None:
    ace = fake_acestep(tmp_path / "ace")
    with running_simulator(ace) as sim:
        ours = {c.name: c for c in check_server(sim.url, manage_server=False, root=ace)}
        other = tmp_path / "other"
        other.mkdir()
        theirs = {c.name: c for c in check_server(sim.url, manage_server=False, root=other)}
        managed = {c.name: c for c in check_server(sim.url, manage_server=True, root=other)}
    assert ours["ACE-Step API"].ok and "matches the V2 contract" in ours["ACE-Step API"].detail
    assert ours[PATHS_CHECK].ok, ours[PATHS_CHECK].render()
    assert not theirs[PATHS_CHECK].ok and theirs[PATHS_CHECK].fix.startswith(
        f"{FIX_START}{other})")
    assert managed[PATHS_CHECK].detail.startswith("not checked")
    assert not probes(ace) and not probes(other)


def test_each_simulated_version_is_named_or_refused(tmp_path: Path) -> None:
    ace = fake_acestep(tmp_path / "ace", version=versions.V1)
    with running_simulator(ace, version=versions.V1.commit) as sim:
        v1 = {c.name: c for c in check_server(sim.url, manage_server=False, root=ace)}
    assert v1["ACE-Step API"].detail.startswith("matches the V1 contract (c4cdd99, 2026-02-14)")
    assert v1[PATHS_CHECK].ok, v1[PATHS_CHECK].render()
    with running_simulator(tmp_path / "s", version=versions.S.commit) as sim:
        s = {c.name: c for c in check_server(sim.url, manage_server=False, root=ace)}
    assert not s["ACE-Step API"].ok and "too old" in s["ACE-Step API"].detail
    assert s["ACE-Step API"].fix == versions.UPDATE_HINT
    assert PATHS_CHECK not in s  # nothing to ask a server acewatchd cannot drive
    assert not probes(ace)


class _Answers:
    """A client whose /load_lora answers as a real server would (helper for check_models)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.calls: list[tuple[str, dict[str, object]]] = []

    def call(self, api_name: str, **named: object) -> tuple[str]:
        self.calls.append((api_name, named))
        return (self.text,)


@pytest.mark.parametrize(("answer", "ok", "words"), [
    ("❌ Model not initialized. Please initialize service first.", False, "--init_service true"),
    ("❌ LoRA loading is not supported on quantized models.", False, "without quantization"),
    ("❌ Please provide a LoRA path.", True, "loaded"),
])
def test_models_check_reads_a_harmless_load_lora(answer: str, ok: bool, words: str) -> None:
    from acewatchd.doctor.server import check_models

    client = _Answers(answer)
    check = check_models(client)
    assert check.ok is ok and words in (check.detail + check.fix)
    assert client.calls == [("/load_lora", {"lora_path": ""})]   # nothing is loaded
