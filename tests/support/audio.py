"""Synthetic sources whose content encodes time, and the checks that read it back.

Second ``n`` of a source is a pure tone of ``300 + 25 n`` Hz. Reading a clip back,
the frequency of a stretch names the source second it came from, and the instant
where one tone gives way to the next locates the cut to a few milliseconds, so a
test can assert that a clip is exactly the requested window.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audioset_downloader.fetch.cutter import find_ffmpeg

BASE_HZ = 300.0
STEP_HZ = 25.0


def tone_hz(second: int) -> float:
    return BASE_HZ + STEP_HZ * second


def make_source(path: Path, seconds: int, codec: str, rate: int = 48000, channels: int = 2,
                video: bool = False) -> Path:
    """Encode a time-coded tone: ``codec`` is "aac" (m4a) or "opus" (webm); ``video`` adds a picture."""
    expression = f"0.5*sin(2*PI*({BASE_HZ}+{STEP_HZ}*floor(t))*t)"
    layout = "|".join([expression] * channels)
    command = [find_ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
               "-f", "lavfi", "-i", f"aevalsrc={layout}:s={rate}:d={seconds}"]
    if video:
        command += ["-f", "lavfi", "-i", f"color=c=gray:s=64x48:r=5:d={seconds}", "-c:v", "libx264",
                    "-preset", "ultrafast", "-g", "10", "-shortest"]
    if codec == "aac":
        command += ["-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", "-f", "mp4"]
    elif codec == "opus":
        command += ["-c:a", "libopus", "-b:a", "128k", "-f", "webm"]
    else:
        raise ValueError(codec)
    subprocess.run([*command, str(path)], check=True)
    return path


def make_video(path: Path, seconds: int, width: int, height: int) -> Path:
    """A video-only mp4 (H.264, 5 fps, a keyframe every 2 s), as YouTube's adaptive video streams."""
    subprocess.run([find_ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", f"testsrc=s={width}x{height}:r=5:d={seconds}", "-c:v", "libx264", "-preset", "ultrafast",
                    "-g", "10", "-movflags", "+faststart", "-f", "mp4", str(path)], check=True)
    return path


_VIDEO = re.compile(r"Video: (\w+).*?, (\d+)x(\d+)")
_DURATION = re.compile(r"Duration: (\d+):(\d+):([\d.]+)")


def video_stream(path: Path) -> tuple[str, int, int, float]:
    """A clip's video stream: codec, width, height, and the container's duration."""
    probe = subprocess.run([find_ffmpeg(), "-hide_banner", "-i", str(path)], capture_output=True, text=True)
    video, duration = _VIDEO.search(probe.stderr), _DURATION.search(probe.stderr)
    assert video and duration, f"no video stream in {path}: {probe.stderr[-500:]}"
    hours, minutes, seconds = duration.groups()
    seconds_in = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return video.group(1), int(video.group(2)), int(video.group(3)), seconds_in


@dataclass
class Decoded:
    samples: np.ndarray  # mono float32
    rate: int
    channels: int
    codec: str

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate


_STREAM = re.compile(r"Audio: (\w+).*?, (\d+) Hz, (mono|stereo|\d+ channels)")


def decode(path: Path) -> Decoded:
    """Decode a clip with ffmpeg: its samples (mixed to mono), rate, channels and codec."""
    ffmpeg = find_ffmpeg()
    probe = subprocess.run([ffmpeg, "-hide_banner", "-i", str(path)], capture_output=True, text=True)
    match = _STREAM.search(probe.stderr)
    assert match, f"no audio stream in {path}: {probe.stderr[-500:]}"
    codec, rate, layout = match.group(1), int(match.group(2)), match.group(3)
    channels = {"mono": 1, "stereo": 2}.get(layout) or int(layout.split()[0])
    raw = subprocess.run([ffmpeg, "-hide_banner", "-loglevel", "error", "-i", str(path),
                          "-ac", "1", "-f", "f32le", "-"], capture_output=True, check=True).stdout
    return Decoded(np.frombuffer(raw, dtype=np.float32), rate, channels, codec)


def band_energy(samples: np.ndarray, rate: int, hz: float, window_s: float = 0.04) -> np.ndarray:
    """Energy at ``hz`` around each sample: a 40 ms box after demodulation rejects tones 25 Hz apart."""
    t = np.arange(len(samples)) / rate
    product = samples * np.exp(-2j * np.pi * hz * t)
    width = max(1, int(window_s * rate))
    kernel = np.ones(width) / width
    return np.abs(np.convolve(product, kernel, mode="same"))


def dominant_second(clip: Decoded, t0: float, t1: float) -> int:
    """Which source second the stretch [t0, t1) of the clip came from."""
    part = clip.samples[int(t0 * clip.rate) : int(t1 * clip.rate)]
    spectrum = np.abs(np.fft.rfft(part * np.hanning(len(part)), n=1 << 20))
    hz = np.argmax(spectrum) * clip.rate / (1 << 20)
    return int(round((hz - BASE_HZ) / STEP_HZ))


def change_time(clip: Decoded, before_hz: float, after_hz: float, near: float, span: float = 0.3) -> float:
    """Where, near ``near`` seconds into the clip, the tone ``before_hz`` gives way to ``after_hz``."""
    lo = max(0, int((near - span) * clip.rate))
    hi = min(len(clip.samples), int((near + span) * clip.rate))
    part = clip.samples[lo:hi]
    before = band_energy(part, clip.rate, before_hz)
    after = band_energy(part, clip.rate, after_hz)
    crossings = np.nonzero(np.diff(np.sign(after - before)) > 0)[0]
    assert len(crossings), f"no change from {before_hz} Hz to {after_hz} Hz near {near} s"
    best = crossings[np.argmin(np.abs(crossings / clip.rate + lo / clip.rate - near))]
    return (lo + best) / clip.rate


def window_offset(clip: Decoded, start: float) -> float:
    """How far (seconds) the clip's start is from ``start`` in the source, read from its content."""
    first = int(np.floor(start + 1e-9))
    boundary = (first + 1) - start  # where second `first` ends, in clip time
    if boundary < 0.1:  # too close to the start to measure: use the next one
        first += 1
        boundary += 1
    measured = change_time(clip, tone_hz(first), tone_hz(first + 1), boundary)
    return boundary - measured
