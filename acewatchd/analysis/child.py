"""``python -m acewatchd.analysis.child JOB.json OUT.json``: decode the clips and the training
songs, measure, rank, and write the report atomically. Runs as a child of the daemon so
numpy and the audio stay out of the daemon's memory.

Exit codes: 0 report written; 2 the job or an audio file is unusable (one line on stderr
says which); anything else is a crash."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from acewatchd.analysis import decode, distance, rank
from acewatchd.analysis.descriptor import DEFAULT, Descriptor
from acewatchd.analysis.schema import FORMAT, AnalysisJob, AnalysisReport, SchemaError, parse_job
from acewatchd.analysis.spectrum import Array
from acewatchd.errors import AcewatchdError
from acewatchd.util.files import atomic_write_text

logger = logging.getLogger(__name__)

MAX_SONG_SECONDS = 300.0  # a longer training song is described by its first five minutes


def analyse(job: AnalysisJob, descriptor: Descriptor = DEFAULT) -> AnalysisReport:
    t0 = time.monotonic()
    rate = decode.RATE
    threshold = job["threshold"] or distance.DEFAULT_NO_EFFECT_THRESHOLD
    songs: dict[str, Array] = {}
    for song in job["training"]:
        pcm = decode.decode(Path(song["path"]), rate=rate, max_seconds=MAX_SONG_SECONDS)
        songs[song["name"]] = descriptor.describe(pcm, rate)
    base_pcm: dict[tuple[str, int], Array] = {}
    for clip in job["clips"]:
        if clip["variant"] == "base":
            base_pcm[(clip["prompt"], clip["seed"])] = decode.decode(Path(clip["path"]), rate=rate)
    figures = []
    for clip in job["clips"]:
        key = (clip["prompt"], clip["seed"])
        pcm = base_pcm[key] if clip["variant"] == "base" else \
            decode.decode(Path(clip["path"]), rate=rate)
        effect = None
        if clip["variant"] == "lora" and key in base_pcm:
            effect = distance.clip_distance(pcm, base_pcm[key], rate)
        vector = descriptor.describe(pcm, rate)
        figures.append(rank.ClipFigures(clip, effect, distance.per_song(vector, songs,
                                                                       descriptor)))
    ranking = rank.rank(figures, threshold=threshold,
                        spread=distance.spread(songs, descriptor))
    return {"format": FORMAT, "descriptor": descriptor.name, "no_effect_threshold": threshold,
            "columns": ranking.columns, "clips": ranking.clips, "no_effect": ranking.no_effect,
            "advice": ranking.advice, "seconds": round(time.monotonic() - t0, 3)}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m acewatchd.analysis.child JOB.json OUT.json", file=sys.stderr)
        return 2
    job_path, out = Path(argv[0]), Path(argv[1])
    try:
        job = parse_job(json.loads(job_path.read_text(encoding="utf-8")), where=str(job_path))
    except (OSError, ValueError) as exc:  # SchemaError and bad JSON are ValueErrors
        kind = "" if isinstance(exc, SchemaError) else f"{job_path}: "
        print(f"{kind}{exc}", file=sys.stderr)
        return 2
    try:
        report = analyse(job)
    except AcewatchdError as exc:  # an audio file ffmpeg cannot read: named in the text
        print(str(exc), file=sys.stderr)
        return 2
    atomic_write_text(out, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    sys.exit(main(sys.argv[1:]))
