"""``acewatchd simulate``: the ACE-Step SIMULATOR, a real Gradio app (a test double).

It impersonates one known ACE-Step version (``--version``, default the newest): the endpoints
acewatchd uses are built from that version's real signature (spec.py) with explicit
api_names, so names, labels, order, defaults, required-ness, components and returns match it,
and the handlers answer in its words. ``--tier`` sets the GPU tier's generation limits. The
process runs with its root as cwd (like ACE-Step launched from its repo), so server paths
resolve the same; the root gets the version's stand-in checkout (stub_acestep.install).
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from acewatchd.acestep import versions
from acewatchd.acestep.versions import USED_ENDPOINTS
from acewatchd.errors import AcewatchdError
from acewatchd.simulator import faults as faultmod
from acewatchd.simulator.context import (
    DEFAULT_VERSION,
    LAYOUTS,
    TIERS,
    FaultError,
    SimContext,
    logger,
)

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# gradio_client's heartbeat thread only notices Client.close() when the next heartbeat
# arrives (15 s by default); a short interval lets tests' thread-leak checks pass quickly.
os.environ.setdefault("GRADIO_HEARTBEAT_INTERVAL", "1")


def _guard(ctx: SimContext, api: str, impl: Callable[..., Any]) -> Callable[..., Any]:
    import gradio as gr

    @functools.wraps(impl)
    def run(values: dict[str, Any], state: Any) -> Any:
        try:
            ctx.enter(api)
        except FaultError as exc:
            raise gr.Error(str(exc)) from None
        return impl(ctx, values, state)
    return run


def _guard_stream(ctx: SimContext, api: str, impl: Callable[..., Any]) -> Callable[..., Any]:
    import gradio as gr

    def run(values: dict[str, Any], state: Any) -> Iterator[Any]:
        try:
            ctx.enter(api)
        except FaultError as exc:
            raise gr.Error(str(exc)) from None
        yield from impl(ctx, values, state)
    return run


def build(ctx: SimContext, alterations: list[str]) -> Any:
    """The Blocks app with every endpoint acewatchd uses (versions.USED_ENDPOINTS)."""
    import gradio as gr

    from acewatchd.simulator import generate, lora, training
    from acewatchd.simulator.spec import SESSION_STATE_INPUT, Alter, wire

    dropped, renamed, added = faultmod.api_alterations(alterations)
    handlers: dict[str, Callable[..., Any]] = {
        "/load_lora": lora.load_lora, "/unload_lora": lora.unload_lora,
        "/set_use_lora": lora.set_use_lora, "/set_lora_scale": lora.set_lora_scale,
        "/load_training_dataset": training.load_training_dataset,
        "/stop_training": training.stop_training, "/export_lora": training.export_lora,
        "/training_wrapper": training.training_wrapper,
        "/generation_wrapper": generate.generation_wrapper,
    }
    with gr.Blocks(title="ACE-Step SIMULATOR (acewatchd test double)") as demo:
        gr.Markdown(f"# ACE-Step SIMULATOR\nacewatchd's test double impersonating ACE-Step "
                    f"{ctx.version.title}, GPU tier {ctx.tier}: not ACE-Step, no models; "
                    "audio is synthesised tones.")
        training_state = gr.State(value={"is_training": False, "should_stop": False})
        for api in USED_ENDPOINTS:
            alter = Alter(dropped.get(api, set()), renamed.get(api, {}), added.get(api, []))
            stream = api == "/training_wrapper"
            guard = _guard_stream if stream else _guard
            wire(api, guard(ctx, api, handlers[api]), alter, commit=ctx.version.commit,
                 tier=ctx.tier, stream=stream,
                 state=training_state if api in SESSION_STATE_INPUT else None)
    return demo


def _setup_logging() -> None:
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, force=True,
                        format="%(asctime)s SIMULATOR %(levelname)s %(name)s: %(message)s")


def _install_stub(root: Path, version: str) -> None:
    from acewatchd.simulator import stub_acestep

    try:
        stub_acestep.install(root, version=version)
    except (OSError, RuntimeError) as exc:  # e.g. root holds a real (or fake) acestep/
        logger.warning("SIMULATOR: stub acestep package not installed: %s", exc)


def _wait_while_refusing(root: Path) -> None:
    """The ``refuse`` fault at start: do not listen until it is lifted (like a slow boot)."""
    while "refuse" in faultmod.read_control(root):
        time.sleep(0.2)


def serve(root: Path, *, host: str, port: int, faults: list[str], speed: float,
          layout: str = "nested", version: str = DEFAULT_VERSION, tier: str = "large") -> int:
    """Run the simulator in the foreground until the process is stopped."""
    _setup_logging()
    try:
        impersonated = versions.by_commit(version)
    except KeyError:
        raise AcewatchdError(f"simulate --version: unknown ACE-Step version {version!r} "
                             f"(known: {', '.join(versions.VERSIONS)})") from None
    if tier not in TIERS or layout not in LAYOUTS:
        raise AcewatchdError(f"simulate: --tier {tier!r} / --layout {layout!r} (known: "
                             f"{', '.join(TIERS)} / {', '.join(LAYOUTS)})")
    root = root.expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    os.chdir(root)  # ACE-Step resolves server paths against its launch directory
    _install_stub(root, impersonated.commit)
    if faults:
        try:
            faultmod.write_control(root, list(faults))
        except ValueError as exc:
            raise AcewatchdError(f"--fault: {exc}") from None
    items = faultmod.read_control(root)
    logger.info("SIMULATOR starting: impersonating ACE-Step %s, tier=%s, root=%s port=%s "
                "speed=%s layout=%s faults=%s", impersonated.title, tier, root, port, speed,
                layout, items)
    _wait_while_refusing(root)
    ctx = SimContext(root, speed=float(speed), layout=layout, version=impersonated, tier=tier)
    demo = build(ctx, items)
    demo.queue(max_size=20, default_concurrency_limit=1)
    demo.launch(server_name=host, server_port=int(port), allowed_paths=[str(root)],
                quiet=True, show_error=True, prevent_thread_lock=False)
    return 0
