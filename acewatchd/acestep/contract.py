"""What acewatchd sends to each ACE-Step endpoint, independent of the version serving it.

Callers speak acewatchd's own parameter keys (``r``, ``scale``, ``caption``, …). A served
signature names them differently per version: ``/training_wrapper``'s short S/V1 names became
``lora_rank …`` at V2, ``/set_lora_scale``'s ``scale`` became ``adapter_name_or_scale``, and
``/generation_wrapper``'s inputs are positional ``param_N`` whose numbers shift between
versions, so those are found by their label (each known version's label is listed). A key is
*needed* (refuse a server without it) or *filled* (a required input of some version whose
meaning is known: acewatchd sends the neutral value, e.g. V2's empty source caption). Every
other input is left at the server's default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from acewatchd.acestep.versions import VERSIONS, endpoint


@dataclass(frozen=True)
class Key:
    """One of acewatchd's parameters of an endpoint and how a served signature spells it."""

    key: str
    names: tuple[str, ...] = ()   # served parameter names (renames across versions)
    labels: tuple[str, ...] = ()  # labels of a positional param_N input, per version
    needed: bool = True           # False: only sent when the server has it (filled inputs)


def _train(key: str, v2_name: str) -> Key:
    return Key(key, names=(key, v2_name))


# Generation inputs acewatchd sets, by meaning; labels are filled in from the known versions.
_GENERATION = {
    "caption": ("Music Caption",), "lyrics": ("Lyrics",), "bpm": ("BPM",),
    "keyscale": ("KeyScale", "Key"), "time_signature": ("Time Signature",),
    "language": ("Vocal Language",), "steps": ("DiT Inference Steps",),
    "guidance": ("DiT Guidance Scale",), "random_seed": ("Random Seed",), "seed": ("Seed",),
    "reference_audio": ("Reference Audio",), "duration": ("Audio Duration (seconds)",),
    "batch_size": ("Batch Size",), "source_audio": ("Source Audio",),
    "lm_codes": ("LM Codes Hints",), "audio_format": ("Audio Format",),
    "track_name": ("Track Name",),
}
# Required at some version, meaning known, value neutral: sent only where served.
_GENERATION_FILLED = {"source_caption": ("source caption",), "source_lyrics": ("source lyrics",)}


def _label_stem(label: str) -> str:
    """"Music Caption (optional)" -> "Music Caption"; "BPM (Beats Per Minute)" -> "BPM"."""
    stem = re.sub(r"\s*\((optional|Beats Per Minute|Only support[^)]*|Base model[^)]*)\)$", "",
                  label.strip())
    return stem


@cache
def generation_keys() -> tuple[Key, ...]:
    """The generation keys with the exact labels every known version uses for them."""
    keys: list[Key] = []
    for table, needed in ((_GENERATION, True), (_GENERATION_FILLED, False)):
        for key, stems in table.items():
            labels = sorted({p["label"] for v in VERSIONS
                             for p in endpoint(v, "/generation_wrapper")["parameters"]
                             if _label_stem(p["label"]) in stems})
            keys.append(Key(key, labels=tuple(labels), needed=needed))
    return tuple(keys)


TRAINING_KEYS = (
    Key("tensor_dir"), _train("r", "lora_rank"), _train("a", "lora_alpha"),
    _train("d", "lora_dropout"), _train("lr", "learning_rate"), _train("ep", "train_epochs"),
    _train("bs", "train_batch_size"), _train("ga", "gradient_accumulation"),
    _train("se", "save_every_n_epochs"), _train("sh", "training_shift"),
    _train("sd", "training_seed"), _train("od", "lora_output_dir"),
    _train("rc", "resume_checkpoint_dir"),
)


def needed() -> dict[str, tuple[Key, ...]]:
    """Per endpoint acewatchd calls: the keys it sends."""
    return {
        "/load_lora": (Key("lora_path"),),
        "/unload_lora": (),
        "/set_use_lora": (Key("use_lora"),),
        "/set_lora_scale": (Key("scale", names=("scale", "adapter_name_or_scale")),),
        "/load_training_dataset": (Key("tensor_dir"),),
        "/training_wrapper": TRAINING_KEYS,
        "/stop_training": (),
        "/export_lora": (Key("export_path"), Key("lora_output_dir")),
        "/generation_wrapper": generation_keys(),
    }


# Positional artifacts: a param_N name says nothing about meaning, so its label decides.
POSITIONAL_NAME = re.compile(r"^param_\d+$")
