"""Build the SIMULATOR's Gradio events from the impersonated version's real signature.

``versions.endpoint(commit, api)`` gives each parameter's name, label, component, python type,
default and required flag as the real server reports them; components are built from those,
slider bounds from ``type_description`` ("numeric value between A and B"; f30aee4's JSON has
none, so its bounds come from that version's UI code, ``S_SLIDER_BOUNDS``). Parameter names
are those of the handler's signature in Gradio, so each handler gets a generated
``__signature__`` with the served names; hidden ``gr.State`` inputs sit where the real app has
them, so ``param_N`` numbering matches (a gap in the param_N sequence is a hidden input).

Handlers receive ``values`` keyed by version-independent names (``canonical``): the training
parameters by f30aee4's short names (``r``, ``ep``, ``rc`` …, same order in every version),
``scale`` for /set_lora_scale, and generation parameters by meaning (``caption``,
``duration``, ``batch``, ``format`` …), found by label.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from acewatchd.acestep import versions

# Generation limits per GPU tier (CONTRACT §9c): the >= 24 GB tier and a GPU-less / <= 6 GB one.
TIER_BOUNDS: dict[str, dict[str, tuple[float, float]]] = {
    "large": {"Audio Duration (seconds)": (-1, 600), "Batch Size": (1, 8)},
    "small": {"Audio Duration (seconds)": (-1, 180), "Batch Size": (1, 1)},
}

# f30aee4's JSON carries no slider bounds; these are its gradio_ui/interfaces/{training,
# generation}.py values (by label; the same as c4cdd99 reports for the sliders both have).
S_SLIDER_BOUNDS: dict[str, tuple[float, float]] = {
    "LoRA Rank (r)": (4, 256), "LoRA Alpha": (4, 512), "LoRA Dropout": (0.0, 0.5),
    "Max Epochs": (100, 4000), "Batch Size": (1, 8), "Gradient Accumulation": (1, 16),
    "Save Every N Epochs": (50, 1000), "Shift": (1.0, 5.0), "LoRA Scale": (0.0, 1.0),
    "DiT Inference Steps": (1, 20), "DiT Guidance Scale (Only support for base model)": (1.0, 15.0),
    "LM Codes Strength": (0.0, 1.0), "CFG Interval Start": (0.0, 1.0),
    "CFG Interval End": (0.0, 1.0), "LM Temperature": (0.0, 2.0), "LM CFG Scale": (1.0, 3.0),
    "LM Top-K": (0, 100), "LM Top-P": (0.0, 1.0), "Quality Score Sensitivity": (0.01, 1.0),
}

# Training parameters in order, by f30aee4's names (6d467e4 renamed them, same order).
TRAINING_KEYS = ("tensor_dir", "r", "a", "d", "lr", "ep", "bs", "ga", "se", "sh", "sd", "od",
                 "rc")

# Generation parameters the simulator reads, found by label (labels changed across versions).
GENERATION_LABELS: dict[str, Callable[[str], bool]] = {
    "caption": lambda s: s.startswith("Music Caption"),
    "lyrics": lambda s: s.startswith("Lyrics"),
    "bpm": lambda s: s.startswith("BPM"),
    "keyscale": lambda s: s in ("KeyScale (optional)", "Key (optional)", "Key"),
    "timesignature": lambda s: s.startswith("Time Signature"),
    "language": lambda s: s.startswith("Vocal Language"),
    "steps": lambda s: s == "DiT Inference Steps",
    "guidance": lambda s: s.startswith("DiT Guidance Scale"),
    "random_seed": lambda s: s == "Random Seed",
    "seed": lambda s: s == "Seed",
    "duration": lambda s: s == "Audio Duration (seconds)",
    "batch": lambda s: s == "Batch Size",
    "instruction": lambda s: s == "Instruction",
    "task_type": lambda s: s in ("Task Type", "task_type"),
    "shift": lambda s: s == "Shift",
    "infer_method": lambda s: s == "Inference Method",
    "format": lambda s: s == "Audio Format",
    "think": lambda s: s == "Think",
}

# Hidden inputs of the generation event after its visible ones, in every version:
# current_batch_index, total_batches, batch_queue, generation_params_state.
GENERATION_TRAILING_STATES: tuple[Any, ...] = (0, 1, {}, {})
# A hidden input in a param_N gap: 6d467e4 made task_type a gr.State("text2music") at
# param_20; every version has is_format_caption_state (False) before "Constrained Decoding".
GAP_STATE_VALUES = {("6d467e4", 20): "text2music"}
SESSION = "_session_state"
# The session's training gr.State: its input position per endpoint (ACE-Step's wiring).
SESSION_STATE_INPUT = {"/training_wrapper": 13, "/stop_training": 0}


def literal_choices(python_type: str) -> list[str]:
    return re.findall(r"'([^']*)'", python_type or "")


def signature(commit: str, api: str) -> dict[str, Any]:
    return versions.endpoint(commit, api)


def bounds(commit: str, api: str, p: dict[str, Any], tier: str) -> tuple[float, float] | None:
    label = str(p.get("label") or "")
    if api == "/generation_wrapper" and label in TIER_BOUNDS[tier] and p["component"] == "Number":
        return TIER_BOUNDS[tier][label]
    if p["component"] != "Slider":
        return None
    match = _BETWEEN.search(str(p.get("type_description") or ""))
    if match:  # keep "4" an int and "0.0" a float, so the served description reads the same
        return _number(match.group(1)), _number(match.group(2))
    return S_SLIDER_BOUNDS.get(label)


_BETWEEN = re.compile(r"between (-?[\d.]+) and (-?[\d.]+)")


def _number(text: str) -> float:
    return float(text) if "." in text else int(text)


def _step(lo: float, hi: float, default: Any) -> float:
    values = [lo, hi] + ([default] if isinstance(default, int | float) else [])
    return 1 if all(float(x).is_integer() for x in values) else 0.01


def make_input(commit: str, api: str, p: dict[str, Any], tier: str) -> gr.components.Component:
    kind, label, default = p["component"], p["label"], p.get("default")
    lo_hi = bounds(commit, api, p, tier)
    if kind == "Textbox":
        return gr.Textbox(label=label, value=default)
    if kind == "Checkbox":
        return gr.Checkbox(label=label, value=bool(default))
    if kind == "Slider":
        lo, hi = lo_hi or (min(0, default or 0), max(100, default or 0))
        return gr.Slider(minimum=lo, maximum=hi, value=default, label=label,
                         step=_step(lo, hi, default))
    if kind == "Number":
        lo, hi = lo_hi or (None, None)
        precision = 0 if p.get("python_type") == "int" else None
        return gr.Number(label=label, value=default, minimum=lo, maximum=hi, precision=precision)
    if kind in ("Dropdown", "Radio"):
        choices: list[Any] = literal_choices(p["python_type"])
        if default is not None and not isinstance(default, str) and str(default) in choices:
            # e.g. 6d467e4's MP3 Sample Rate: int values (48000) reported as Literal['48000']
            choices = [(c, type(default)(c)) for c in choices]
        cls = gr.Dropdown if kind == "Dropdown" else gr.Radio
        return cls(choices=choices, value=default, label=label)
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
    if kind == "Lineplot":  # f30aee4: a PlotData DataFrame, no label (reported as value_N)
        return gr.LinePlot(x="step", y="loss")
    if kind == "Plot":  # c4cdd99 on: a matplotlib figure
        return gr.Plot(label=label)
    return gr.Textbox(label=label)


def canonical(commit: str, api: str) -> dict[str, str]:
    """served (JSON) parameter name -> the name handlers read it by."""
    params = signature(commit, api)["parameters"]
    if api == "/training_wrapper":
        return {p["name"]: key for p, key in zip(params, TRAINING_KEYS, strict=False)}
    if api == "/set_lora_scale":
        return {params[0]["name"]: "scale"} if params else {}
    if api == "/generation_wrapper":
        found: dict[str, str] = {}
        for key, matches in GENERATION_LABELS.items():
            for p in params:
                if matches(str(p["label"])) and p["name"] not in found:
                    found[p["name"]] = key
                    break
        return found
    return {}


def hidden_inputs(commit: str, api: str) -> list[tuple[int, str, Any]]:
    """(position among the inputs, name, initial value) of the hidden gr.State inputs other
    than the session's training state: the param_N gaps and trailing states of generation."""
    if api != "/generation_wrapper":
        return []
    numbers = sorted(int(p["name"].split("_")[1]) for p in signature(commit, api)["parameters"]
                     if re.fullmatch(r"param_\d+", p["name"]))
    gaps = sorted(set(range(numbers[-1] + 1)) - set(numbers)) if numbers else []
    hidden = [(n, f"_hidden_{n}", GAP_STATE_VALUES.get((commit, n), False)) for n in gaps]
    end = (numbers[-1] + 1) if numbers else 0
    hidden += [(end + i, f"_hidden_{end + i}", v)
               for i, v in enumerate(GENERATION_TRAILING_STATES)]
    return hidden


