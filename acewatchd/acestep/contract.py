"""The ACE-Step Gradio contract acewatchd relies on, from the packaged snapshot.

The snapshot (``contract/gradio-api-f30aee4.json``) holds names, labels, components, python
types, required-ness and defaults, but no bounds; ``BOUNDS`` adds them from CONTRACT §1 so the
simulator can enforce them like ACE-Step does. ``NEEDED`` is what the client sends per endpoint.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from typing import Any

SNAPSHOT_NAME = "gradio-api-f30aee4.json"

# Parameters acewatchd sets, per endpoint. Everything else is left to the server's default;
# a server-required parameter not listed here means the API drifted.
NEEDED: dict[str, tuple[str, ...]] = {
    "/load_lora": ("lora_path",),
    "/unload_lora": (),
    "/set_use_lora": ("use_lora",),
    "/set_lora_scale": ("scale",),
    "/load_training_dataset": ("tensor_dir",),
    "/training_wrapper": ("tensor_dir", "r", "a", "d", "lr", "ep", "bs", "ga", "se", "sh",
                          "sd", "od", "rc"),
    "/stop_training": (),
    "/export_lora": ("export_path", "lora_output_dir"),
    "/generation_wrapper": tuple(f"param_{i}" for i in
                                 (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 26, 43)),
}

# (minimum, maximum) per endpoint parameter, CONTRACT §1 (GPU-less tier for generation).
BOUNDS: dict[str, dict[str, tuple[float, float]]] = {
    "/training_wrapper": {"r": (4, 256), "a": (4, 512), "d": (0, 0.5), "ep": (100, 4000),
                          "bs": (1, 8), "ga": (1, 16), "se": (50, 1000), "sh": (1, 5)},
    "/generation_wrapper": {"param_6": (1, 20), "param_7": (1, 15), "param_11": (-1, 600),
                            "param_12": (1, 8), "param_23": (1, 5), "param_42": (1, 32),
                            "param_18": (0, 1), "param_21": (0, 1), "param_22": (0, 1),
                            "param_27": (0, 2), "param_29": (1, 3), "param_30": (0, 100),
                            "param_31": (0, 1), "param_41": (0, 1)},
    "/set_lora_scale": {"scale": (0, 1)},
}

# Positional artifacts: a param_N name says nothing about meaning, so its label is checked too.
POSITIONAL_NAME = re.compile(r"^param_\d+$")


@cache
def load_snapshot() -> dict[str, Any]:
    """The packaged snapshot JSON (``endpoints`` maps api_name -> parameters/returns)."""
    text = resources.files("acewatchd.acestep").joinpath("contract", SNAPSHOT_NAME).read_text(
        encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def endpoint_spec(api_name: str) -> dict[str, Any]:
    return load_snapshot()["endpoints"][api_name]  # type: ignore[no-any-return]


def expected_label(api_name: str, param: str) -> str | None:
    for p in endpoint_spec(api_name)["parameters"]:
        if p["name"] == param:
            return p["label"]  # type: ignore[no-any-return]
    return None
