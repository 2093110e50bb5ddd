"""Calling the simulator with the raw gradio_client by each version's served names."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gradio_client import Client

from acewatchd.acestep import versions
from acewatchd.simulator.harness import SimHandle

# gradio_client starts a telemetry thread (a call to huggingface.co) unless this is set; its
# analytics_enabled=False argument alone does not turn it off.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

S, V1, V2 = "f30aee4", "c4cdd99", "6d467e4"
ALL = (S, V1, V2)
# The training parameters in their (version-independent) order, by f30aee4's names.
TRAINING_KEYS = ("tensor_dir", "r", "a", "d", "lr", "ep", "bs", "ga", "se", "sh", "sd", "od",
                 "rc")


@contextmanager
def client(sim: SimHandle, **kwargs: Any) -> Iterator[Client]:
    """A gradio_client session, closed with its worker threads (close() alone leaves the
    executors' threads to the garbage collector, which a held traceback delays)."""
    c = Client(sim.url, verbose=False, analytics_enabled=False, **kwargs)
    try:
        yield c
    finally:
        c.close()
        for name in ("executor", "helper_executor", "stream_executor"):
            pool = getattr(c, name, None)
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)


def training_args(version: str, **given: Any) -> dict[str, Any]:
    """/training_wrapper keyword arguments under the version's names, from f30aee4's."""
    names = [p["name"] for p in versions.endpoint(version, "/training_wrapper")["parameters"]]
    by_key = dict(zip(TRAINING_KEYS, names, strict=True))
    values = {"r": 8, "a": 16, "d": 0.1, "lr": 1e-4, "ep": 100, "bs": 1, "ga": 1, "se": 50,
              "sh": 3.0, "sd": 42, "od": "./lora_output/test", "rc": ""} | given
    return {by_key[k]: v for k, v in values.items()}


def tensors(root: Path, name: str, n: int = 3) -> Path:
    folder = root / "datasets" / name
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"s{i}.pt").write_bytes(b"SIMULATOR tensor stand-in")
    return folder


def statuses(outputs: list[Any]) -> list[str]:
    """The progress texts (first output) of a training stream's items."""
    return [str(o[0]) for o in outputs]


def train(c: Client, version: str, timeout: float = 60.0, **given: Any) -> list[Any]:
    """Run /training_wrapper to its end; every stream item."""
    job = c.submit(**training_args(version, **given), api_name="/training_wrapper")
    job.result(timeout=timeout)
    return list(job.outputs())
