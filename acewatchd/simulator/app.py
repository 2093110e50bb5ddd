"""``acewatchd simulate``: the ACE-Step SIMULATOR, a real Gradio app (a test double).

Endpoints are built from the packaged snapshot JSON (spec.py) with explicit api_names, so names,
parameter names, order, defaults and required-ness match ACE-Step f30aee4. The process runs
with its root as cwd (like ACE-Step launched from its repo), so server paths resolve the same.
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

from acewatchd.errors import AcewatchdError
from acewatchd.simulator import faults as faultmod
from acewatchd.simulator.context import FaultError, SimContext, logger

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
    """The Blocks app with every endpoint acewatchd uses."""
    import gradio as gr

    from acewatchd.simulator import generate, lora, training
    from acewatchd.simulator.spec import Alter, wire

    dropped, renamed, added = faultmod.api_alterations(alterations)
    handlers: dict[str, Callable[..., Any]] = {
        "/load_lora": lora.load_lora, "/unload_lora": lora.unload_lora,
        "/set_use_lora": lora.set_use_lora, "/set_lora_scale": lora.set_lora_scale,
        "/load_training_dataset": training.load_training_dataset,
        "/stop_training": training.stop_training, "/export_lora": training.export_lora,
        "/generation_wrapper": generate.generation_wrapper,
    }
    with gr.Blocks(title="ACE-Step SIMULATOR (acewatchd test double)") as demo:
        gr.Markdown("# ACE-Step SIMULATOR\nacewatchd's test double: not ACE-Step, no models; "
                    "audio is synthesised tones.")
        training_state = gr.State(value={})  # one per session, shared like ACE-Step's
        shared = {"/load_training_dataset", "/training_wrapper", "/stop_training"}
        handlers["/training_wrapper"] = training.training_wrapper
        for api, impl in handlers.items():
            alter = Alter(dropped.get(api, set()), renamed.get(api, {}), added.get(api, []))
            stream = api == "/training_wrapper"
            guard = _guard_stream if stream else _guard
            wire(api, guard(ctx, api, impl), alter, stream=stream,
                 state=training_state if api in shared else None)
    return demo


def _setup_logging() -> None:
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, force=True,
                        format="%(asctime)s SIMULATOR %(levelname)s %(name)s: %(message)s")


def _install_stub(root: Path) -> None:
    try:
        from acewatchd.simulator import stub_acestep
    except ImportError:
        return
    install = getattr(stub_acestep, "install", None)
    try:
        if install is not None:
            install(root)
    except (OSError, RuntimeError) as exc:  # e.g. root holds a real (or fake) acestep/
        logger.warning("SIMULATOR: stub acestep package not installed: %s", exc)


def _wait_while_refusing(root: Path) -> None:
    """The ``refuse`` fault at start: do not listen until it is lifted (like a slow boot)."""
    while "refuse" in faultmod.read_control(root):
        time.sleep(0.2)


def serve(root: Path, *, host: str, port: int, faults: list[str], speed: float,
          layout: str = "s") -> int:
    """Run the simulator in the foreground until the process is stopped."""
    _setup_logging()
    root = root.expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    os.chdir(root)  # ACE-Step resolves server paths against its launch directory
    _install_stub(root)
    if faults:
        try:
            faultmod.write_control(root, list(faults))
        except ValueError as exc:
            raise AcewatchdError(f"--fault: {exc}") from None
    items = faultmod.read_control(root)
    logger.info("SIMULATOR starting: root=%s port=%s speed=%s layout=%s faults=%s", root, port,
                speed, layout, items)
    _wait_while_refusing(root)
    ctx = SimContext(root, speed=float(speed), layout=layout)
    demo = build(ctx, items)
    demo.queue(max_size=20, default_concurrency_limit=1)
    demo.launch(server_name=host, server_port=int(port), allowed_paths=[str(root)],
                quiet=True, show_error=True, prevent_thread_lock=False)
    return 0
