"""What measuring each clip costs: ffmpeg CPU per clip with and without the measures, side by side.

The cutter's own ffmpeg command for a 10 s window of a 300 s AAC source served on 127.0.0.1, run
as it is and with the measuring filters taken out, alternating, CLIPS times each; and for a clip
stream-copied to m4a (not decoded by its cut), the copy alone against the copy plus the decode
that measures it. CPU is the children's user + system time (resource.RUSAGE_CHILDREN).

    python benchmarks/bench_measures.py
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from audioset_downloader.fetch.backends.base import MediaSource  # noqa: E402
from audioset_downloader.fetch.cutter import ffmpeg_command, find_ffmpeg  # noqa: E402
from audioset_downloader.fetch.measure import FILTERS, measure_file  # noqa: E402
from audioset_downloader.inputs.segments import Segment  # noqa: E402
from audioset_downloader.inputs.settings import Settings  # noqa: E402
from benchmarks.bench import machine  # noqa: E402
from tests.support.audio import make_source  # noqa: E402
from tests.support.server import MediaServer  # noqa: E402


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def without_measures(command: list[str]) -> list[str]:
    """The same command as before the measures: their filters out of -af (and -af itself when they were all),
    ffmpeg at the "warning" level."""
    command = list(command)
    command[command.index("-loglevel") + 1] = "warning"
    at = command.index("-af")
    chain = command[at + 1].replace("," + FILTERS, "").replace(FILTERS, "")
    return command[:at] + (["-af", chain] if chain else []) + command[at + 2:]


def timed(command: list[str]) -> float:
    before = cpu()
    subprocess.run(command, check=True, capture_output=True)
    return cpu() - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=30)
    args = parser.parse_args()
    ffmpeg = find_ffmpeg()
    results: dict[str, list[float]] = {"wav, measured": [], "wav, not measured": [], "m4a copy + decode": [],
                                       "m4a copy alone": []}
    with tempfile.TemporaryDirectory() as temp:
        work = Path(temp)
        make_source(work / "source.m4a", 300, "aac", rate=44100)
        with MediaServer(work) as server:
            source = MediaSource(server.url("source.m4a"), codec="aac")
            for n in range(args.clips):
                start = 10_000 + 9_000 * n
                segment = Segment("abcdefghijk", start, start + 10_000, "", 1, "abcdefghijk")
                wav = ffmpeg_command(ffmpeg, source, segment, Settings(), work / "clip.wav")
                results["wav, measured"].append(timed(wav))
                results["wav, not measured"].append(timed(without_measures(wav)))
                copy = ffmpeg_command(ffmpeg, source, segment, Settings(audio_format="m4a"), work / "clip.m4a")
                alone = timed(copy)
                results["m4a copy alone"].append(alone)
                before = cpu()
                measure_file(ffmpeg, work / "clip.m4a", 10.0, 60)
                results["m4a copy + decode"].append(alone + cpu() - before)
    summary = {name: round(1000 * sum(values) / len(values), 1) for name, values in results.items()}
    print(json.dumps({"machine": machine(), "clips": args.clips, "cpu_ms_per_clip": summary}, indent=2))
    print(f"measuring a re-encoded clip: +{100 * (summary['wav, measured'] / summary['wav, not measured'] - 1):.1f} % "
          f"CPU; a stream-copied one: +{summary['m4a copy + decode'] - summary['m4a copy alone']:.1f} ms")


if __name__ == "__main__":
    main()
