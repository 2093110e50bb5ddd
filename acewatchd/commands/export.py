"""`acewatchd export <dataset> [--checkpoint N|final|closest] [--run NAME] [--to DIR]`."""

from __future__ import annotations

import argparse
from pathlib import Path

from acewatchd.commands.dataset_arg import dataset_arg
from acewatchd.config.load import load_config
from acewatchd.ledger.db import Ledger
from acewatchd.nightly.export import export


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    done = export(cfg, Ledger(cfg.paths.state), dataset_arg(args.dataset),
                  which=args.checkpoint or "", run_name=args.run or "",
                  to=Path(args.to).expanduser() if args.to else None)
    what = "final adapter" if done.epoch is None else f"checkpoint {done.checkpoint}"
    print(f"exported the {what} of run {done.run_name} ({', '.join(done.files)})")
    print(f"  to {done.folder}")
    print("  load it in ACE-Step's LoRA panel (or /load_lora) with that folder's path")
    return 0
