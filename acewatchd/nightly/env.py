"""What the nightly stages share: the environment they run in and the shapes of the stages.

``NightlyEnv`` is built once per daemon (or per `train --now`) and passed to every stage; tests
pass their own clock, power policy, client factory and stage stand-ins. The stage hooks are
Protocols so a stand-in is checked against the real signature.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from acewatchd.acestep.apicheck import ApiMatch
from acewatchd.acestep.errors import ContractMismatch, ServerUnavailable
from acewatchd.acestep.progress import TrainingProgress
from acewatchd.acestep.training_stream import TrainingOutcome
from acewatchd.config.schema import Config
from acewatchd.ledger.db import Ledger
from acewatchd.runtime import Server
from acewatchd.util.clock import Clock, SystemClock
from acewatchd.util.power import PowerPolicy, default_power

logger = logging.getLogger(__name__)


class TrainingClient(Protocol):
    """The part of AceStepClient a training session uses (one Gradio session)."""

    @property
    def api_match(self) -> ApiMatch: ...
    def connect(self) -> None: ...
    def close(self) -> None: ...
    def load_training_dataset(self, tensor_dir: str) -> str: ...
    def stop_training(self) -> str: ...
    def train(self, *, tensor_dir: str, output_dir: str, resume_from: str = "", rank: int,
              alpha: int, dropout: float, learning_rate: float, epochs: int, batch_size: int,
              grad_accum: int, save_every: int, shift: float, seed: int,
              on_progress: Callable[[TrainingProgress], None] | None = None,
              on_notice: Callable[[str], None] | None = None) -> TrainingOutcome: ...


class Prepared(Protocol):
    """What training needs from the prepare stage."""

    @property
    def tensor_dir_rel(self) -> str: ...
    @property
    def content_hash(self) -> str: ...
    @property
    def samples_ok(self) -> int: ...


class ContentHashStage(Protocol):
    def __call__(self, cfg: Config, ledger: Ledger, dataset: str) -> str: ...


class PrepareStage(Protocol):
    def __call__(self, cfg: Config, ledger: Ledger, dataset: str,
                 stop: threading.Event | None = None) -> Prepared: ...


class RenderStage(Protocol):
    def __call__(self, cfg: Config, ledger: Ledger, dataset: str, *, run_id: int | None = None,
                 checkpoint: str | None = None, server: Server | None = None) -> Path: ...


@dataclass
class Hooks:
    """The stages around training (other modules own them; tests pass stand-ins)."""

    content_hash: ContentHashStage
    prepare: PrepareStage
    render: RenderStage | None


@dataclass
class NightlyEnv:
    ledger: Ledger
    client_factory: Callable[[], TrainingClient]
    clock: Clock = field(default_factory=SystemClock)
    stop: threading.Event = field(default_factory=threading.Event)
    power: PowerPolicy = field(default_factory=default_power)
    server: Server | None = None
    hooks: Hooks | None = None    # None: the real stages (nightly.run.DEFAULT_HOOKS)
    backoff: float = 5.0          # first retry delay when ACE-Step does not answer
    backoff_max: float = 300.0
    guard_interval: float = 5.0   # how often a running training checks window/stop/battery
    # Run folder unchanged this long = an old session is gone (TensorBoard flushes ~2 min).
    quiet_seconds: float = 300.0
    max_recoveries: int = 5
    # After training, ACE-Step's decoder stays PEFT-wrapped (CONTRACT §2) until the server
    # restarts; a managed server is restarted before the next training of the same night.
    server_dirty: bool = False
    api: ApiMatch | None = None   # which ACE-Step version answered the last connect
    refusal: ContractMismatch | None = None  # an API acewatchd cannot drive: final tonight

    @classmethod
    def default(cls, ledger: Ledger, config: Callable[[], Config], **kw: Any) -> NightlyEnv:
        """The real client factory (a new AceStepClient per session); ``kw`` sets fields."""
        def factory() -> TrainingClient:
            from acewatchd.acestep.client import AceStepClient  # gradio_client: only when used

            ace = config().acestep
            return AceStepClient(ace.url, timeout=ace.timeout_seconds)

        return cls(ledger=ledger, client_factory=factory, **kw)

    @property
    def managed(self) -> bool:
        """acewatchd starts and stops the server (and so can restart it for a clean decoder)."""
        return self.server is not None and self.server.managed

    def out_of_time(self, window_end: float | None) -> bool:
        return self.stop.is_set() or (window_end is not None
                                      and self.clock.time() >= window_end)


def wait_for_server(env: NightlyEnv, until: float | None) -> bool:
    """Connect a throwaway session until one succeeds; back off; give up at ``until``."""
    delay = env.backoff
    while not env.stop.is_set():
        try:
            client = env.client_factory()
            client.connect()
            env.api = client.api_match
            client.close()
            return True
        except ServerUnavailable as exc:
            now = env.clock.time()
            if until is not None and now + delay >= until:
                logger.warning("ACE-Step still unreachable (%s); giving up for this window", exc)
                return False
            logger.warning("ACE-Step unreachable (%s); retrying in %.0fs", exc, delay)
            if env.clock.sleep(delay, env.stop):
                return False
            delay = min(delay * 2, env.backoff_max)
    return False
