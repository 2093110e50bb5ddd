"""What a piece of audio sounds like, as a vector, and how far two such vectors are.

``Descriptor`` is the seam a learned embedding (e.g. CLAP, when a user installs it) plugs
into; the default ``LogMelStats`` needs no model weights. It summarises a whole song, not
its moments, so clips of a different length than the songs compare fairly: the spectral
shape (mean log-mel per band, loudness removed), how much each band moves (its spread over
time), spectral contrast (peaks against valleys: tonal against noisy), chroma (which pitch
classes sound) and the onset rate (how busy the rhythm is)."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from acewatchd.analysis import spectrum
from acewatchd.analysis.spectrum import Array

# The vector's layout: group -> (start, stop); each group is compared in its own units and
# the groups are weighted so that none dominates (see distance()).
N_CONTRAST = 6
CONTRAST_FLOOR_DB = 50.0
GROUPS = {"shape": (0, spectrum.N_MELS), "motion": (spectrum.N_MELS, 2 * spectrum.N_MELS),
          "contrast": (2 * spectrum.N_MELS, 2 * spectrum.N_MELS + N_CONTRAST),
          "chroma": (2 * spectrum.N_MELS + N_CONTRAST, 2 * spectrum.N_MELS + N_CONTRAST + 12),
          "onsets": (2 * spectrum.N_MELS + N_CONTRAST + 12, 2 * spectrum.N_MELS + N_CONTRAST
                     + 13)}
# dB for shape, motion and contrast; chroma shares (0..1) scaled to points out of 100;
# onsets in halvings/doublings of the rate, 6 "dB" each.
WEIGHTS = {"shape": 1.0, "motion": 1.0, "contrast": 1.0, "chroma": 100.0, "onsets": 6.0}


class Descriptor(Protocol):
    """A model of "what it sounds like": ``describe`` maps mono PCM to a vector, ``distance``
    compares two vectors (0 = the same, larger = further; the scale is the descriptor's own,
    and the report names the descriptor that made its figures)."""

    name: str

    def describe(self, pcm: Array, rate: int) -> Array: ...

    def distance(self, a: Array, b: Array) -> float: ...


def _contrast(power: Array, rate: int) -> Array:
    """Mean peak-minus-valley level (dB) in octave bands up to 6.4 kHz, per frame then over
    time: high for tones and chords, low for noise."""
    freqs = np.linspace(0.0, rate / 2.0, power.shape[1])
    highs = [200.0 * 2.0 ** k for k in range(N_CONTRAST)]  # 200 Hz .. 6.4 kHz
    lows = [0.0, *highs[:-1]]
    out = np.zeros(N_CONTRAST, dtype=np.float32)
    # floored well above 16-bit and codec noise: a pure tone's valleys are "silence", not
    # whatever the encoder left there
    db = spectrum.to_db(power)
    db = np.maximum(db, float(db.max()) - CONTRAST_FLOOR_DB)
    for k, (lo, hi) in enumerate(zip(lows, highs, strict=True)):
        band = db[:, (freqs >= lo) & (freqs < hi)]
        if band.shape[1] < 3:
            continue
        ordered = np.sort(band, axis=1)
        n = max(1, band.shape[1] // 5)
        out[k] = float(np.mean(ordered[:, -n:].mean(axis=1) - ordered[:, :n].mean(axis=1)))
    return out


def _chroma(power: Array, rate: int) -> Array:
    """Share of the energy between 65 Hz and 5 kHz in each of the 12 pitch classes."""
    freqs = np.linspace(0.0, rate / 2.0, power.shape[1])
    keep = (freqs >= 65.0) & (freqs <= 5000.0)
    classes = np.round(12.0 * np.log2(freqs[keep] / 440.0)).astype(int) % 12
    energy = power[:, keep].sum(axis=0)
    chroma = np.bincount(classes, weights=energy, minlength=12).astype(np.float32)
    total = float(chroma.sum())
    return chroma / total if total > 0 else np.full(12, 1.0 / 12, dtype=np.float32)


def _onset_rate(mel_db: Array, rate: int) -> float:
    """Onsets per second: peaks of the positive spectral flux that stand out of its spread."""
    if mel_db.shape[0] < 3:
        return 0.0
    flux = np.maximum(np.diff(mel_db, axis=0), 0.0).mean(axis=1)
    threshold = float(flux.mean() + 1.5 * flux.std()) + 0.5  # 0.5 dB: ignore codec flutter
    peaks = (flux[1:-1] > threshold) & (flux[1:-1] >= flux[:-2]) & (flux[1:-1] > flux[2:])
    seconds = float(mel_db.shape[0] * spectrum.HOP / rate)
    return float(np.count_nonzero(peaks)) / max(seconds, 1e-6)


class LogMelStats:
    """The default descriptor: statistics of the log-mel spectrogram and a few classic
    features; cheap (one STFT) and needs nothing beyond numpy."""

    name = "logmel-stats-v1"

    def describe(self, pcm: Array, rate: int) -> Array:
        power = spectrum.power_frames(pcm)
        mel_db = spectrum.to_db(power @ spectrum.mel_filters(rate).T)
        means = mel_db.mean(axis=0)
        shape = means - means.mean()  # loudness removed: a quieter copy is the same timbre
        motion = mel_db.std(axis=0)
        onsets = np.array([np.log2(_onset_rate(mel_db, rate) + 0.25)], dtype=np.float32)
        return np.concatenate([shape, motion, _contrast(power, rate), _chroma(power, rate),
                               onsets]).astype(np.float32)

    def distance(self, a: Array, b: Array) -> float:
        """The mean of the groups' RMS differences, each in "dB-like" units (WEIGHTS)."""
        parts = []
        for group, (start, stop) in GROUPS.items():
            diff = (a[start:stop] - b[start:stop]) * WEIGHTS[group]
            parts.append(float(np.sqrt(np.mean(diff ** 2))))
        return float(np.mean(parts))


DEFAULT: Descriptor = LogMelStats()
