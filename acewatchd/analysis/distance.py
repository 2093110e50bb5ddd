"""Distances: a LoRA clip against its base clip (same prompt and seed, so frame by frame),
and a clip's descriptor against the training songs' (per song: a handful of songs gives no
distribution to fit)."""

from __future__ import annotations

import statistics
from collections.abc import Mapping

import numpy as np

from acewatchd.analysis import spectrum
from acewatchd.analysis.descriptor import Descriptor
from acewatchd.analysis.spectrum import Array

# Mean absolute log-mel difference (dB) under which a LoRA clip counts as its base clip.
# Calibrated in docs/analysis.md: re-encodings of one clip stay under 1.3 dB, audibly
# different audio is above 4 dB.
DEFAULT_NO_EFFECT_THRESHOLD = 2.0
# A clip "copies" a song when it is this much closer to it than the songs are to one another.
COPY_RATIO = 0.4


def clip_distance(a: Array, b: Array, rate: int) -> float:
    """Mean |dB| difference of two clips' log-mel spectrograms over their common frames,
    both floored against the louder clip's peak (a quieter clip is a difference; the
    codec's treatment of near-silence is not)."""
    pa, pb = spectrum.mel_power(a, rate), spectrum.mel_power(b, rate)
    n = min(pa.shape[0], pb.shape[0])
    top = 10.0 * float(np.log10(max(float(pa.max()), float(pb.max()), 1e-20)))
    da, db = spectrum.to_db(pa[:n], top), spectrum.to_db(pb[:n], top)
    return float(np.mean(np.abs(da - db)))


def per_song(vector: Array, songs: Mapping[str, Array], descriptor: Descriptor) -> dict[str,
                                                                                       float]:
    return {name: descriptor.distance(vector, song) for name, song in songs.items()}


def nearest(distances: Mapping[str, float]) -> tuple[str, float] | None:
    if not distances:
        return None
    name = min(distances, key=lambda k: (distances[k], k))
    return name, distances[name]


def closeness(distances: Mapping[str, float]) -> float | None:
    """How close a clip is to the training songs as a set: its mean distance to them leaving
    out the nearest one (with two or more songs), so sounding like one song (a copy, or a
    lean towards one) does not pass for sounding like the set."""
    ordered = sorted(distances.values())
    if not ordered:
        return None
    return statistics.fmean(ordered[1:] if len(ordered) > 1 else ordered)


def spread(songs: Mapping[str, Array], descriptor: Descriptor) -> float | None:
    """How far the training songs are from one another: the median pairwise distance; None
    with fewer than two songs."""
    names = sorted(songs)
    pairs = [descriptor.distance(songs[a], songs[b]) for i, a in enumerate(names)
             for b in names[i + 1:]]
    return statistics.median(pairs) if pairs else None
