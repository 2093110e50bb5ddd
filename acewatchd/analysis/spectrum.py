"""Log-mel spectrograms: the one time-frequency picture the descriptors and the clip
distance share, so both see the same bands."""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

from acewatchd.analysis.decode import RATE

Array = npt.NDArray[np.float32]

N_FFT = 2048
HOP = 512
N_MELS = 48
F_MIN, F_MAX = 40.0, 10000.0  # below 10 kHz: an mp3 at 128k keeps it (it cuts ~16 kHz)
FLOOR_DB = 70.0  # levels more than this below the loudest cell are the same silence
CHUNK = 512  # frames per FFT batch: bounds memory on a long song


def _hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _mel_to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


@functools.lru_cache(maxsize=4)
def mel_filters(rate: int = RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> Array:
    """Triangular filters [n_mels, n_fft//2+1] on the HTK mel scale, each of unit area."""
    freqs = np.linspace(0.0, rate / 2.0, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array(F_MIN)), _hz_to_mel(np.array(F_MAX)),
                                   n_mels + 2))
    bank = np.zeros((n_mels, freqs.size))
    for i in range(n_mels):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        rise = (freqs - lo) / (mid - lo)
        fall = (hi - freqs) / (hi - mid)
        bank[i] = np.maximum(0.0, np.minimum(rise, fall))
        area = bank[i].sum()
        if area > 0:
            bank[i] /= area
    return bank.astype(np.float32)


def power_frames(pcm: Array, n_fft: int = N_FFT, hop: int = HOP) -> Array:
    """|STFT|^2 of Hann-windowed frames [frames, n_fft//2+1]; a clip shorter than one frame
    is zero-padded to one."""
    if pcm.size < n_fft:
        pcm = np.pad(pcm, (0, n_fft - pcm.size))
    count = 1 + (pcm.size - n_fft) // hop
    window = np.hanning(n_fft).astype(np.float32)
    out = np.empty((count, n_fft // 2 + 1), dtype=np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(pcm, n_fft)[::hop]
    for start in range(0, count, CHUNK):
        spec = np.fft.rfft(frames[start:start + CHUNK] * window, axis=1)
        out[start:start + CHUNK] = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
    return out


def mel_power(pcm: Array, rate: int = RATE) -> Array:
    """Mel-band power [frames, N_MELS]."""
    return power_frames(pcm) @ mel_filters(rate).T


def to_db(power: Array, reference: float | None = None) -> Array:
    """10·log10 power, floored FLOOR_DB below ``reference`` (default: this picture's loudest
    cell), so the codec's handling of near-silence does not count as a difference."""
    db = 10.0 * np.log10(np.maximum(power, 1e-20))
    top = float(db.max()) if reference is None else reference
    return np.maximum(db, top - FLOOR_DB).astype(np.float32)


def log_mel(pcm: Array, rate: int = RATE) -> Array:
    return to_db(mel_power(pcm, rate))
