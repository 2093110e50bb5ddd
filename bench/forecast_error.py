"""How far off is the night forecast? Measured on the simulator at a fixed speed.

A run is trained over several nights on the real simulator (real Gradio server, real client,
real ledger) with one-minute windows (cron 01:00, window_end 01:01, an injected wall clock that
ticks in real time and jumps to the next night). After every night but the last, the forecast
of the training time still needed (its nights' window time up to the forecast finish) is
compared with what the following nights really took. Prints one row per night and the worst
relative error. Not a test: it measures, it does not assert.

    python bench/forecast_error.py [--epochs 3000] [--save-every 250] [--speed 20]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from acewatchd.acestep import layout  # noqa: E402
from acewatchd.acestep.client import AceStepClient  # noqa: E402
from acewatchd.config.load import parse_config  # noqa: E402
from acewatchd.ledger.db import Ledger  # noqa: E402
from acewatchd.ledger.pace import newest_run_pace  # noqa: E402
from acewatchd.nightly.env import NightlyEnv  # noqa: E402
from acewatchd.nightly.forecast import forecast  # noqa: E402
from acewatchd.nightly.run import run_dataset  # noqa: E402
from acewatchd.simulator.harness import running_simulator  # noqa: E402
from acewatchd.util.power import FakePower  # noqa: E402
from tests.support.clock import FakeClock  # noqa: E402
from tests.support.fakes import FakeStages  # noqa: E402

DS = "songs"
NIGHT1 = datetime(2026, 6, 1, 1, tzinfo=UTC).timestamp()
DAY = 24 * 3600.0
WINDOW = 60.0   # cron 01:00 to window_end 01:01


def night(cfg, env, clock, start: float) -> str:
    clock.set_wall(start)
    out: dict[str, str] = {}
    worker = threading.Thread(target=lambda: out.update(o=run_dataset(
        lambda: cfg, env, DS, scheduled_for=start, window_end=start + WINDOW)))
    worker.start()
    worker.join(600)
    return out.get("o", "")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3000)
    ap.add_argument("--save-every", type=int, default=250)
    ap.add_argument("--speed", type=float, default=20.0, help="simulator speed (20 = 0.05 s/epoch)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, \
            running_simulator(Path(tmp) / "acestep", speed=args.speed) as sim:
        home = Path(tmp) / "home"
        (home / "drop" / DS).mkdir(parents=True)
        cfg = parse_config(f'[acestep]\nroot = "{sim.root}"\nurl = "{sim.url}"\n'
                           f'[train]\nepochs = {args.epochs}\nsave_every = {args.save_every}\n'
                           '[schedule]\ncron = "0 1 * * *"\nwindow_end = "01:01"\n'
                           'timezone = "UTC"\n', home / "config.toml")
        tensors = layout.tensor_dir(sim.root, DS)
        tensors.mkdir(parents=True)
        for i in range(2):
            (tensors / f"s{i}.pt").write_bytes(b"SIMULATOR tensor stand-in")
        ledger = Ledger(cfg.paths.state)
        clock = FakeClock(NIGHT1, ticking=True)
        env = NightlyEnv(ledger=ledger, client_factory=lambda: AceStepClient(
            sim.url, timeout=30, retries=0), clock=clock, power=FakePower(),
            hooks=FakeStages(hashes={DS: "c" * 16}).hooks(), backoff=0.2, backoff_max=1.0,
            guard_interval=0.02, quiet_seconds=1.0)
        predictions: list[tuple[int, float, int | None]] = []
        n, outcome = 0, ""
        while outcome != "done" and n < 12:
            outcome = night(cfg, env, clock, NIGHT1 + n * DAY)
            n += 1
            run = newest_run_pace(ledger.connect(), DS)
            assert run is not None
            after = datetime.fromtimestamp(NIGHT1 + n * DAY - 12 * 3600, UTC)  # the next noon
            fc = forecast(run, cfg.schedule_for(DS), args.save_every, after)
            if outcome != "done" and fc is not None and fc.finish and fc.nights_left:
                fire = NIGHT1 + (n + fc.nights_left - 1) * DAY   # the finishing night's start
                needed = (fc.nights_left - 1) * WINDOW + (fc.finish.timestamp() - fire)
                predictions.append((n, needed, fc.nights_left))
        run = newest_run_pace(ledger.connect(), DS)
        assert run is not None
        took = [(s.ended or 0) - (s.started or 0) for s in run.sessions]
        env.stop.set()
        ledger.close()
    print(f"{'after night':>11} {'nights left':>11} {'forecast s':>11} {'actual s':>9} "
          f"{'error':>7}")
    worst = 0.0
    for after, predicted, nights in predictions:
        actual = sum(took[after:])
        error = abs(predicted - actual) / actual
        worst = max(worst, error)
        print(f"{after:>11} {nights!s:>5} of {len(took) - after:<3} {predicted:>11.2f} "
              f"{actual:>9.2f} {error:>6.1%}")
    print(f"nights: {len(took)}; worst relative error {worst:.1%} "
          f"(epochs {args.epochs}, save_every {args.save_every}, speed {args.speed}, "
          f"{WINDOW:.0f} s windows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
