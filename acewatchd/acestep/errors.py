"""Typed errors for talking to ACE-Step.

All are ``AcewatchdError`` so the CLI prints them as one line; callers tell them apart to decide
whether to reconnect (``ServerUnavailable``), give up on this ACE-Step version
(``ContractMismatch``) or mark the job failed (``JobFailed``).
"""

from __future__ import annotations

from acewatchd.errors import AcewatchdError


class AceStepError(AcewatchdError):
    """Base class for every problem reported by the ACE-Step client."""


class ServerUnavailable(AceStepError):
    """Connection refused, timed out, or the stream was lost; retrying later may work."""

    exit_code = 4


class ContractMismatch(AceStepError):
    """The server's Gradio API differs from what acewatchd needs (names the endpoint/param)."""

    exit_code = 5

    def __init__(self, message: str, *, endpoint: str = "", param: str = "",
                 problems: list[str] | None = None) -> None:
        self.endpoint = endpoint
        self.param = param
        self.problems = problems or [message]  # every mismatch found, each with its endpoint
        super().__init__(message)


class UnsupportedVersion(ContractMismatch):
    """The server is a known ACE-Step version acewatchd cannot drive (too old)."""

    def __init__(self, message: str, *, endpoint: str = "", version: str = "") -> None:
        self.version = version
        super().__init__(message, endpoint=endpoint)


class JobFailed(AceStepError):
    """ACE-Step answered, but with an error status (e.g. one starting with "❌")."""

    exit_code = 6

    def __init__(self, message: str, *, endpoint: str = "") -> None:
        self.endpoint = endpoint
        super().__init__(message)
