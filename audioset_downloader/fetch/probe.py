"""Inspecting a written clip: does it decode, and what is its codec, rate, channels and length."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

_STREAM = re.compile(r"Stream #0:\d+.*?: Audio: (\w+).*?, (\d+) Hz, (mono|stereo|[\d.]+(?:\(\w+\))?|\d+ channels)")
_CHANNELS = {"mono": 1, "stereo": 2}


@dataclass(frozen=True)
class AudioInfo:
    codec: str
    rate: int
    channels: int
    seconds: float


class Undecodable(Exception):
    """The file is not audio ffmpeg can decode to the end."""


def probe(ffmpeg: str, path: Path, timeout: float = 120.0) -> AudioInfo:
    """Decode the whole file (to nowhere): its stream's properties, or Undecodable."""
    command = [ffmpeg, "-nostdin", "-hide_banner", "-nostats", "-xerror", "-progress", "pipe:1",
               "-i", str(path), "-map", "0:a:0", "-f", "null", "-"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, errors="replace", timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise Undecodable(f"decoding took over {timeout:g} s") from exc
    stream = _STREAM.search(result.stderr)
    micros = [int(v) for v in re.findall(r"^out_time_us=(\d+)$", result.stdout, re.M)]
    if result.returncode != 0 or stream is None:
        raise Undecodable(f"stops at {(max(micros) if micros else 0) / 1e6:.2f} s: {_why(result.stderr)}")
    layout = stream.group(3)
    channels = _CHANNELS.get(layout) or int(re.match(r"\d+", layout).group(0))  # type: ignore[union-attr]
    return AudioInfo(stream.group(1), int(stream.group(2)), channels, (max(micros) if micros else 0) / 1e6)


def _why(stderr: str) -> str:
    """The first error ffmpeg gave, without its "[in#0/wav @ 0x...]" prefix."""
    for line in stderr.splitlines():
        if "rror" in line or "Invalid" in line:
            text = re.sub(r"^\[[^\]]*\]\s*", "", line.strip())
            cause = re.search(r"\(([^()]+)\)\s*$", text)
            return cause.group(1) if cause else text
    return "ffmpeg could not decode it"
