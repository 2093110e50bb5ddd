"""Benchmark: what the audio analysis costs, as ratios to decoding the same audio with ffmpeg.

Makes real audio with ffmpeg (tests/support/analysis.py's styles): clips of 10 s (what a
render writes by default is longer; the figures are per second of audio too) and training
songs of 180 s, all mp3 at 128k. For each file, in the same run and alternating order:
  * decode: ``analysis.decode.decode`` (ffmpeg to mono float PCM at 22.05 kHz, a child process);
  * descriptor: ``LogMelStats.describe`` on that PCM;
  * clip distance (clips only): ``distance.clip_distance`` against another clip.
Reported: medians over the rounds, and descriptor / decode. Then one whole analysis job
(the child process end to end, imports included) for a grid of clips over the songs.

``--calibrate`` prints the no-effect calibration table of docs/analysis.md instead.

Usage:  python bench/descriptor_bench.py [--rounds 5] [--clips 5] [--songs 3] [--calibrate]
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402

from acewatchd.analysis import decode, distance  # noqa: E402
from acewatchd.analysis.descriptor import DEFAULT  # noqa: E402
from acewatchd.simulator import generate, style  # noqa: E402
from tests.support.analysis import CODECS, STYLES, make_style, reencode  # noqa: E402

RATE = decode.RATE
STYLE_NAMES = list(STYLES)


def _timed(fn, *args):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def measure(files: list[Path], rounds: int, pair: bool) -> dict[str, float]:
    dec: list[float] = []
    desc: list[float] = []
    dist: list[float] = []
    for r in range(rounds):
        order = files if r % 2 == 0 else list(reversed(files))
        for i, path in enumerate(order):
            pcm, t_dec = _timed(decode.decode, path)
            _, t_desc = _timed(DEFAULT.describe, pcm, RATE)
            dec.append(t_dec)
            desc.append(t_desc)
            if pair:
                other = decode.decode(order[(i + 1) % len(order)])
                _, t_dist = _timed(distance.clip_distance, pcm, other, RATE)
                dist.append(t_dist)
    out = {"decode_s": statistics.median(dec), "descriptor_s": statistics.median(desc)}
    if dist:
        out["distance_s"] = statistics.median(dist)
    return out


def whole_job(folder: Path, songs: list[Path], clips: list[Path]) -> tuple[float, float]:
    """(wall seconds of the child, the seconds it reports) for a grid over ``clips``: the
    first clip is base, the others LoRA columns of one prompt and seed."""
    job = {"training": [{"name": s.name, "path": str(s)} for s in songs], "threshold": None,
           "clips": [{"id": f"c{i}", "prompt": "p", "seed": 1,
                      "variant": "base" if i == 0 else "lora",
                      "checkpoint": "base" if i == 0 else f"epoch_{i}",
                      "epoch": None if i == 0 else i, "scale": None if i == 0 else 1.0,
                      "path": str(c)} for i, c in enumerate(clips)]}
    (folder / "job.json").write_text(json.dumps(job), encoding="utf-8")
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "acewatchd.analysis.child", str(folder / "job.json"),
                    str(folder / "analysis.json")], check=True, cwd=HERE.parent)
    wall = time.perf_counter() - t0
    return wall, json.loads((folder / "analysis.json").read_text())["seconds"]


def bench(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(dir=HERE.parent) as tmp:
        folder = Path(tmp)
        clips = [make_style(folder / f"clip{i}.mp3", STYLE_NAMES[i % len(STYLE_NAMES)],
                            seconds=10) for i in range(args.clips)]
        songs = [make_style(folder / f"song{i}.mp3", STYLE_NAMES[i % len(STYLE_NAMES)],
                            seconds=180) for i in range(args.songs)]
        per_clip = measure(clips, args.rounds, pair=True)
        per_song = measure(songs, args.rounds, pair=False)
        grid = [clips[i % len(clips)] for i in range(args.grid)]
        wall, reported = whole_job(folder, songs, grid)
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()} "
          f"{platform.system()}; {args.rounds} rounds; medians")
    print("| audio | decode s | descriptor s | descriptor / decode | clip distance s "
          "| distance / decode |")
    print("|---|---|---|---|---|---|")
    for label, m in ((f"clip, 10 s (x{args.clips})", per_clip),
                     (f"training song, 180 s (x{args.songs})", per_song)):
        dist = m.get("distance_s")
        dist_cells = "| |" if dist is None else f"| {dist:.3f} | {dist / m['decode_s']:.2f}x |"
        print(f"| {label} | {m['decode_s']:.3f} | {m['descriptor_s']:.3f} | "
              f"{m['descriptor_s'] / m['decode_s']:.2f}x {dist_cells}")
    print(f"\nwhole child, {args.songs} songs + {args.grid} clips: {wall:.2f} s wall "
          f"(imports included), {reported:.2f} s of work")


def calibrate() -> None:
    with tempfile.TemporaryDirectory(dir=HERE.parent) as tmp:
        folder = Path(tmp)
        pcm: dict[str, np.ndarray] = {}
        print("| style | " + " | ".join(CODECS) + " |")
        print("|---|" + "---|" * len(CODECS))
        for name in STYLES:
            source = make_style(folder / f"{name}.flac", name, codec="flac")
            pcm[name] = decode.decode(source)
            row = []
            for codec, (ext, _) in CODECS.items():
                again = decode.decode(reencode(source, folder / f"{name}-{codec}.{ext}", codec))
                row.append(f"{distance.clip_distance(again, pcm[name], RATE):.2f}")
            print(f"| {name} | " + " | ".join(row) + " |")
        pairs = {f"{a}/{b}": distance.clip_distance(pcm[a], pcm[b], RATE)
                 for a, b in itertools.combinations(STYLES, 2)}
        low = min(pairs, key=pairs.__getitem__)
        high = max(pairs, key=pairs.__getitem__)
        print(f"\ndifferent styles: {len(pairs)} pairs, {pairs[low]:.2f} dB ({low}) to "
              f"{pairs[high]:.2f} dB ({high})")
        quieter = distance.clip_distance(pcm["arp"] * np.float32(0.5), pcm["arp"], RATE)
        print(f"the same clip 6 dB quieter: {quieter:.2f} dB")
        songs = tuple(str(make_style(folder / f"song-{s}.mp3", s, seconds=8))
                      for s in ("drone", "beat", "arp"))
        base = folder / "base.mp3"
        generate.synth(base, seconds=10, freq=generate.pitch("calm", 1, "", 0.0), fmt="mp3")
        base_pcm = decode.decode(base)
        print("\n| simulator LoRA clip (12 epochs) | distance to its base clip dB |")
        print("|---|---|")
        for epoch, scale in ((1, 0.1), (1, 0.5), (4, 0.5), (8, 1.0), (12, 1.0), (12, 0.0)):
            learned = style.Training(songs, epoch, 12, "cd" * 32)
            clip = folder / f"e{epoch}-x{scale}.mp3"
            generate.synth(clip, seconds=10, fmt="mp3", blend=style.mix(learned, scale),
                           freq=generate.pitch("calm", 1, learned.run, scale))
            d = distance.clip_distance(decode.decode(clip), base_pcm, RATE)
            print(f"| epoch {epoch}, scale {scale:g} | {d:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clips", type=int, default=5)
    parser.add_argument("--songs", type=int, default=3)
    parser.add_argument("--grid", type=int, default=16, help="clips in the whole-job run")
    parser.add_argument("--calibrate", action="store_true")
    args = parser.parse_args()
    if args.calibrate:
        calibrate()
    else:
        bench(args)


if __name__ == "__main__":
    main()
