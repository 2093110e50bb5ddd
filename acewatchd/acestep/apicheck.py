"""Match a server's ``view_api()`` to what acewatchd needs, and build calls by key.

First the served signature of the endpoints acewatchd uses is compared with every known
version's (names, labels, required flags): an exact match names the version. A version
acewatchd refuses (S: no training_v2) stops here with ``UnsupportedVersion``. Otherwise each
of acewatchd's keys is looked up by its names or, for positional ``param_N`` inputs, its
labels; a server where all of them are found, and whose every required input is one acewatchd
knows, is used even if it is no known version (with a warning naming it). A server where any
is missing is refused with **every** mismatch listed, not only the first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from acewatchd.acestep.contract import POSITIONAL_NAME, Key, needed
from acewatchd.acestep.errors import ContractMismatch, UnsupportedVersion
from acewatchd.acestep.versions import UPDATE_HINT, VERSIONS, AceStepVersion, endpoint

Served = dict[str, Any]          # one parameter as gradio_client's view_api reports it


@dataclass(frozen=True)
class Endpoint:
    """A served endpoint: its parameters in order and where each of acewatchd's keys is."""

    api_name: str
    params: tuple[Served, ...]
    by_key: dict[str, str]       # acewatchd key -> served parameter name


@dataclass(frozen=True)
class ApiMatch:
    label: str                   # "V1", "V2", … or "unknown"
    contract: str | None         # the known commit whose signature matched exactly
    warnings: tuple[str, ...] = ()
    endpoints: dict[str, Endpoint] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        if self.contract is None:
            return "an ACE-Step version acewatchd was not tested with (its API is usable)"
        v = VERSIONS[self.contract]
        return f"ACE-Step {v.label} ({v.commit}, {v.date})"


def _served(info: dict[str, Any], api_name: str) -> list[Served] | None:
    ep = (info.get("named_endpoints") or {}).get(api_name)
    return None if ep is None else list(ep.get("parameters") or [])


def _shape(params: list[Served]) -> list[tuple[str, str, bool]]:
    return [(str(p.get("parameter_name")), str(p.get("label")),
             not p.get("parameter_has_default")) for p in params]


def exact_version(info: dict[str, Any]) -> AceStepVersion | None:
    """The known version whose signature of every used endpoint the server serves exactly."""
    for v in VERSIONS.values():
        ok = True
        for api_name in needed():
            served = _served(info, api_name)
            spec = [(p["name"], p["label"], bool(p["required"]))
                    for p in endpoint(v.commit, api_name)["parameters"]]
            if served is None or _shape(served) != spec:
                ok = False
                break
        if ok:
            return v
    return None


def _find(key: Key, params: list[Served]) -> tuple[str | None, str]:
    """The served name of ``key`` and, when it cannot be told, why."""
    if key.labels:
        hits = [p for p in params if POSITIONAL_NAME.match(str(p.get("parameter_name")))
                and p.get("label") in key.labels]
        what = f"an input labelled {' or '.join(repr(label) for label in key.labels)}"
    else:
        hits = [p for p in params if p.get("parameter_name") in (key.names or (key.key,))]
        what = f"parameter {' or '.join(repr(n) for n in key.names or (key.key,))}"
    if len(hits) == 1:
        return str(hits[0]["parameter_name"]), ""
    found = ", ".join(f"{p.get('parameter_name')} {p.get('label')!r}" for p in hits)
    return None, (f"expected {what}, found " + (f"{len(hits)}: {found}" if hits else "none"))


def map_endpoint(api_name: str, params: list[Served] | None) -> tuple[Endpoint | None, list[str]]:
    """The endpoint's key map and the mismatches (each names endpoint, parameter, expected
    and found)."""
    if params is None:
        return None, [f"{api_name}: endpoint not found"]
    problems: list[str] = []
    by_key: dict[str, str] = {}
    for key in needed()[api_name]:
        name, why = _find(key, params)
        if name is not None:
            by_key[key.key] = name
        elif key.needed:
            problems.append(f"{api_name} {key.key}: {why}")
    mapped = set(by_key.values())
    for p in params:
        served = str(p.get("parameter_name"))
        if not p.get("parameter_has_default") and served not in mapped:
            problems.append(f"{api_name} {served}: required input {p.get('label')!r} that "
                            "acewatchd does not know (expected no new required input)")
    return Endpoint(api_name, tuple(params), by_key), problems


