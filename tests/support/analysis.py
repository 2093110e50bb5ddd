"""Real audio for the analysis tests and the descriptor benchmark, made by ffmpeg: a few
"styles" of clearly different timbre and rhythm, and re-encodings of one file."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

# ffmpeg lavfi sources, each one "style": tonal or noisy, steady or rhythmic, low or bright.
STYLES = {
    "drone": "aevalsrc='0.30*sin(2*PI*110*t)+0.20*sin(2*PI*220*t)+0.12*sin(2*PI*330*t)"
             "+0.06*sin(2*PI*440*t)':s=44100",
    "beat": "aevalsrc='0.8*(random(0)-0.5)*exp(-25*mod(t,0.5))"
            "+0.6*sin(2*PI*60*t)*exp(-12*mod(t,0.5))':s=44100",
    "arp": "aevalsrc='0.25*sgn(sin(2*PI*523.25*pow(2,floor(mod(t*8,4))*4/12)*t))':s=44100",
    "pad": "anoisesrc=color=pink:amplitude=0.3:sample_rate=44100,lowpass=f=1200,"
           "tremolo=f=0.5:d=0.6",
    "bells": "aevalsrc='0.4*sin(2*PI*1760*t)*exp(-6*mod(t,0.75))"
             "+0.2*sin(2*PI*2637*t)*exp(-8*mod(t,0.75))':s=44100",
}
CODECS = {
    "mp3-128k": ("mp3", ["-c:a", "libmp3lame", "-b:a", "128k"]),
    "mp3-320k": ("mp3", ["-c:a", "libmp3lame", "-b:a", "320k"]),
    "flac": ("flac", ["-c:a", "flac"]),
    "wav": ("wav", ["-c:a", "pcm_s16le"]),
}


def ffmpeg(*args: str) -> None:
    exe = shutil.which("ffmpeg") or "ffmpeg"
    subprocess.run([exe, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
                   check=True, capture_output=True, timeout=120)


def make_style(path: Path, style: str, *, seconds: float = 10.0, codec: str = "mp3-128k") -> Path:
    """``seconds`` of the style's signal, stereo, encoded as ``codec``."""
    _, args = CODECS[codec]
    path.parent.mkdir(parents=True, exist_ok=True)
    ffmpeg("-f", "lavfi", "-i", STYLES[style], "-t", str(seconds), "-ac", "2", *args, str(path))
    return path


def reencode(source: Path, path: Path, codec: str) -> Path:
    _, args = CODECS[codec]
    path.parent.mkdir(parents=True, exist_ok=True)
    ffmpeg("-i", str(source), *args, str(path))
    return path
