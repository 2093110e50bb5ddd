"""`acewatchd prepare <dataset>`: stage, preprocess and sanitize a dataset now."""

from __future__ import annotations

import argparse

from acewatchd.commands.dataset_arg import existing_dataset
from acewatchd.config.load import load_config
from acewatchd.ledger.db import Ledger
from acewatchd.log import setup_logging
from acewatchd.nightly.prepare.prepare import prepare_dataset


def run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    dataset = existing_dataset(cfg, args.dataset)
    setup_logging(cfg.paths.logs, cfg.logging.level)
    ledger = Ledger(cfg.paths.state)
    try:
        result = prepare_dataset(cfg, ledger, dataset)
    finally:
        ledger.close()
    print(f"{result.dataset}: {result.samples_ok} sample(s) ready in {result.tensor_dir_rel}, "
          f"{result.preprocessed} preprocessed now, {len(result.excluded)} excluded")
    for source in result.excluded:
        print(f"  excluded: {source}")
    print(f"report: {result.report_path}")
    return 0
