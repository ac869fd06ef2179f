"""What keeping secrets off ffmpeg's command line costs: bytes, requests, time and exactness per clip.

One media server (127.0.0.1, a latency per request and a bandwidth per connection) and, in
front of it, a forward proxy that demands a password (tests/support/proxy.py). The same clips
are cut three ways, side by side in one run, each with the real downloader (cli.main,
"direct" backend):

* direct:          no proxy, no cookies: the core path, as the core benchmark runs it
* proxy:           a password proxy, handed to ffmpeg in its environment (http_proxy)
* proxy + cookies: the same and a cookies file for the media host, so every request's
                   Cookie header goes through the header relay (fetch/header_relay.py)

Reported: bytes and requests the origin served per clip, wall seconds per clip, and the
worst clip's start offset read from its content (the sources encode time).

    pip install -e ".[bench]"
    python benchmarks/bench_secrets.py
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from audioset_downloader import cli  # noqa: E402
from benchmarks.bench import machine  # noqa: E402
from tests.conftest import write_config, write_csv  # noqa: E402
from tests.support.audio import decode, make_source, window_offset  # noqa: E402
from tests.support.proxy import CountingProxy  # noqa: E402
from tests.support.server import MediaServer  # noqa: E402

PASSWORD = "bench-password"


def run(work: Path, media: MediaServer, ids: list[str], name: str, **constants: object) -> dict:
    out = work / name
    csv_path = write_csv(work / f"{name}.csv", [f'{ytid}, 30.000, 40.000, "/m/a"' for ytid in ids])
    config = write_config(work / f"{name}.py", CSV_FILE_NAMES=[str(csv_path)], BACKEND="direct", TIMER=0,
                          WORKERS=4, YTB_URL_FORMAT=media.base_url + "/{YTID}.m4a", OUTPUT_DIR=str(out),
                          **constants)
    media.reset_counts()
    started = time.perf_counter()
    assert cli.main(["--config", str(config)]) == 0
    seconds = time.perf_counter() - started
    with open(out / f"{name}.split-pos.csv", newline="") as handle:
        files = [row["file"] for row in csv.DictReader(handle)]
    assert len(files) == len(ids)
    offsets = [abs(window_offset(decode(out / file), 30)) for file in files]
    return {"scenario": name.replace("_", " + "), "clips": len(ids),
            "bytes_per_clip": sum(media.bytes_sent.values()) / len(ids),
            "requests_per_clip": sum(media.requests.values()) / len(ids),
            "seconds_per_clip": seconds / len(ids), "worst_offset_ms": 1000 * max(offsets)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--latency-ms", type=float, default=100)
    parser.add_argument("--bandwidth-mbps", type=float, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        work = Path(temp)
        (work / "mirror").mkdir()
        make_source(work / "source.m4a", 300, "aac", rate=44100)
        ids = [f"benchclip{n:02d}" for n in range(args.clips)]
        for ytid in ids:
            (work / "mirror" / f"{ytid}.m4a").hardlink_to(work / "source.m4a")
        cookies = work / "cookies.txt"
        cookies.write_text("# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tbench\n")
        cookies.chmod(0o600)
        with (MediaServer(work / "mirror", latency_s=args.latency_ms / 1000,
                          bandwidth_bps=args.bandwidth_mbps * 1e6) as media,
              CountingProxy("lab", ("lab", PASSWORD)) as proxy):
            results = [run(work, media, ids, "direct"),
                       run(work, media, ids, "proxy", PROXY=proxy.url),
                       run(work, media, ids, "proxy_cookies", PROXY=proxy.url, COOKIES_FILE=str(cookies))]
    print(json.dumps({"machine": machine(), "latency_ms": args.latency_ms, "bandwidth_mbps": args.bandwidth_mbps,
                      "results": results}, indent=2))
    print(f"{'scenario':<16} {'KB/clip':>8} {'requests/clip':>14} {'s/clip':>7} {'worst offset ms':>16}")
    for r in results:
        print(f"{r['scenario']:<16} {r['bytes_per_clip'] / 1000:>8.1f} {r['requests_per_clip']:>14.2f} "
              f"{r['seconds_per_clip']:>7.3f} {r['worst_offset_ms']:>16.1f}")


if __name__ == "__main__":
    main()
