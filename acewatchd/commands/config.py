"""`acewatchd config check [path]`: validate config.toml, every problem with its key."""

from __future__ import annotations

import argparse

from acewatchd.config.checks import render_budget_warnings
from acewatchd.config.load import find_config_path, load_config
from acewatchd.errors import ConfigError
from acewatchd.ledger.samples import render_speed_readonly


def run(args: argparse.Namespace) -> int:
    path = find_config_path(args.path or args.config)
    try:
        cfg = load_config(path)
    except ConfigError as exc:
        print(f"✗ {exc.path}")
        for problem in exc.problems:
            print(f"  - {problem}")
        return exc.exit_code
    print(f"✓ {path} is valid ({len(cfg.datasets)} dataset section(s))")
    speed = render_speed_readonly(cfg.paths.state)
    for warning in render_budget_warnings(cfg, speed.seconds_per_audio_second if speed else None):
        print(f"! {warning}")
    return 0
