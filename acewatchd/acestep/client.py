"""Client for ACE-Step's Gradio API that follows the version it talks to.

Reads ``view_api()`` once per connection and matches it to the known versions (apicheck):
every call is built by acewatchd's keys and placed where this server has them; a server
acewatchd cannot drive is refused with every mismatch listed, a too-old one with
``UnsupportedVersion``. ``api_match`` says which version answered; ``limits`` holds the
generation bounds this server allows (they depend on its GPU). ACE-Step keeps dataset and
training state per Gradio session, so one client instance = one session = one job sequence.

Connection refused / timeouts are retried with backoff, then ``ServerUnavailable``. The same
instance keeps working once the server is back, but a restarted server has lost the session's
state (loaded dataset, training): resume training with ``resume_from``, or ``connect()`` anew.

Only gradio_client is imported here (never torch or the gradio server).
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self, TypeVar

# gradio_client ignores analytics_enabled=False unless this is set, and would phone home on
# every connect from the daemon; set before it is imported.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import httpx
from gradio_client import Client
from gradio_client.exceptions import (
    AppError,
    ValidationError,
)

from acewatchd.acestep.apicheck import ApiMatch, check_api, resolve_args
from acewatchd.acestep.errors import ContractMismatch, JobFailed, ServerUnavailable
from acewatchd.acestep.generation import (
    GenerationRequest,
    GenerationResult,
    Limits,
    collect_result,
    request_params,
)
from acewatchd.acestep.progress import TrainingProgress, is_failure, readable
from acewatchd.acestep.training_stream import TrainingOutcome, follow_training
from acewatchd.acestep.versions import VERSIONS

__all__ = ["AceStepClient", "GenerationRequest", "GenerationResult", "TrainingOutcome",
           "TrainingProgress"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Errors meaning "the server is not there (now)"; anything else from gradio_client is a bug or
# an answer. Gradio raises ValueError for an unreachable config/api-info URL.
# gradio_client cancels a job whose event stream broke (server gone mid-call).
_NETWORK = (httpx.TransportError, ConnectionError, TimeoutError, OSError,
            concurrent.futures.TimeoutError, concurrent.futures.CancelledError)


def failed_status(text: str) -> bool:
    """ACE-Step's failure rule for a status string, as every known version words it."""
    return is_failure((text or "").strip())


def read_limits(config: dict[str, Any]) -> Limits:
    """The "Audio Duration" and "Batch Size" maxima of /generation_wrapper from the app
    config (view_api does not report a Number's bounds)."""
    comps = {c.get("id"): c for c in config.get("components") or []}
    for dep in config.get("dependencies") or []:
        if dep.get("api_name") != "generation_wrapper":
            continue
        props = {str((comps.get(i) or {}).get("props", {}).get("label")):
                 (comps.get(i) or {}).get("props", {}) for i in dep.get("inputs") or []}
        duration = props.get("Audio Duration (seconds)", {}).get("maximum")
        batch = props.get("Batch Size", {}).get("maximum")
        return Limits(float(duration) if duration is not None else None,
                      int(batch) if batch is not None else None)
    return Limits()


