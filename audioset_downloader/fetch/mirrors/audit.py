"""How exact a mirror's copies are: a copy measured against the same window fetched from YouTube.

Nobody publishes how these copies were cut. Both clips are decoded to mono at AUDIT_RATE, and
their cross-correlation over +-MAX_LAG_S gives the copy's offset (how much later in the video the
copy starts than the window) and its agreement (the correlation at that offset, 1.0 for the same
samples); their RMS levels give the level difference. A mirror whose copies are off by more than
MAX_OFFSET_MS in most of its sample is not holding the windows: the run drops it, with one warning.
"""

from __future__ import annotations

import math
import subprocess
from dataclasses import dataclass
from pathlib import Path

from audioset_downloader.errors import ConfigError
from audioset_downloader.fetch.mirrors.access import MIRRORS_EXTRA

AUDIT_RATE = 16000
MAX_LAG_S = 1.0
MAX_OFFSET_MS = 50.0


@dataclass(frozen=True)
class Agreement:
    ytid: str
    offset_ms: float  # > 0: the copy starts this much later in the video than the window
    correlation: float  # at that offset, from -1 to 1
    level_db: float  # the copy's RMS level less YouTube's

    @property
    def off(self) -> bool:
        return abs(self.offset_ms) > MAX_OFFSET_MS


def require_numpy() -> None:
    try:
        import numpy  # noqa: F401
    except ImportError:
        raise ConfigError(f"MIRROR_AUDIT needs numpy, which is not installed; install it with: {MIRRORS_EXTRA}, or "
                          "set MIRROR_AUDIT = 0") from None


def compare(ffmpeg: str, ytid: str, copy: Path, youtube: Path) -> Agreement:
    import numpy as np

    a, b = _samples(ffmpeg, copy), _samples(ffmpeg, youtube)
    if not len(a) or not len(b):
        return Agreement(ytid, math.nan, 0.0, math.nan)
    size = 1 << (len(a) + len(b)).bit_length()
    # corr[k] = sum_t a[t] * b[t + k]: the copy matches YouTube's window k samples on, so starts k samples late.
    corr = np.fft.irfft(np.conj(np.fft.rfft(a, size)) * np.fft.rfft(b, size), size)
    lags = np.concatenate([np.arange(0, len(b)), np.arange(-len(a) + 1, 0)])
    values = np.concatenate([corr[: len(b)], corr[size - len(a) + 1:]])
    near = np.abs(lags) <= MAX_LAG_S * AUDIT_RATE
    best = int(np.argmax(np.where(near, values, -np.inf)))
    lag = int(lags[best])
    skip_a, skip_b = max(0, -lag), max(0, lag)
    length = min(len(a) - skip_a, len(b) - skip_b)
    overlap_a, overlap_b = a[skip_a: skip_a + length], b[skip_b: skip_b + length]
    norm = float(np.linalg.norm(overlap_a) * np.linalg.norm(overlap_b))
    correlation = float(np.dot(overlap_a, overlap_b) / norm) if norm else 0.0
    level = 20 * math.log10(max(_rms(a), 1e-9) / max(_rms(b), 1e-9))
    return Agreement(ytid, round(lag / AUDIT_RATE * 1000, 2), round(correlation, 4), round(level, 2))


def _rms(samples: object) -> float:
    import numpy as np

    return float(np.sqrt(np.mean(np.square(samples)))) if len(samples) else 0.0  # type: ignore[arg-type]


def _samples(ffmpeg: str, path: Path) -> object:
    import numpy as np

    raw = subprocess.run([ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-i", str(path), "-ac", "1",
                          "-ar", str(AUDIT_RATE), "-f", "f32le", "-"], capture_output=True, timeout=120).stdout
    return np.frombuffer(raw, dtype=np.float32).astype(np.float64)


def verdict(measured: list[Agreement]) -> bool:
    """Keep the mirror? False when most of its measured copies are off by more than MAX_OFFSET_MS."""
    usable = [entry for entry in measured if not math.isnan(entry.offset_ms)]
    return not usable or sum(entry.off for entry in usable) * 2 <= len(usable)
