"""/generation_wrapper at each impersonated version (its own param_N numbering and formats) and
the GPU tier's limits, enforced by the served components as Gradio does."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from acewatchd.acestep import versions
from acewatchd.simulator.generate import pitch
from acewatchd.simulator.harness import SimHandle
from tests.simulator.sim import V1, V2, S, client


def generation_args(version: str, **by_label: Any) -> dict[str, Any]:
    """Keyword arguments under the version's param_N names: every required one (None, or the
    caption), plus the given values by label."""
    params = versions.endpoint(version, "/generation_wrapper")["parameters"]
    args: dict[str, Any] = {p["name"]: None for p in params if p["required"]}
    for p in params:
        if p["label"] in by_label:
            args[p["name"]] = by_label[p["label"]]
    args[params[0]["name"]] = by_label.get("caption", "a simulator tone")
    return args


@pytest.mark.parametrize(("version", "fmt", "ext"), [(S, "flac", ".flac"), (V1, "wav32", ".wav"),
                                                     (V2, "opus", ".opus")])
def test_generates_in_the_version_formats(sim_for: Callable[..., SimHandle], version: str,
                                          fmt: str, ext: str) -> None:
    sim = sim_for(version)
    with client(sim, download_files=False) as c:
        out = c.predict(**generation_args(version, **{"Audio Format": fmt, "Batch Size": 2}),
                        api_name="/generation_wrapper")
    files = [Path(str(a["path"] if isinstance(a, dict) else a)) for a in out[:8] if a]
    assert len(files) == 2 and all(f.suffix == ext and f.is_file() for f in files)
    made = sorted((sim.root / "gradio_outputs").rglob(f"{files[0].stem}.json"))
    assert len(made) == 1 and made[0].with_suffix(ext).is_file()
    meta = json.loads(made[0].read_text(encoding="utf-8"))
    assert meta["caption"] == "a simulator tone" and meta["simulator"]["impersonates"] == version


@pytest.mark.parametrize(("label", "value", "limit"), [("Batch Size", 2, 1),
                                                        ("Audio Duration (seconds)", 200, 180)])
def test_small_tier_refuses_what_its_gpu_cannot(sim_for: Callable[..., SimHandle], label: str,
                                                value: int, limit: int) -> None:
    sim = sim_for(V2, "small")
    with client(sim, download_files=False) as c, pytest.raises(
            Exception, match=f"Value {value} is greater than maximum value {limit}"):
        c.predict(**generation_args(V2, **{label: value}), api_name="/generation_wrapper")


def test_large_tier_bounds(sim_for: Callable[..., SimHandle]) -> None:
    sim = sim_for(V2)
    with client(sim, download_files=False) as c:
        with pytest.raises(Exception, match="Value 9 is greater than maximum value 8"):
            c.predict(**generation_args(V2, **{"Batch Size": 9}), api_name="/generation_wrapper")
        with pytest.raises(Exception, match="Value 601 is greater than maximum value 600"):
            c.predict(**generation_args(V2, **{"Audio Duration (seconds)": 601}),
                      api_name="/generation_wrapper")


@pytest.mark.parametrize("scale", [0.5, 0.8, 1.0])
def test_a_hand_written_adapter_always_moves_the_tone_past_the_no_effect_threshold(
        scale: float) -> None:
    # Which fingerprint an adapter gets depends on the test's temporary folder; the rise it
    # causes must never fall inside the analysis' no-effect threshold (~2.2 semitones).
    for n in range(200):
        fp = f"{n * 2654435761 % 2**32:08x}"
        base, lora = pitch("calm", n, "", 0.0), pitch("calm", n, fp, scale)
        assert 12 * math.log2(lora / base) >= 6 * scale - 0.01
