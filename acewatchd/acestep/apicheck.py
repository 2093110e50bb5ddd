"""Check a server's ``view_api()`` against what acewatchd needs, and build calls by name.

A server whose endpoint lacks a parameter acewatchd sets, or has a required parameter
acewatchd does not know, is refused (``ContractMismatch`` naming endpoint and parameter).
Parameters named ``param_N`` are positional artifacts of Gradio (CONTRACT §1): their label
must match the snapshot too, or a shifted index would silently feed the wrong input.
"""

from __future__ import annotations

from typing import Any

from acewatchd.acestep.contract import NEEDED, POSITIONAL_NAME, expected_label
from acewatchd.acestep.errors import ContractMismatch

Api = dict[str, dict[str, Any]]


def _params(endpoint: dict[str, Any]) -> list[dict[str, Any]]:
    return list(endpoint.get("parameters") or [])


def check_endpoint(api_name: str, endpoint: dict[str, Any] | None) -> dict[str, Any]:
    if endpoint is None:
        raise ContractMismatch(f"ACE-Step API mismatch: endpoint {api_name} not found on the"
                               " server (unsupported ACE-Step version?)", endpoint=api_name)
    needed = NEEDED[api_name]
    by_name = {p.get("parameter_name"): p for p in _params(endpoint)}
    for name in needed:
        if name not in by_name:
            raise ContractMismatch(f"ACE-Step API mismatch: {api_name} has no parameter"
                                   f" '{name}' (acewatchd needs it)", endpoint=api_name,
                                   param=name)
        label = expected_label(api_name, name)
        got = by_name[name].get("label")
        if POSITIONAL_NAME.match(name) and label is not None and got != label:
            raise ContractMismatch(f"ACE-Step API mismatch: {api_name} parameter '{name}' is"
                                   f" labelled {got!r}, expected {label!r} (inputs shifted)",
                                   endpoint=api_name, param=name)
    for p in _params(endpoint):
        served = str(p.get("parameter_name"))
        if not p.get("parameter_has_default") and served not in needed:
            raise ContractMismatch(f"ACE-Step API mismatch: {api_name} requires parameter"
                                   f" '{served}' ({p.get('label')!r}) that acewatchd does not"
                                   " know", endpoint=api_name, param=served)
    return endpoint


def check_api(info: dict[str, Any]) -> Api:
    """Validate every endpoint acewatchd uses; returns {api_name: endpoint info}."""
    named = info.get("named_endpoints") or {}
    return {api: check_endpoint(api, named.get(api)) for api in NEEDED}


def resolve_args(api: Api, api_name: str, named: dict[str, Any]) -> list[Any]:
    """Positional arguments in the server's order: ours by name, the server's defaults else."""
    if api_name not in api:
        raise ContractMismatch(f"ACE-Step API: {api_name} was not checked at connect",
                               endpoint=api_name)
    params = _params(api[api_name])
    known = {p.get("parameter_name") for p in params}
    unknown = [k for k in named if k not in known]
    if unknown:
        raise ContractMismatch(f"ACE-Step API mismatch: {api_name} has no parameter"
                               f" '{unknown[0]}'", endpoint=api_name, param=unknown[0])
    return [named[p["parameter_name"]] if p.get("parameter_name") in named
            else p.get("parameter_default") for p in params]
