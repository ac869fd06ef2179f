"""What a clip holds: its level and its silence, measured by the ffmpeg run that cuts it.

A clip that decodes can still be useless: YouTube mutes the audio of videos with a copyright
claim, and uploaders strip claimed songs. The cut's own decode carries two analysis filters,
``silencedetect`` (stretches of at least MIN_SILENCE_S below SILENCE_DBFS) and ``volumedetect``
(peak and RMS level over the clip), which report at ffmpeg's "info" level: the cutter runs ffmpeg
at LOG_LEVEL, each line tagged with its level, and hands the info lines here and the others to its
own diagnosis. (``astats`` measures the same, at four times the CPU: benchmarks/README.md.) A
stream-copied clip (AAC into m4a or mp4) is not decoded by its cut, so it is decoded once
afterwards with the same filters.
"""

from __future__ import annotations

import math
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

SILENCE_DBFS = -60.0  # below this a stretch counts as silent, and a clip whose peak is below it is silent
MIN_SILENCE_S = 0.1
FILTERS = f"silencedetect=n={SILENCE_DBFS:g}dB:d={MIN_SILENCE_S:g},volumedetect"
LOG_LEVEL = "level+info"  # every line tagged "[info]", "[warning]", "[error]"...
FLOOR_DB = -91.0  # volumedetect's level for digital zero (it measures 16-bit samples): -inf
SILENT_CLIPS_SAID = {"keep": 'kept and flagged in the manifests (SILENT_CLIPS = "keep")',
                     "drop": 'left out, recorded in failed.csv as "silent" (SILENT_CLIPS = "drop")'}
_REPORTED = re.compile(r"^\[Parsed_(?:silencedetect|volumedetect)_\d+ @ 0x[0-9a-f]+\] \[info\] "
                       r"(silence_start|silence_end|max_volume|mean_volume): (-?[\d.]+|-?inf)", re.M)
_LEVEL_TAG = re.compile(r"(^|\] )\[(?:info|warning|error|fatal|panic|verbose|debug|trace)\] ")


@dataclass(frozen=True)
class ClipMeasures:
    peak_dbfs: float  # the highest sample level; -inf for digital silence
    rms_dbfs: float  # the RMS level over the clip
    silent_share: float  # of the clip's duration, in stretches of >= 0.1 s below -60 dBFS
    silent: bool  # nothing in the clip rises above -60 dBFS
    duration_seconds: float  # decoded

    @classmethod
    def from_fields(cls, cells: list[str] | tuple[str, ...]) -> ClipMeasures | None:
        """Back from a manifest's cells; None for a clip recorded before it was measured, or cells that are not."""
        if len(cells) != 5 or not all(cells):
            return None
        try:
            peak, rms, share, seconds = (float(cells[i]) for i in (0, 1, 2, 4))
        except ValueError:
            return None
        return cls(peak, rms, share, cells[3] == "true", seconds)

    def fields(self) -> tuple[str, ...]:
        """As manifests write them: dB to 0.01, the share to 0.001, seconds to the millisecond."""
        return (_db(self.peak_dbfs), _db(self.rms_dbfs), f"{self.silent_share:.3f}", str(self.silent).lower(),
                f"{self.duration_seconds:.3f}")


def _db(value: float) -> str:
    return "-inf" if value == -math.inf else f"{value:.2f}"


def measures_from(info: str, seconds: float) -> ClipMeasures | None:
    """The measures the filters reported while decoding ``seconds`` of audio; None when they reported none."""
    peak = rms = None
    starts: list[float] = []
    ends: list[float] = []
    for key, value in _REPORTED.findall(info):
        number = float(value)
        if key == "max_volume":
            peak = -math.inf if number <= FLOOR_DB else number
        elif key == "mean_volume":
            rms = -math.inf if number <= FLOOR_DB else number
        else:
            (starts if key == "silence_start" else ends).append(number)
    if peak is None or rms is None:
        return None
    ends += [seconds] * (len(starts) - len(ends))  # silence still going on when the clip ends
    silence = sum(max(0.0, min(end, seconds) - max(start, 0.0)) for start, end in zip(starts, ends, strict=True))
    share = min(1.0, silence / seconds) if seconds > 0 else 1.0
    return ClipMeasures(peak, rms, round(share, 3), peak <= SILENCE_DBFS, seconds)


def silent_detail(measures: ClipMeasures) -> str:
    """failed.csv's detail for a clip SILENT_CLIPS = "drop" left out."""
    return (f"nothing rises above {SILENCE_DBFS:g} dBFS (peak {measures.fields()[0]} dBFS over "
            f"{measures.duration_seconds:.2f} s): muted, or silent at the source")


def split_printed(stderr: str) -> tuple[str, str]:
    """(ffmpeg's info lines, its other messages without their level tag): the cutter reads its errors from
    the second, as it did at the "warning" level."""
    info, messages = [], []
    for line in stderr.splitlines(keepends=True):
        if "[info] " in line:
            info.append(line)
        else:
            messages.append(_LEVEL_TAG.sub(r"\1", line, count=1))
    return "".join(info), "".join(messages)


def measure_command(ffmpeg: str, path: Path) -> list[str]:
    """Decode a written clip once with the measuring filters (for a clip its cut did not decode); its
    ``-progress`` report gives the decoded duration, which for a stream copy differs from the copy's own."""
    return [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", LOG_LEVEL, "-nostats", "-progress", "pipe:1",
            "-i", str(path), "-map", "0:a:0", "-af", FILTERS, "-f", "null", "-"]


def measure_file(ffmpeg: str, path: Path, seconds: float, timeout: float) -> ClipMeasures | None:
    result = subprocess.run(measure_command(ffmpeg, path), capture_output=True, text=True, errors="replace",
                            timeout=timeout)
    return measures_from(result.stderr, seconds) if result.returncode == 0 else None
