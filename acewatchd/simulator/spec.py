"""Build the SIMULATOR's Gradio events from the packaged snapshot JSON.

Components come from each parameter's component/label/default/python_type, bounds from
``contract.BOUNDS``. Parameter names are those of the handler's signature in Gradio, so each
handler gets a generated ``__signature__`` with the snapshot names; hidden ``gr.State`` inputs
sit at the same positions as in ACE-Step so ``param_N`` numbering matches (no ``param_36``).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from acewatchd.acestep.contract import BOUNDS, endpoint_spec

# Hidden State inputs (index in the inputs list) per endpoint, as in ACE-Step f30aee4.
STATE_INPUTS = {"/generation_wrapper": 36, "/training_wrapper": 13, "/stop_training": 0,
                "/load_training_dataset": 1}
STATE_OUTPUT = {"/training_wrapper", "/stop_training", "/load_training_dataset"}


def literal_choices(python_type: str) -> list[str]:
    return re.findall(r"'([^']*)'", python_type or "")


def make_input(api: str, p: dict[str, Any]) -> gr.components.Component:
    kind, label, default = p["component"], p["label"], p.get("default")
    lo_hi = BOUNDS.get(api, {}).get(p["name"])
    if kind == "Textbox":
        return gr.Textbox(label=label, value=default)
    if kind == "Checkbox":
        return gr.Checkbox(label=label, value=bool(default))
    if kind == "Slider":
        lo, hi = lo_hi or (min(0, default or 0), max(100, default or 0))
        return gr.Slider(minimum=lo, maximum=hi, value=default, label=label)
    if kind == "Number":
        lo, hi = lo_hi or (None, None)
        precision = 0 if p.get("python_type") == "int" else None
        return gr.Number(label=label, value=default, minimum=lo, maximum=hi, precision=precision)
    if kind in ("Dropdown", "Radio"):
        cls = gr.Dropdown if kind == "Dropdown" else gr.Radio
        return cls(choices=literal_choices(p["python_type"]), value=default, label=label)
    if kind == "Checkboxgroup":
        return gr.CheckboxGroup(choices=literal_choices(p["python_type"]), value=default,
                                label=label)
    if kind == "Audio":
        return gr.Audio(type="filepath", value=None, label=label)
    raise ValueError(f"simulator: no builder for component {kind!r} ({api} {p['name']})")


def make_output(r: dict[str, Any]) -> gr.components.Component:
    kind, label = r["component"], r["label"]
    if kind == "Audio":
        return gr.Audio(type="filepath", label=label)
    if kind == "File":
        return gr.File(file_count="multiple", label=label)
    if kind == "Markdown":
        return gr.Markdown(label=label)
    if kind == "Lineplot":
        return gr.LinePlot(x="step", y="loss")
    return gr.Textbox(label=label)


@dataclass
class Alter:
    """API alterations for the contract-mismatch tests (faults drop/rename/add-param)."""

    dropped: set[str] = field(default_factory=set)
    renamed: dict[str, str] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)


def _signature(names: list[str]) -> inspect.Signature:
    return inspect.Signature([inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                              for n in names])


def wire(api: str, impl: Callable[..., Any], alter: Alter, *, stream: bool = False,
         state: Any = None) -> None:
    """Register ``impl(values: dict, state)`` as event ``api`` inside the current Blocks.

    ``state`` is the session's gr.State for endpoints that have a hidden one; endpoints that
    share a State in ACE-Step (training, stop, dataset) must be given the same component.

    ``values`` is keyed by the snapshot's parameter names whatever the served names are
    (dropped parameters get the snapshot default, so the handler never sees the alteration).
    """
    spec = endpoint_spec(api)
    params = [p for p in spec["parameters"] if p["name"] not in alter.dropped]
    inputs: list[Any] = [make_input(api, p) for p in params]
    names = [alter.renamed.get(p["name"], p["name"]) for p in params]
    canon = [p["name"] for p in params]
    for extra in alter.added:
        inputs.append(gr.Textbox(label=extra, value=None))
        names.append(extra)
        canon.append(extra)
    if api in STATE_INPUTS and state is None:
        state = gr.State(value={})
    if state is not None:
        pos = min(STATE_INPUTS[api], len(inputs))
        inputs.insert(pos, state)
        names.insert(pos, "_session_state")
        canon.insert(pos, "_session_state")
    defaults = {p["name"]: p.get("default") for p in spec["parameters"]}
    outputs: list[Any] = [make_output(r) for r in spec["returns"]]
    if state is not None and api in STATE_OUTPUT:
        outputs.append(state)

    def split(args: tuple[Any, ...]) -> tuple[dict[str, Any], Any]:
        values = dict(defaults)
        values.update(zip(canon, args, strict=False))
        return values, values.pop("_session_state", None)

    if stream:
        def fn(*args: Any) -> Any:
            values, st = split(args)
            yield from impl(values, st)
    else:
        def fn(*args: Any) -> Any:
            values, st = split(args)
            return impl(values, st)
    fn.__signature__ = _signature(names)  # type: ignore[attr-defined]
    fn.__name__ = api.strip("/")
    button = gr.Button(api, visible=False)
    button.click(fn, inputs=inputs, outputs=outputs, api_name=api.strip("/"))
