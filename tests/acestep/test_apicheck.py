"""The client follows the version: each known signature (as the real servers report it) is
matched, S is refused as too old, renames and labels are mapped, every mismatch is listed."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from acewatchd.acestep.apicheck import check_api, resolve_args
from acewatchd.acestep.errors import ContractMismatch, UnsupportedVersion
from acewatchd.acestep.generation import GenerationRequest, request_params
from acewatchd.acestep.versions import as_view_api

TRAIN = {"tensor_dir": "./t", "r": 8, "a": 16, "d": 0.1, "lr": 1e-4, "ep": 100, "bs": 1,
         "ga": 1, "se": 50, "sh": 3.0, "sd": 42, "od": "./o", "rc": ""}


def gen_params(info: dict[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = info["named_endpoints"]["/generation_wrapper"]["parameters"]
    return params


@pytest.mark.parametrize(("commit", "label", "inputs"), [("c4cdd99", "V1", 50),
                                                         ("6d467e4", "V2", 72)])
def test_known_versions_match_exactly(commit: str, label: str, inputs: int) -> None:
    match = check_api(as_view_api(commit))
    assert (match.label, match.contract, match.warnings) == (label, commit, ())
    args = resolve_args(match, "/generation_wrapper", request_params(GenerationRequest(
        "a caption", "la la", seeds=[7], duration=30, audio_format="flac")))
    assert len(args) == inputs
    by_label = {p["label"]: a for p, a in zip(gen_params(as_view_api(commit)), args,
                                              strict=True)}
    assert by_label["Audio Format"] == "flac" and by_label["Seed"] == "7"
    assert by_label["Audio Duration (seconds)"] == 30.0
    assert by_label["Random Seed"] is False


def test_v2_renamed_training_and_scale_parameters_are_mapped() -> None:
    match = check_api(as_view_api("6d467e4"))
    args = resolve_args(match, "/training_wrapper", TRAIN)
    assert args == ["./t", 8, 16, 0.1, 1e-4, 100, 1, 1, 50, 3.0, 42, "./o", ""]
    names = [p["parameter_name"] for p in
             as_view_api("6d467e4")["named_endpoints"]["/training_wrapper"]["parameters"]]
    assert names[1] == "lora_rank" and names[-1] == "resume_checkpoint_dir"
    assert resolve_args(match, "/set_lora_scale", {"scale": 0.5}) == [0.5]


def test_v2_new_required_inputs_are_filled_empty() -> None:
    info = as_view_api("6d467e4")
    match = check_api(info)
    args = resolve_args(match, "/generation_wrapper", request_params(GenerationRequest("c", "l")))
    by_label = {p["label"]: a for p, a in zip(gen_params(info), args, strict=True)}
    assert by_label["source caption"] == "" and by_label["source lyrics"] == ""
    assert by_label["Music Caption"] == "c"


def test_v1_has_no_source_caption_and_gets_none_sent() -> None:
    info = as_view_api("c4cdd99")
    match = check_api(info)
    assert "source_caption" not in match.endpoints["/generation_wrapper"].by_key
    args = resolve_args(match, "/generation_wrapper", request_params(GenerationRequest("c", "l")))
    assert len(args) == len(gen_params(info))


def test_s_is_refused_as_too_old() -> None:
    with pytest.raises(UnsupportedVersion, match="too old.*training_v2") as err:
        check_api(as_view_api("f30aee4"))
    assert err.value.version == "f30aee4"


def test_an_unknown_but_usable_version_is_used_with_a_warning() -> None:
    info = as_view_api("6d467e4")
    gen_params(info).append({"parameter_name": "param_99", "label": "Shiny New Knob",
                             "parameter_has_default": True, "parameter_default": 0.5})
    match = check_api(info)
    assert match.label == "unknown" and match.contract is None
    assert match.warnings and "matches no version" in match.warnings[0]
    args = resolve_args(match, "/generation_wrapper", request_params(GenerationRequest("c", "l")))
    assert args[-1] == 0.5                      # the new input keeps the server's default


def test_every_mismatch_is_listed() -> None:
    info = as_view_api("6d467e4")
    named = info["named_endpoints"]
    del named["/stop_training"]
    for p in gen_params(info):                  # relabel two inputs acewatchd needs
        if p["label"] in ("Audio Format", "Batch Size"):
            p["label"] = p["label"] + " v3"
    named["/unload_lora"]["parameters"].append(
        {"parameter_name": "adapter_name", "label": "Adapter", "parameter_has_default": False,
         "parameter_default": None})
    with pytest.raises(ContractMismatch) as err:
        check_api(info)
    problems = err.value.problems
    assert len(problems) == 4, problems
    text = str(err.value)
    for needle in ("/stop_training: endpoint not found", "audio_format", "batch_size",
                   "/unload_lora adapter_name"):
        assert needle in text
    assert "expected an input labelled 'Audio Format'" in text


def test_labels_in_another_language_fall_back_to_positions() -> None:
    info = copy.deepcopy(as_view_api("6d467e4"))
    for p in gen_params(info):
        p["label"] = "翻訳 " + p["label"]        # the UI was started with --language ja
    match = check_api(info)
    assert match.contract == "6d467e4" and "by position" in match.warnings[0]
    args = resolve_args(match, "/generation_wrapper", request_params(GenerationRequest("c", "l")))
    assert args[0] == "c" and len(args) == 72


def test_resolve_args_refuses_an_unknown_key() -> None:
    match = check_api(as_view_api("c4cdd99"))
    with pytest.raises(ContractMismatch, match="'lora_name'"):
        resolve_args(match, "/training_wrapper", {"lora_name": "x"})
