"""The ACE-Step versions acewatchd knows, and each one's real Gradio signature.

Each known version ships its API as the real server reports it (``contract/gradio-api-<commit>
.json``: endpoint names, parameter names, labels, components, defaults, required flags, and
slider bounds in ``type_description``). The client matches a running server against these; the
simulator serves one of them. CONTRACT §9 has the facts behind the table.

- **S** (f30aee4, 2026-02-08) has no ``acestep.training_v2``: it cannot preprocess, so it is
  refused before any work.
- **V1** (c4cdd99, 2026-02-14) and **V2** (6d467e4, 2026-06-26) are supported.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

# The endpoints acewatchd calls (the others a version serves are the UI's own).
USED_ENDPOINTS = ("/load_lora", "/unload_lora", "/set_use_lora", "/set_lora_scale",
                  "/load_training_dataset", "/training_wrapper", "/stop_training",
                  "/export_lora", "/generation_wrapper")


@dataclass(frozen=True)
class AceStepVersion:
    commit: str                 # short git commit, also the contract file's name
    label: str                  # S, V1, V2
    date: str
    supported: bool
    training_v2: bool           # has acestep.training_v2 (preprocess_audio_files)
    loss_named_checkpoints: bool  # checkpoints/epoch_N_loss_X (else epoch_N)
    named_adapters: bool        # /load_lora adds an adapter named after the path's basename
    mojibake_errors: bool       # handler errors start with U+FFFD instead of an emoji

    @property
    def title(self) -> str:
        return f"{self.label} ({self.commit}, {self.date})"


S = AceStepVersion("f30aee4", "S", "2026-02-08", supported=False, training_v2=False,
                   loss_named_checkpoints=False, named_adapters=False, mojibake_errors=True)
V1 = AceStepVersion("c4cdd99", "V1", "2026-02-14", supported=True, training_v2=True,
                    loss_named_checkpoints=False, named_adapters=False, mojibake_errors=True)
V2 = AceStepVersion("6d467e4", "V2", "2026-06-26", supported=True, training_v2=True,
                    loss_named_checkpoints=True, named_adapters=True, mojibake_errors=False)
VERSIONS: dict[str, AceStepVersion] = {v.commit: v for v in (S, V1, V2)}
NEWEST = V2
UPDATE_HINT = (f"update ACE-Step to {V1.commit} ({V1.date}) or newer, e.g. `git pull` in its "
               "folder, then `uv sync` (acewatchd needs acestep.training_v2 to preprocess)")


def by_commit(commit: str) -> AceStepVersion:
    """The known version whose commit ``commit`` starts with (or equals)."""
    for v in VERSIONS.values():
        if commit and (commit.startswith(v.commit) or v.commit.startswith(commit)):
            return v
    raise KeyError(commit)


@cache
def signature(commit: str) -> dict[str, Any]:
    """That version's contract JSON: ``endpoints`` maps api_name -> parameters/returns."""
    text = resources.files("acewatchd.acestep").joinpath(
        "contract", f"gradio-api-{commit}.json").read_text(encoding="utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


def endpoint(commit: str, api_name: str) -> dict[str, Any]:
    spec: dict[str, Any] = signature(commit)["endpoints"][api_name]
    return spec


_BETWEEN = re.compile(r"between (-?[\d.]+) and (-?[\d.]+)")


def slider_bounds(param: dict[str, Any]) -> tuple[float, float] | None:
    """(min, max) a server reported for a slider ("numeric value between 4 and 256")."""
    match = _BETWEEN.search(str(param.get("type_description") or ""))
    return (float(match.group(1)), float(match.group(2))) if match else None


def as_view_api(commit: str) -> dict[str, Any]:
    """That version's signature in the shape gradio_client's ``view_api(return_format="dict")``
    returns (what the client checks a live server by)."""
    named: dict[str, Any] = {}
    for api_name, spec in signature(commit)["endpoints"].items():
        named[api_name] = {
            "parameters": [{
                "label": p["label"], "parameter_name": p["name"],
                "parameter_has_default": not p["required"], "parameter_default": p.get("default"),
                "component": p["component"],
                "type": {"description": p.get("type_description", "")},
                "python_type": {"type": p.get("python_type", ""), "description": ""},
            } for p in spec["parameters"]],
            "returns": [{"label": r.get("label"), "component": r.get("component")}
                        for r in spec.get("returns", [])],
        }
    return {"named_endpoints": named, "unnamed_endpoints": {}}
