"""`acewatchd render <dataset> [--checkpoint N|folder]`: render samples with a LoRA now."""

from __future__ import annotations

import argparse
import logging

from acewatchd.commands.dataset_arg import dataset_arg
from acewatchd.config.load import load_config
from acewatchd.ledger.db import Ledger
from acewatchd.log import setup_logging
from acewatchd.nightly.render.session import render_run
from acewatchd.outbox.notify import build_notifier
from acewatchd.util.locks import JobLock

logger = logging.getLogger(__name__)


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    dataset = dataset_arg(args.dataset)  # its drop folder may be gone; its LoRA is not
    setup_logging(cfg.paths.logs, cfg.logging.level, console=True)
    if cfg.acestep.manage_server:
        logger.warning("acestep.manage_server is on, but `acewatchd render` does not restart "
                       "the server; if it trained since its last start, restart it first")
    ledger = Ledger(cfg.paths.state)
    # The training job lock: never load a LoRA while ACE-Step trains (its decoder is wrapped).
    with JobLock(cfg.paths.state):
        folder = render_run(cfg, ledger, dataset, checkpoint=args.checkpoint,
                            notifier=build_notifier(cfg))
    print(f"samples: {folder / 'index.html'}")
    return 0
