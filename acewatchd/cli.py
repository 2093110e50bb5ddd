"""Command line: argument parsing and the single error boundary.

Each subcommand names a ``module:function`` that takes the parsed arguments and returns an exit
code; modules are imported only when their command runs, so ``acewatchd status`` stays quick
and the daemon never pulls in what it does not use (torch above all). An ``AcewatchdError`` is
printed as one line with its exit code; anything else is a bug and gets a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from acewatchd import __version__
from acewatchd.errors import AcewatchdError

logger = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], int]
if TYPE_CHECKING:  # generic only to type checkers
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def _add_run(sub: Subparsers) -> None:
    p = sub.add_parser("run", help="run the daemon in the foreground")
    p.set_defaults(handler="acewatchd.commands.run:run")
    p = sub.add_parser("scan", help="one reconciliation pass (settle, validate, stubs), then exit")
    p.set_defaults(handler="acewatchd.commands.scan:run")
    p = sub.add_parser("status", help="where every dataset stands and what runs next")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler="acewatchd.commands.status:run")


def _add_config(sub: Subparsers) -> None:
    p = sub.add_parser("config", help="configuration tools")
    csub = p.add_subparsers(dest="config_cmd", required=True)
    c = csub.add_parser("check", help="validate config.toml; non-zero exit on error")
    c.add_argument("path", nargs="?", help="config file (default: --config / env / ./config.toml)")
    c.set_defaults(handler="acewatchd.commands.config:run")


def _add_acestep(sub: Subparsers) -> None:
    p = sub.add_parser("doctor", help="check this machine, ACE-Step and the config")
    p.set_defaults(handler="acewatchd.commands.doctor:run")
    p = sub.add_parser("simulate", help="run the ACE-Step simulator (a test double)")
    p.add_argument("--root", required=True, help="folder the simulator treats as ACE-Step's root")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--fault", action="append", default=[], metavar="NAME[=VALUE]",
                   help="fault switch for tests (see acewatchd/simulator/faults.py)")
    p.add_argument("--speed", type=float, default=1.0,
                   help="training speed multiplier (higher = faster)")
    p.add_argument("--version", dest="acestep_version", default="6d467e4",
                   choices=["6d467e4", "c4cdd99", "f30aee4"],
                   help="the ACE-Step commit to impersonate (its API, texts and layout)")
    p.add_argument("--tier", choices=["large", "small"], default="large",
                   help="GPU tier: large = generation up to 600 s and batch 8; small (no GPU or"
                        " <= 6 GB) = 180 s and batch 1")
    p.add_argument("--layout", choices=["nested", "flat"], default="nested",
                   help="trainer layout: nested = adapters in adapter/ (checkpoints/<name>/"
                        "adapter, final/adapter); flat = adapters straight in those folders")
    p.set_defaults(handler="acewatchd.commands.simulate:run")


def _add_pipeline(sub: Subparsers) -> None:
    p = sub.add_parser("prepare", help="stage, preprocess and sanitize a dataset now")
    p.add_argument("dataset")
    p.set_defaults(handler="acewatchd.commands.prepare:run")
    p = sub.add_parser("sanitize", help="repair NaN/Inf in preprocessed tensors (.pt)")
    p.add_argument("dir", help="folder of .pt files")
    p.add_argument("--report", help="write the JSON report here")
    p.set_defaults(handler="acewatchd.commands.sanitize:run")
    p = sub.add_parser("train", help="train a dataset's LoRA")
    p.add_argument("dataset")
    p.add_argument("--now", action="store_true", help="start immediately (not at the schedule)")
    p.set_defaults(handler="acewatchd.commands.train:run")
    p = sub.add_parser("render", help="render sample clips with a dataset's latest LoRA")
    p.add_argument("dataset")
    p.add_argument("--checkpoint", help="an epoch number or checkpoint folder instead of final")
    p.set_defaults(handler="acewatchd.commands.render:run")
    p = sub.add_parser("export", help="copy a trained adapter out of ACE-Step's folder")
    p.add_argument("dataset")
    p.add_argument("--checkpoint", help="an epoch number, final, or closest (the one the "
                                        "morning page ranks closest to your songs); default: "
                                        "final, else the newest checkpoint")
    p.add_argument("--run", help="a training run name (default: the newest)")
    p.add_argument("--to", help="destination folder (default: <outbox>/exports)")
    p.set_defaults(handler="acewatchd.commands.export:run")


def _add_service(sub: Subparsers) -> None:
    p = sub.add_parser("service", help="install/manage the launchd agent (systemd user unit on"
                                       " Linux)")
    p.add_argument("action", choices=["install", "uninstall", "status", "restart", "logs"])
    p.add_argument("--dry-run", action="store_true", help="print what would be written and run")
    p.set_defaults(handler="acewatchd.commands.service:run")
    p = sub.add_parser("demo", help="create a demo home and run the whole chain on the simulator")
    p.add_argument("--home", default="demo-home", help="folder for the demo (default ./demo-home)")
    p.add_argument("--songs", type=int, default=4)
    p.add_argument("--keep-running", action="store_true", help="leave the daemon running")
    p.add_argument("--timeout", type=float, default=900.0,
                   help="give up (non-zero exit) if the chain is not done after this many seconds")
    p.set_defaults(handler="acewatchd.commands.demo:run")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="acewatchd", description=(
        "Watch drop folders of songs, write caption/lyrics stubs, and train ACE-Step LoRAs "
        "overnight."))
    parser.add_argument("--config", help="config.toml (default: $ACEWATCHD_CONFIG, then "
                                         "./config.toml)")
    parser.add_argument("--debug", action="store_true", help="tracebacks and debug logs")
    parser.add_argument("--version", action="version", version=f"acewatchd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_run, _add_config, _add_acestep, _add_pipeline, _add_service):
        add(sub)
    return parser


def resolve(spec: str) -> Handler:
    module, _, func = spec.partition(":")
    handler: Handler = getattr(importlib.import_module(module), func)
    return handler


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return resolve(args.handler)(args)
    except AcewatchdError as exc:
        logger.debug("user error", exc_info=True)
        print(f"acewatchd: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception:  # the one place a bug becomes a message instead of a crash dump
        if args.debug:
            raise
        logger.exception("unexpected error")
        print("acewatchd: unexpected error (run with --debug for the traceback)",
              file=sys.stderr)
        return 70


if __name__ == "__main__":
    raise SystemExit(main())