@dataclass
class Alter:
    """API alterations for the contract-mismatch tests (faults drop/rename/add-param). Names
    are the served ones (the impersonated version's)."""

    dropped: set[str] = field(default_factory=set)
    renamed: dict[str, str] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)


def _signature(names: list[str]) -> inspect.Signature:
    return inspect.Signature([inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                              for n in names])


@dataclass
class Wiring:
    """One event's inputs: components, served names and the names handlers read them by."""

    inputs: list[Any] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)

    def add(self, pos: int, component: Any, name: str, key: str) -> None:
        pos = min(pos, len(self.inputs))
        self.inputs.insert(pos, component)
        self.names.insert(pos, name)
        self.keys.insert(pos, key)


def _inputs(commit: str, api: str, alter: Alter, tier: str, state: Any) -> Wiring:
    spec = signature(commit, api)
    canon = canonical(commit, api)
    w = Wiring()
    for p in spec["parameters"]:
        if p["name"] in alter.dropped:
            continue
        w.add(len(w.inputs), make_input(commit, api, p, tier),
              alter.renamed.get(p["name"], p["name"]), canon.get(p["name"], p["name"]))
    for extra in alter.added:
        w.add(len(w.inputs), gr.Textbox(label=extra, value=None), extra, extra)
    # Hidden states go where the real app has them, counted on the full (unaltered) list so
    # a gap stays a gap; dropping parameters shifts them like it would shift a real app.
    for pos, name, value in hidden_inputs(commit, api):
        w.add(pos, gr.State(value=value), name, name)
    if state is not None:
        w.add(SESSION_STATE_INPUT[api], state, SESSION, SESSION)
    return w


