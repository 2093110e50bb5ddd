"""Contract: the simulator's view_api() matches ACE-Step's snapshot for every endpoint acewatchd
uses, and the client refuses a server whose API was altered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client

from acewatchd.acestep.client import AceStepClient
from acewatchd.acestep.contract import NEEDED, endpoint_spec
from acewatchd.acestep.errors import ContractMismatch
from acewatchd.simulator.harness import SimHandle, running_simulator


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimHandle]:
    with running_simulator(tmp_path_factory.mktemp("ace")) as handle:
        yield handle


@pytest.fixture(scope="module")
def api(sim: SimHandle) -> dict[str, Any]:
    client = Client(sim.url, verbose=False, analytics_enabled=False)
    try:
        info = client.view_api(return_format="dict", print_info=False)
    finally:
        client.close()
    assert isinstance(info, dict)
    return info["named_endpoints"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("endpoint", sorted(NEEDED))
def test_endpoint_matches_snapshot(api: dict[str, Any], endpoint: str) -> None:
    served = api[endpoint]["parameters"]
    snap = endpoint_spec(endpoint)["parameters"]
    assert [p["parameter_name"] for p in served] == [p["name"] for p in snap]
    for got, want in zip(served, snap, strict=True):
        where = f"{endpoint} {want['name']}"
        assert got["label"] == want["label"], where
        assert got["component"] == want["component"], where
        assert got["parameter_has_default"] == (not want["required"]), where
        if not want["required"]:
            assert got["parameter_default"] == want["default"], where
        assert got["python_type"]["type"] == want["python_type"], where


def test_generation_wrapper_skips_hidden_state_index(api: dict[str, Any]) -> None:
    names = [p["parameter_name"] for p in api["/generation_wrapper"]["parameters"]]
    assert len(names) == 45 and "param_36" not in names and names[-1] == "param_45"


def test_generation_returns_38_values(api: dict[str, Any]) -> None:
    assert len(api["/generation_wrapper"]["returns"]) == 38
    assert len(api["/training_wrapper"]["returns"]) == 3


def test_simulator_says_it_is_a_simulator(sim: SimHandle) -> None:
    assert "SIMULATOR" in sim.log_path.read_text(encoding="utf-8")


@pytest.mark.parametrize(("fault", "endpoint", "param"), [
    ("drop-param=rc@/training_wrapper", "/training_wrapper", "rc"),
    ("rename-param=lora_path=path@/load_lora", "/load_lora", "lora_path"),
    ("add-param=lora_name@/training_wrapper", "/training_wrapper", "lora_name"),
])
def test_client_refuses_altered_api(tmp_path: Path, fault: str, endpoint: str,
                                    param: str) -> None:
    with running_simulator(tmp_path / "ace", faults=[fault]) as altered:
        client = AceStepClient(altered.url, retries=0)
        with pytest.raises(ContractMismatch) as err:
            client.connect()
        client.close()
    assert err.value.endpoint == endpoint and err.value.param == param
    assert endpoint in str(err.value) and f"'{param}'" in str(err.value)