class AceStepClient:
    """One Gradio session with ACE-Step. Use as a context manager; do not share between jobs."""

    def __init__(self, url: str, *, timeout: float = 120.0, retries: int = 3,
                 backoff: float = 1.0, download_dir: Path | None = None,
                 train_idle_timeout: float = 1800.0) -> None:
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.download_dir = download_dir
        self._own_download_dir: Path | None = None  # a temp dir we made, removed on close
        # Gap allowed between two training stream items (model loading can take minutes).
        self.train_idle_timeout = max(train_idle_timeout, timeout)
        self._client: Client | None = None
        self._match: ApiMatch | None = None
        self.limits = Limits()

    # -- connection ---------------------------------------------------------------------
    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        """Open a session and check the server's API against what acewatchd needs."""
        self.close()
        if self.download_dir is None:  # results are copied out, so downloads go with us
            self._own_download_dir = Path(tempfile.mkdtemp(prefix="acewatchd-acestep-"))
        self._client = client = self._retrying("connect", self._open)
        try:
            info = client.view_api(return_format="dict", print_info=False)
            self._match = match = check_api(info if isinstance(info, dict) else {})
        except ContractMismatch:
            self.close()
            raise
        self.limits = read_limits(getattr(client, "config", None) or {})
        for warning in match.warnings:
            logger.warning("%s: %s", self.url, warning)
        logger.info("connected to %s at %s (session %s)", match.summary, self.url,
                    client.session_hash)

    @property
    def api_match(self) -> ApiMatch:
        """Which ACE-Step version's API this server serves (after ``connect()``)."""
        if self._match is None:
            raise ServerUnavailable(f"not connected to ACE-Step at {self.url} (call connect())")
        return self._match

    def _open(self) -> Client:
        kwargs: dict[str, Any] = {"verbose": False, "analytics_enabled": False,
                                  "httpx_kwargs": {"timeout": self.timeout}}
        folder = self.download_dir or self._own_download_dir
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            kwargs["download_files"] = str(folder)
        try:
            return Client(self.url, **kwargs)
        except ValueError as exc:  # gradio_client's wording for "could not fetch config"
            raise ConnectionError(str(exc)) from exc

    def close(self) -> None:
        """End the session: stop gradio_client's heartbeat and worker threads."""
        client, self._client = self._client, None
        if client is not None:
            client.close()
            for name in ("executor", "helper_executor", "stream_executor"):
                pool = getattr(client, name, None)
                if pool is not None:
                    pool.shutdown(wait=False, cancel_futures=True)
        if self._own_download_dir is not None:
            shutil.rmtree(self._own_download_dir, ignore_errors=True)
            self._own_download_dir = None

    @property
    def session_hash(self) -> str | None:
        return self._client.session_hash if self._client else None

    def _retrying(self, what: str, fn: Callable[[], T]) -> T:
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except _NETWORK as exc:
                if attempt == self.retries:
                    raise ServerUnavailable(
                        f"ACE-Step at {self.url} is unavailable ({what}: {exc or type(exc)})"
                        f" after {self.retries + 1} attempt(s)") from exc
                logger.warning("ACE-Step %s failed (%s); retrying in %.1fs", what, exc, delay)
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    # -- calling ------------------------------------------------------------------------
    def _require(self) -> Client:
        if self._client is None:
            raise ServerUnavailable(f"not connected to ACE-Step at {self.url} (call connect())")
        return self._client

    def submit(self, api_name: str, **named: Any) -> Any:
        """Start a job on ``api_name`` with parameters given by name (server defaults else)."""
        args = resolve_args(self.api_match, api_name, named)
        return self._require().submit(*args, api_name=api_name)

    def call(self, api_name: str, **named: Any) -> Any:
        """Blocking call with timeout and retry; raises JobFailed on an error answer."""
        def once() -> Any:
            job = self.submit(api_name, **named)
            try:
                return job.result(timeout=self.timeout)
            except concurrent.futures.TimeoutError:
                job.cancel()
                raise TimeoutError(f"no answer within {self.timeout:.0f}s") from None
        try:
            return self._retrying(api_name, once)
        except (AppError, ValidationError) as exc:
            raise JobFailed(f"ACE-Step {api_name} failed: {exc}", endpoint=api_name) from exc

    def _status_call(self, api_name: str, **named: Any) -> str:
        out = self.call(api_name, **named)
        text = str(out[0] if isinstance(out, (tuple, list)) else out)
        if failed_status(text):
            raise JobFailed(f"ACE-Step {api_name}: {readable(text.strip())}", endpoint=api_name)
        return text

    # -- LoRA ---------------------------------------------------------------------------
    def load_lora(self, path: str) -> str:
        """Load one adapter. Newer versions add a *named* adapter (named after the folder),
        so anything loaded before is unloaded first; "name already in use" is then a bug."""
        if self.api_match.contract is None or VERSIONS[self.api_match.contract].named_adapters:
            try:
                self.unload_lora()
            except JobFailed as exc:  # nothing was loaded: that is the state we want
                logger.debug("unload before load: %s", exc)
        try:
            return self._status_call("/load_lora", lora_path=path)
        except JobFailed as exc:
            if "already in use" in str(exc):
                raise JobFailed(f"{exc} (acewatchd bug: it unloads before loading; report it)",
                                endpoint="/load_lora") from exc
            raise

    def unload_lora(self) -> str:
        return self._status_call("/unload_lora")

    def set_use_lora(self, on: bool) -> str:
        return self._status_call("/set_use_lora", use_lora=bool(on))

    def set_lora_scale(self, scale: float) -> str:
        return self._status_call("/set_lora_scale", scale=float(min(max(scale, 0.0), 1.0)))

    # -- training -----------------------------------------------------------------------
    def load_training_dataset(self, tensor_dir: str) -> str:
        return self._status_call("/load_training_dataset", tensor_dir=tensor_dir)

    def train(self, *, tensor_dir: str, output_dir: str, resume_from: str = "", rank: int,
              alpha: int, dropout: float, learning_rate: float, epochs: int, batch_size: int,
              grad_accum: int, save_every: int, shift: float, seed: int,
              on_progress: Callable[[TrainingProgress], None] | None = None,
              on_notice: Callable[[str], None] | None = None) -> TrainingOutcome:
        """Run /training_wrapper, streaming progress. Ints are sent as Python ints (ACE-Step
        feeds some to range()). ``on_notice`` hears status lines that need action (a resume
        ACE-Step ignored). Raises ServerUnavailable if the stream is lost, JobFailed if
        ACE-Step refused to train (its text)."""
        named = {"tensor_dir": tensor_dir, "r": int(rank), "a": int(alpha), "d": float(dropout),
                 "lr": float(learning_rate), "ep": int(epochs), "bs": int(batch_size),
                 "ga": int(grad_accum), "se": int(save_every), "sh": float(shift),
                 "sd": int(seed), "od": output_dir, "rc": resume_from or ""}
        try:
            job = self._retrying("/training_wrapper", lambda: self.submit(
                "/training_wrapper", **named))
            outcome = follow_training(job, idle_timeout=self.train_idle_timeout,
                                      on_progress=on_progress, on_notice=on_notice)
        except (AppError, ValidationError) as exc:
            raise JobFailed(f"ACE-Step /training_wrapper failed: {exc}",
                            endpoint="/training_wrapper") from exc
        except _NETWORK as exc:
            raise ServerUnavailable(f"lost the training stream from {self.url}: {exc}") from exc
        if outcome.status == "failed" and outcome.last is None:  # refused before any epoch
            raise JobFailed(f"ACE-Step /training_wrapper: {readable(outcome.text.strip()[:500])}",
                            endpoint="/training_wrapper")
        return outcome

    def stop_training(self) -> str:
        """Ask the server to stop the training this session started."""
        out = self.call("/stop_training")
        return str(out[0] if isinstance(out, (tuple, list)) else out)

    def export_lora(self, export_path: str, lora_output_dir: str) -> str:
        return self._status_call("/export_lora", export_path=export_path,
                                 lora_output_dir=lora_output_dir)

    # -- generation ---------------------------------------------------------------------
    def generate(self, req: GenerationRequest, dest_dir: Path) -> GenerationResult:
        """Render a batch; audio and metadata JSON are copied into ``dest_dir``."""
        out = self.call("/generation_wrapper", **request_params(req))
        result = collect_result(out, dest_dir)
        if failed_status(result.status) or not result.audio_files:
            raise JobFailed(f"ACE-Step /generation_wrapper: {result.status.strip() or 'no audio'}",
                            endpoint="/generation_wrapper")
        return result