def wire(api: str, impl: Callable[..., Any], alter: Alter, *, commit: str, tier: str,
         stream: bool = False, state: Any = None) -> None:
    """Register ``impl(values: dict, state)`` as event ``api`` inside the current Blocks.

    ``state`` is the session's training gr.State for /training_wrapper and /stop_training
    (they must be given the same component, as in ACE-Step). ``values`` holds every served
    parameter under its canonical name (dropped parameters get the version's default, so
    the handler never sees the alteration); hidden inputs are left out.
    """
    spec = signature(commit, api)
    w = _inputs(commit, api, alter, tier, state)
    canon = canonical(commit, api)
    defaults = {canon.get(p["name"], p["name"]): p.get("default") for p in spec["parameters"]}
    outputs: list[Any] = [make_output(r) for r in spec["returns"]]
    if state is not None:
        outputs.append(state)

    def split(args: tuple[Any, ...]) -> tuple[dict[str, Any], Any]:
        values = dict(defaults)
        values.update(zip(w.keys, args, strict=False))
        for key in [k for k in values if k.startswith("_hidden_")]:
            values.pop(key)
        return values, values.pop(SESSION, None)

    if stream:
        def fn(*args: Any) -> Any:
            values, st = split(args)
            yield from impl(values, st)
    else:
        def fn(*args: Any) -> Any:
            values, st = split(args)
            return impl(values, st)
    fn.__signature__ = _signature(w.names)  # type: ignore[attr-defined]
    fn.__name__ = api.strip("/")
    fn.__doc__ = spec.get("description") or None
    button = gr.Button(api, visible=False)
    button.click(fn, inputs=w.inputs, outputs=outputs, api_name=api.strip("/"))