def check_api(info: dict[str, Any]) -> ApiMatch:
    """Which version is serving, and how to call it; raises if acewatchd cannot use it."""
    known = exact_version(info)
    if known is not None and not known.supported:
        raise UnsupportedVersion(
            f"ACE-Step {known.label} ({known.commit}, {known.date}) is too old for acewatchd: "
            f"it has no acestep.training_v2, so it cannot preprocess; {UPDATE_HINT}",
            endpoint="", version=known.commit)
    endpoints: dict[str, Endpoint] = {}
    problems: list[str] = []
    for api_name in needed():
        mapped, found = map_endpoint(api_name, _served(info, api_name))
        problems += found
        if mapped is not None:
            endpoints[api_name] = mapped
    if problems:
        relabelled = _by_position(info)
        if relabelled is not None:  # e.g. a UI started in another language: labels translated
            return relabelled
        raise ContractMismatch(
            f"ACE-Step's API does not match what acewatchd needs ({len(problems)} "
            "mismatch(es)): " + "; ".join(problems) + f". Supported: {_supported()}.",
            endpoint=problems[0].split(" ", 1)[0], problems=problems)
    if known is not None:
        return ApiMatch(known.label, known.commit, (), endpoints)
    warning = (f"ACE-Step's API matches no version acewatchd was tested with ({_supported()}); "
               "every input acewatchd needs was found, so it is used")
    return ApiMatch("unknown", None, (warning,), endpoints)


def _by_position(info: dict[str, Any]) -> ApiMatch | None:
    """Labels did not match, but names, components and required flags are exactly a known
    version's: map by that version's positions (CONTRACT §9c: labels follow the UI language)."""
    for v in VERSIONS.values():
        relabelled: dict[str, Any] = {"named_endpoints": {}}
        for api_name in needed():
            served = _served(info, api_name)
            spec = endpoint(v.commit, api_name)["parameters"]
            if served is None or [(p.get("parameter_name"), p.get("component"),
                                   not p.get("parameter_has_default")) for p in served] != \
                    [(p["name"], p["component"], bool(p["required"])) for p in spec]:
                break
            relabelled["named_endpoints"][api_name] = {"parameters": [
                {**p, "label": s["label"]} for p, s in zip(served, spec, strict=True)]}
        else:
            if not v.supported:
                return None  # check_api's exact match refuses it; here it is only a shape
            match = check_api(relabelled)
            warning = (f"ACE-Step's input labels are not the English ones of {v.label} "
                       f"({v.commit}); its inputs were matched by position (start ACE-Step "
                       "with --language en to avoid this)")
            return ApiMatch(match.label, match.contract, (warning,), match.endpoints)
    return None


def _supported() -> str:
    return ", ".join(f"{v.label} {v.commit} ({v.date})" for v in VERSIONS.values()
                     if v.supported)


def resolve_args(match: ApiMatch, api_name: str, named: dict[str, Any]) -> list[Any]:
    """Positional arguments in the server's order: ours by key, the server's defaults else.
    A key this server does not have (a filled input of another version) is dropped."""
    ep = match.endpoints.get(api_name)
    if ep is None:
        raise ContractMismatch(f"ACE-Step API: {api_name} was not checked at connect",
                               endpoint=api_name)
    known = {k.key for k in needed()[api_name]}
    unknown = sorted(set(named) - known)
    if unknown:
        raise ContractMismatch(f"acewatchd bug: {api_name} has no key {unknown[0]!r}",
                               endpoint=api_name, param=unknown[0])
    by_name = {served: named[key] for key, served in ep.by_key.items() if key in named}
    return [by_name[p["parameter_name"]] if p.get("parameter_name") in by_name
            else p.get("parameter_default") for p in ep.params]
