"""``acewatchd sanitize DIR [--report FILE]``: the NaN/Inf check as a command of its own.

It runs in its own process (the CLI, or the pipeline spawning ``python -m acewatchd sanitize``),
which is what lets it import torch: the daemon never does. Exit 0 when every file is clean or
repaired, 1 when some file is broken or malformed (the report says which); DIR not being a
folder is an ordinary acewatchd error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from acewatchd.errors import AcewatchdError
from acewatchd.util.files import atomic_write_text

logger = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    folder = Path(args.dir).expanduser().absolute()
    if not folder.is_dir():
        raise AcewatchdError(f"{folder}: not a folder of .pt files")
    from acewatchd.nightly.prepare.sanitize import sanitize_dir  # torch, only now

    report = sanitize_dir(folder)
    if args.report:
        atomic_write_text(Path(args.report), json.dumps(report, indent=2, ensure_ascii=False))
    for item in report["files"]:
        detail = item["reason"] or (f"{item['values']} value(s) zeroed in "
                                    f"{', '.join(item['keys'])}" if item["keys"] else "")
        print(f"{item['status']:9} {item['file']}" + (f"  ({detail})" if detail else ""))
    counts = ", ".join(f"{n} {status}" for status, n in sorted(report["summary"].items()))
    print(f"{len(report['files'])} file(s): {counts or 'none'}")
    logger.info("sanitize report", extra={"dir": str(folder), "summary": report["summary"]})
    bad = report["summary"].get("broken", 0) + report["summary"].get("malformed", 0)
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m acewatchd.commands.sanitize")
    parser.add_argument("dir")
    parser.add_argument("--report")
    try:
        return run(parser.parse_args(argv))
    except AcewatchdError as exc:
        print(f"acewatchd: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
