"""The /load_lora family at each impersonated version: 6d467e4's named adapters (a second load
without /unload_lora is refused by name), the older single adapter, and /set_lora_scale's
parameter under the version's own name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from acewatchd.simulator.harness import SimHandle
from acewatchd.simulator.lora import write_adapter
from tests.simulator.sim import ALL, V1, V2, S, client


def _adapter(root: Path, run: str) -> str:
    folder = root / "lora_output" / run / "final" / "adapter"
    write_adapter(folder, r=8, alpha=16, dropout=0.1, fingerprint="ab" * 32)
    return f"./lora_output/{run}/final/adapter"


@pytest.fixture
def sim(sim_for: Callable[..., SimHandle], request: pytest.FixtureRequest) -> SimHandle:
    handle = sim_for(request.param)
    handle.set_faults([])
    return handle


@pytest.mark.parametrize("sim", [V2], indirect=True)
def test_named_adapter_clash_and_unload(sim: SimHandle) -> None:
    first, second = _adapter(sim.root, "one"), _adapter(sim.root, "two")
    with client(sim) as c:
        c.predict(api_name="/unload_lora")
        assert c.predict(lora_path=first, api_name="/load_lora") == \
            f"✅ LoRA 'adapter' loaded from {first}"
        assert c.predict(lora_path=second, api_name="/load_lora") == \
            "❌ Adapter name already in use: adapter. Use a different name or remove it first."
        assert c.predict(adapter_name_or_scale=0.5, api_name="/set_lora_scale") == \
            "✅ LoRA scale (adapter): 0.50"
        assert c.predict(api_name="/unload_lora") == "✅ LoRA unloaded, using base model"
        assert c.predict(api_name="/unload_lora") == "⚠️ No LoRA adapter loaded."
        assert c.predict(lora_path=second, api_name="/load_lora") == \
            f"✅ LoRA 'adapter' loaded from {second}"
        c.predict(api_name="/unload_lora")


@pytest.mark.parametrize("sim", [S, V1], indirect=True)
def test_single_adapter_is_replaced(sim: SimHandle) -> None:
    first, second = _adapter(sim.root, "one"), _adapter(sim.root, "two")
    with client(sim) as c:
        c.predict(api_name="/unload_lora")
        assert c.predict(scale=0.5, api_name="/set_lora_scale") == "⚠️ No LoRA loaded"
        assert c.predict(lora_path=first, api_name="/load_lora") == f"✅ LoRA loaded from {first}"
        assert c.predict(lora_path=second, api_name="/load_lora") == \
            f"✅ LoRA loaded from {second}"
        assert c.predict(scale=0.25, api_name="/set_lora_scale") == "✅ LoRA scale: 0.25"
        assert c.predict(use_lora=False, api_name="/set_use_lora") == "✅ LoRA disabled"
        assert c.predict(scale=0.5, api_name="/set_lora_scale") == \
            "✅ LoRA scale: 0.50 (LoRA disabled)"
        c.predict(api_name="/unload_lora")


@pytest.mark.parametrize("sim", ALL, indirect=True)
def test_bad_lora_paths(sim: SimHandle) -> None:
    (sim.root / "not-an-adapter").mkdir(exist_ok=True)
    with client(sim) as c:
        assert c.predict(lora_path="./nowhere", api_name="/load_lora") == \
            "❌ LoRA path not found: ./nowhere"
        text = c.predict(lora_path="./not-an-adapter", api_name="/load_lora")
        assert c.predict(use_lora=True, api_name="/set_use_lora") == \
            "❌ No LoRA adapter loaded. Please load a LoRA first."
    if sim.version == S:
        assert text == "❌ Invalid LoRA adapter: adapter_config.json not found in ./not-an-adapter"
    else:
        assert text.startswith("❌ Invalid adapter: expected PEFT LoRA directory containing "
                               "adapter_config.json or LoKr artifact")
