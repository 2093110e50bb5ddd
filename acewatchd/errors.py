"""The one error type a user sees.

Anything raised as ``AcewatchdError`` is printed by the CLI as one line (plus exit code);
everything else is a bug and gets a traceback at debug level.
"""

from __future__ import annotations


class AcewatchdError(Exception):
    """A problem the user can act on: the message says what and where."""

    exit_code = 1


class ConfigError(AcewatchdError):
    """config.toml is invalid. ``problems`` holds every error found, each naming its key."""

    exit_code = 2

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


class AlreadyRunning(AcewatchdError):
    exit_code = 3
