"""Contract: for each impersonated ACE-Step version, the simulator's view_api() reports exactly
that version's real signature for every endpoint acewatchd uses (names, labels, required
flags, defaults, components, slider bounds, order, returns), and the API faults alter the
served names."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from acewatchd.acestep import versions
from acewatchd.simulator.harness import SimHandle, running_simulator
from tests.simulator.sim import ALL, V1, V2, S, client

_API: dict[str, dict[str, Any]] = {}


def served(sim: SimHandle, version: str) -> dict[str, Any]:
    """view_api's named endpoints of the version's simulator (asked once per version)."""
    if version not in _API:
        with client(sim) as c:
            info = c.view_api(return_format="dict", print_info=False)
        assert isinstance(info, dict)
        _API[version] = info["named_endpoints"]
    return _API[version]


@pytest.fixture(params=ALL)
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def api(sim_for: Callable[..., SimHandle], version: str) -> dict[str, Any]:
    return served(sim_for(version), version)


@pytest.mark.parametrize("endpoint", versions.USED_ENDPOINTS)
def test_parameters_match_the_version(api: dict[str, Any], version: str, endpoint: str) -> None:
    got = api[endpoint]["parameters"]
    want = versions.endpoint(version, endpoint)["parameters"]
    assert [p["parameter_name"] for p in got] == [p["name"] for p in want]
    for g, w in zip(got, want, strict=True):
        where = f"{version} {endpoint} {w['name']}"
        assert g["label"] == w["label"], where
        assert g["component"] == w["component"], where
        assert g["parameter_has_default"] == (not w["required"]), where
        if not w["required"]:
            assert g["parameter_default"] == w["default"], where
        assert g["python_type"]["type"] == w["python_type"], where
        if "type_description" in w:  # slider bounds
            assert g["type"]["description"] == w["type_description"], where


@pytest.mark.parametrize("endpoint", versions.USED_ENDPOINTS)
def test_returns_match_the_version(api: dict[str, Any], version: str, endpoint: str) -> None:
    got = api[endpoint]["returns"]
    want = versions.endpoint(version, endpoint)["returns"]
    assert [r["component"] for r in got] == [r["component"] for r in want]
    for g, w in zip(got, want, strict=True):
        if not re.fullmatch(r"value_\d+", w["label"]):  # an unlabelled component's id
            assert g["label"] == w["label"], (version, endpoint)


def test_generation_param_numbers_skip_the_hidden_states(api: dict[str, Any],
                                                         version: str) -> None:
    names = [p["parameter_name"] for p in api["/generation_wrapper"]["parameters"]]
    numbers = [int(n.split("_")[1]) for n in names]
    gaps = sorted(set(range(numbers[-1] + 1)) - set(numbers))
    assert gaps == {S: [36], V1: [37], V2: [20, 48]}[version]
    assert len(names) == {S: 45, V1: 50, V2: 72}[version]
    assert len(api["/generation_wrapper"]["returns"]) == 38


def test_training_plot_is_a_lineplot_only_at_f30aee4(api: dict[str, Any], version: str) -> None:
    plot = api["/training_wrapper"]["returns"][2]["component"]
    assert plot == ("Lineplot" if version == S else "Plot")


def test_lora_scale_parameter_is_named_as_the_version_names_it(api: dict[str, Any],
                                                               version: str) -> None:
    names = [p["parameter_name"] for p in api["/set_lora_scale"]["parameters"]]
    assert names == (["adapter_name_or_scale"] if version == V2 else ["scale"])


def test_simulator_says_it_is_a_simulator(sim_for: Callable[..., SimHandle]) -> None:
    log = sim_for(V2).log_path.read_text(encoding="utf-8")
    assert "SIMULATOR" in log and "impersonating ACE-Step V2 (6d467e4" in log


def test_api_faults_alter_the_served_names(tmp_path: Path) -> None:
    faults = ["drop-param=resume_checkpoint_dir@/training_wrapper",
              "rename-param=lora_path=path@/load_lora", "add-param=lora_name@/training_wrapper",
              "rename-param=param_36=fmt@/generation_wrapper"]
    with running_simulator(tmp_path / "ace", faults=faults, version=V2) as altered:
        info = served(altered, "altered")
    training = [p["parameter_name"] for p in info["/training_wrapper"]["parameters"]]
    assert "resume_checkpoint_dir" not in training and training[-1] == "lora_name"
    assert training[:2] == ["tensor_dir", "lora_rank"]
    assert [p["parameter_name"] for p in info["/load_lora"]["parameters"]] == ["path"]
    generation = [p["parameter_name"] for p in info["/generation_wrapper"]["parameters"]]
    assert "fmt" in generation and "param_36" not in generation and "param_37" in generation
