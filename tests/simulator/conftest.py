"""One running simulator per impersonated ACE-Step version (and tier) for the whole package:
a start costs a Gradio import."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from acewatchd.simulator.harness import SimHandle, running_simulator


@pytest.fixture(scope="package")
def sim_for(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., SimHandle]]:
    """``sim_for(version, tier="large")``: that version's simulator, started on first use and
    killed when the package's tests are done."""
    running: dict[tuple[str, str], SimHandle] = {}
    with ExitStack() as stack:
        def get(version: str, tier: str = "large") -> SimHandle:
            if (version, tier) not in running:
                root = tmp_path_factory.mktemp(f"ace-{version}-{tier}")
                running[(version, tier)] = stack.enter_context(
                    running_simulator(root, version=version, tier=tier, speed=50.0))
            return running[(version, tier)]

        yield get
