"""Identities against a server that plays YouTube's limit per identity (support/limit.py).

The server tells identities apart as YouTube does, by session cookie or by the address
a request comes from (here: which local forwarding proxy passed it on), allows each a
few requests a second and answers 429 past that. Everything else is the real run:
the pacing book, the workers, ffmpeg's ranged requests, the manifests.
"""

from __future__ import annotations

import csv
import json
import threading
import time
from pathlib import Path

import pytest

from audioset_downloader import cli
from tests.conftest import Mirror, run_script, write_config, write_csv
from tests.support.audio import decode, window_offset
from tests.support.limit import IdentityLimit
from tests.support.proxy import CountingProxy
from tests.support.server import Reply
from tests.support.socks_server import SocksServer

PER_SECOND = 4  # requests an identity may make a second
PENALTY_S = 2.0  # refused for this long past that


def rows_by_id(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as handle:
        return {row["YTID"]: row for row in csv.DictReader(handle)}


def cookie_identity(tmp_path: Path, name: str) -> dict[str, str]:
    """An identity whose session cookie (who=NAME) names it to the server."""
    path = tmp_path / f"{name}.cookies.txt"
    path.write_text(f"# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\twho\t{name}\n")
    return {"name": name, "cookies_file": str(path)}


def configure(tmp_path: Path, mirror: Mirror, csv_names: dict[str, list[str]], **constants: object) -> Path:
    """A config over CSVs of the given YTIDs (window 30-40 s), each added to the mirror."""
    paths = []
    for name, ids in csv_names.items():
        for ytid in ids:
            mirror.add(ytid)
        paths.append(str(write_csv(tmp_path / f"{name}.csv", [f'{ytid}, 30.000, 40.000, "/m/a"' for ytid in ids])))
    settings = {"CSV_FILE_NAMES": paths, "YTB_URL_FORMAT": mirror.url_format, "BACKEND": "direct",
                "FALLBACK_BACKENDS": [], "OUTPUT_DIR": str(tmp_path / "out"), "TIMER": 0, "WORKERS": 8,
                "RETRY_BACKOFF": 3.0}  # the first cooldown: past the server's 2 s penalty
    settings.update(constants)
    return write_config(tmp_path / "cfg.py", **settings)


def clip_starts(limit: IdentityLimit) -> dict[str, list[float]]:
    """Per identity, when the server first saw each clip's requests (sorted)."""
    return {who: limit.first_requests(who) for who in {seen.who for seen in limit.seen}}


def test_three_identities_learn_their_limits_and_write_every_clip_near_the_ceiling(tmp_path: Path,
                                                                                 mirror: Mirror) -> None:
    limit = IdentityLimit(mirror.server, per_second=PER_SECOND, penalty_s=PENALTY_S)
    names = ["alice", "bob", "carol"]
    ids = [f"paced{n:06d}" for n in range(60)]
    config = configure(tmp_path, mirror, {"eval_segments": ids},
                       IDENTITIES=[cookie_identity(tmp_path, name) for name in names])
    started = time.monotonic()
    assert cli.main(["--config", str(config)]) == 0
    elapsed = time.monotonic() - started
    out = tmp_path / "out"

    written = rows_by_id(out / "eval_segments.split-pos.csv")
    assert set(written) == set(ids)
    assert rows_by_id(out / "eval_segments.failed.csv") == {}  # a 429 is never a failure
    clip = decode(out / written[ids[-1]]["file"])
    assert abs(clip.duration - 10) < 0.02 and abs(window_offset(clip, 30)) < 0.02
    assert set(limit.served) == set(names)  # no request went out without its identity's cookie

    # The limit was met (the run learnt from it) and every identity did its share.
    summary = json.loads((out / "eval_segments.summary.json").read_text())
    stats = {entry["name"]: entry for entry in summary["identities"]}
    assert sum(limit.refused.values()) > 0
    for name in names:
        assert stats[name]["clips"] >= 10
        assert stats[name]["rate_limited"] == limit.refused[name]  # each 429 the server sent, counted
    assert sum(summary["by_identity"].values()) == len(ids)

    # Goodput within reach of the ceiling: 3 identities x the limit / requests a clip.
    per_clip = sum(limit.served.values()) / len(ids)
    ceiling = len(names) * PER_SECOND / per_clip
    assert len(ids) / elapsed > 0.45 * ceiling, (len(ids) / elapsed, ceiling)

    # What was learnt is kept for the next run, and lies near the truth (clips a minute).
    learned = json.loads((out / "identities.json").read_text())["identities"]
    for name in names:
        assert 0.5 * 60 * PER_SECOND / per_clip < learned[name]["per_minute"] < 1.5 * 60 * PER_SECOND / per_clip


def test_auto_learns_the_rate_behind_a_burst_with_few_429s(tmp_path: Path, mirror: Mirror) -> None:
    """A limit that lets several clips through at once, then holds its rate: "auto" must learn the rate."""
    limit = IdentityLimit(mirror.server, per_second=2, burst=12, penalty_s=PENALTY_S)
    ids = [f"burst{n:06d}" for n in range(40)]
    config = configure(tmp_path, mirror, {"eval_segments": ids}, IDENTITIES=[cookie_identity(tmp_path, "dana")])
    assert cli.main(["--config", str(config)]) == 0
    out = tmp_path / "out"
    assert set(rows_by_id(out / "eval_segments.split-pos.csv")) == set(ids)
    per_clip = limit.served["dana"] / len(ids)
    rate = 60 * 2 / per_clip  # clips a minute the limit holds, past its burst
    # The policy before the sustained rate met this limit with 22 429s (its slow start let every worker
    # into the first block, then walked down 13 % a block); now about 4: after a paced 429 the
    # search starts from the rate measured over the cycle, which here reads the limit.
    assert limit.refused["dana"] <= 15, limit.refused
    learned = json.loads((out / "identities.json").read_text())["identities"]["dana"]
    assert 0.5 * rate < learned["ceiling"] < 1.3 * rate, (learned, rate)


@pytest.mark.parametrize("backend", ["direct", "yt-dlp"])
def test_every_request_of_a_clip_goes_out_through_its_one_identity(tmp_path: Path, mirror: Mirror,
                                                                  backend: str) -> None:
    """Proxies and cookies, metadata and media: the server sees each clip come from one identity."""
    if backend == "yt-dlp":
        pytest.importorskip("yt_dlp")
    limit = IdentityLimit(mirror.server, per_second=1000, penalty_s=0)  # no limit: only who asked
    ids = [f"routed{n:05d}" for n in range(9)]
    with CountingProxy("lab-a") as first, CountingProxy("lab-b") as second:
        identities = [{"name": "a", "proxy": first.url}, {"name": "b", "proxy": second.url},
                      cookie_identity(tmp_path, "c")]
        config = configure(tmp_path, mirror, {"eval_segments": ids}, IDENTITIES=identities, BACKEND=backend)
        assert cli.main(["--config", str(config)]) == 0
        carried = sum(first.clients.values()) + sum(second.clients.values())
    assert set(rows_by_id(tmp_path / "out" / "eval_segments.split-pos.csv")) == set(ids)
    assert set(limit.served) == {"via lab-a", "via lab-b", "c"}
    by_clip: dict[str, set[str]] = {}
    for seen in limit.seen:
        by_clip.setdefault(seen.path, set()).add(seen.who)
    assert all(len(whos) == 1 for whos in by_clip.values()), by_clip
    assert carried == limit.served["via lab-a"] + limit.served["via lab-b"]  # the proxies' share went through them
    if backend == "yt-dlp":  # its own request, then ffmpeg's: both through the clip's identity
        assert first.clients["other"] >= 1 and first.clients["ffmpeg"] >= 1


@pytest.mark.parametrize("backend", ["direct", "yt-dlp"])
def test_socks5_identities_carry_metadata_and_media_from_their_own_addresses(tmp_path: Path, mirror: Mirror,
                                                                            backend: str) -> None:
    """ffmpeg and pytube speak no SOCKS: they go through a local relay, and out from the proxy's address."""
    if backend == "yt-dlp":
        pytest.importorskip("yt_dlp")
    limit = IdentityLimit(mirror.server, per_second=1000, penalty_s=0)
    ids = [f"socked{n:05d}" for n in range(6)]
    with SocksServer("127.0.0.2") as plain, SocksServer("127.0.0.3", credentials=("ann", "p@ss")) as signed:
        identities = [{"name": "plain", "proxy": plain.url()}, {"name": "signed", "proxy": signed.url("socks5h")}]
        config = configure(tmp_path, mirror, {"eval_segments": ids}, IDENTITIES=identities, BACKEND=backend)
        assert cli.main(["--config", str(config)]) == 0
        opened = plain.connections + signed.connections
    assert set(rows_by_id(tmp_path / "out" / "eval_segments.split-pos.csv")) == set(ids)
    assert set(limit.served) == {"from 127.0.0.2", "from 127.0.0.3"}  # nothing went out directly
    by_clip: dict[str, set[str]] = {}
    for seen in limit.seen:
        by_clip.setdefault(seen.path, set()).add(seen.who)
    assert all(len(whos) == 1 for whos in by_clip.values()), by_clip
    assert opened >= len(ids)
    clip = decode(tmp_path / "out" / rows_by_id(tmp_path / "out" / "eval_segments.split-pos.csv")[ids[0]]["file"])
    assert abs(clip.duration - 10) < 0.02 and abs(window_offset(clip, 30)) < 0.02


def test_a_socks5_proxy_that_refuses_is_passing_trouble_and_the_log_says_why(tmp_path: Path, mirror: Mirror) -> None:
    with SocksServer("127.0.0.2", credentials=("ann", "right")) as proxy:
        wrong = proxy.url().replace("ann:right", "ann:wrong")
        config = configure(tmp_path, mirror, {"eval_segments": ["refused0001"]}, RETRIES=0,
                           IDENTITIES=[{"name": "wrong", "proxy": wrong}])
        assert cli.main(["--config", str(config)]) == 0
    # The relay answers as an HTTP proxy would (502): a transient reason, retried by the next run.
    failed = rows_by_id(tmp_path / "out" / "eval_segments.failed.csv")
    assert {ytid: row["reason"] for ytid, row in failed.items()} == {"refused0001": "server_error"}
    log = (tmp_path / "out" / "eval_segments_dl.log").read_text()
    assert "refused the user name and password" in log
    assert mirror.server.requests == {}


def assert_paced(limit: IdentityLimit, per_minute: float) -> None:
    """No identity started clips faster than its cap: any n starts span at least (n - 1) turns, less a burst."""
    turn = 60.0 / per_minute
    for who, starts in clip_starts(limit).items():
        for i in range(len(starts)):
            for j in range(i + 1, len(starts)):
                assert starts[j] - starts[i] >= (j - i - 1) * turn - 0.05, (who, starts)


def test_two_csv_processes_share_each_identitys_pace(tmp_path: Path, mirror: Mirror) -> None:
    limit = IdentityLimit(mirror.server, per_second=1000, penalty_s=0)
    config = configure(tmp_path, mirror, {"eval_segments": [f"first{n:06d}" for n in range(8)],
                                          "balanced_train_segments": [f"second{n:05d}" for n in range(8)]},
                       IDENTITIES=[cookie_identity(tmp_path, "x"), cookie_identity(tmp_path, "y")],
                       REQUESTS_PER_MINUTE=120)  # one start every 0.5 s per identity, whichever process
    result = run_script("--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("eval_segments", "balanced_train_segments"):
        assert len(rows_by_id(tmp_path / "out" / f"{name}.split-pos.csv")) == 8
        assert rows_by_id(tmp_path / "out" / f"{name}.failed.csv") == {}
    assert_paced(limit, 120)
    starts = clip_starts(limit)
    assert sorted(starts) == ["x", "y"] and all(len(s) == 8 for s in starts.values())
    # Both processes went through both identities: one book, not one each.
    assert any(seen.path.startswith("/first") for seen in limit.seen if seen.who == "x")
    assert any(seen.path.startswith("/second") for seen in limit.seen if seen.who == "x")


def test_dask_workers_share_each_identitys_pace(tmp_path: Path, mirror: Mirror) -> None:
    pytest.importorskip("distributed")
    limit = IdentityLimit(mirror.server, per_second=1000, penalty_s=0)
    config = configure(tmp_path, mirror, {"eval_segments": [f"dasked{n:05d}" for n in range(12)]},
                       IDENTITIES=[cookie_identity(tmp_path, "x"), cookie_identity(tmp_path, "y")],
                       REQUESTS_PER_MINUTE=120, ENGINE="dask", DASK_WORKERS=2, SHARD_SIZE=3, WORKERS=3)
    assert cli.main(["--config", str(config)]) == 0
    assert len(rows_by_id(tmp_path / "out" / "eval_segments.split-pos.csv")) == 12
    assert rows_by_id(tmp_path / "out" / "eval_segments.failed.csv") == {}
    assert_paced(limit, 120)
    assert {who: len(s) for who, s in clip_starts(limit).items()} == {"x": 6, "y": 6}


def test_a_blocked_identity_is_named_and_the_others_finish_every_clip(tmp_path: Path, mirror: Mirror,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    limit = IdentityLimit(mirror.server, per_second=PER_SECOND, penalty_s=PENALTY_S, blocked_forever={"banned"})
    ids = [f"block{n:06d}" for n in range(16)]
    config = configure(tmp_path, mirror, {"eval_segments": ids}, RETRY_BACKOFF=0.5,
                       IDENTITIES=[cookie_identity(tmp_path, name) for name in ("good1", "banned", "good2")])
    assert cli.main(["--config", str(config)]) == 0
    out = tmp_path / "out"
    assert set(rows_by_id(out / "eval_segments.split-pos.csv")) == set(ids)
    assert rows_by_id(out / "eval_segments.failed.csv") == {}
    assert limit.served["banned"] == 0 and limit.refused["banned"] >= 1
    summary = json.loads((out / "eval_segments.summary.json").read_text())
    stats = {entry["name"]: entry for entry in summary["identities"]}
    assert stats["banned"]["clips"] == 0 and stats["banned"]["rate_limited"] == limit.refused["banned"]
    assert stats["good1"]["clips"] + stats["good2"]["clips"] == len(ids)
    printed = capsys.readouterr().out
    assert any(line.startswith("identity banned: 0 clips") and "blocked: refused every time" in line
               for line in printed.splitlines())


@pytest.mark.parametrize(("entry", "message"), [
    ({"name": "lab", "proxi": "http://127.0.0.1:3128"},
     "IDENTITIES entry 0: unknown key 'proxi'; did you mean 'proxy'?"),
    ({"cookies_file": "missing.txt"}, "IDENTITIES entry 0: cookies_file missing.txt does not exist"),
    ({"proxy": "htp://127.0.0.1:3128"}, "IDENTITIES entry 0: proxy must be an http:// or socks5:// proxy URL"),
    ({"proxy": "socks5://:1080"}, "IDENTITIES entry 0: proxy must be an http:// or socks5:// proxy URL"),
    ({"proxy": "http://127.0.0.1:port"}, "IDENTITIES entry 0: proxy has a port that is not a number"),
    # TLS to the proxy itself: ffmpeg and pytube spoke plain HTTP to it, so it was refused as garbage, if at all.
    ({"proxy": "https://127.0.0.1:3128"}, "IDENTITIES entry 0: proxy is an https:// proxy (TLS to the proxy "
                                          "itself), which ffmpeg and pytube cannot speak; give its http:// address"),
    ({"name": "../x"}, "IDENTITIES entry 0: name must be letters, digits"),
    ("http://127.0.0.1:3128", "IDENTITIES entry 0: must be a dict with keys from name, proxy, cookies_file"),
])
def test_a_bad_identity_is_one_line_and_exit_2_before_any_work(tmp_path: Path, mirror: Mirror, entry: object,
                                                              message: str) -> None:
    config = configure(tmp_path, mirror, {"eval_segments": ["neverfetch1"]}, IDENTITIES=[entry])
    result = run_script("--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {config}:"), lines
    assert message in lines[0]
    assert mirror.server.requests == {} and not (tmp_path / "out").exists()


def test_an_https_proxy_is_refused_in_one_line_before_any_work(tmp_path: Path, mirror: Mirror) -> None:
    config = configure(tmp_path, mirror, {"eval_segments": ["neverfetch1"]}, PROXY="https://lab:s3cret@127.0.0.1:3128")
    result = run_script("--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "PROXY is an https:// proxy" in lines[0] and "s3cret" not in lines[0], lines
    assert mirror.server.requests == {} and not (tmp_path / "out").exists()


def test_identities_with_one_name_twice_are_refused(tmp_path: Path, mirror: Mirror) -> None:
    config = configure(tmp_path, mirror, {"eval_segments": ["neverfetch1"]},
                       IDENTITIES=[{"name": "lab"}, {"name": "lab", "proxy": "http://127.0.0.1:3128"}])
    result = run_script("--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "IDENTITIES names 'lab' twice; give every identity its own name" in result.stderr


def test_turns_waiting_when_a_block_starts_are_given_back_not_spent_on_429s(tmp_path: Path, mirror: Mirror) -> None:
    """At a fixed pace of 10 clips a second, the book hands each of 8 workers a turn up to a second ahead. The
    server starts refusing every request mid-run: the clips under way meet the block, but a turn that was
    waiting must be given back when its wait ends (the book's confirm), not spent on one more 429 each."""
    blocked = threading.Event()
    refused: list[float] = []

    def block(handler: object) -> Reply | None:
        if blocked.is_set():
            refused.append(time.monotonic())
            return Reply(429, b"Too Many Requests")
        return None

    mirror.server.routes.insert(0, block)
    ids = [f"wait{n:07d}" for n in range(60)]
    config = configure(tmp_path, mirror, {"eval_segments": ids}, REQUESTS_PER_MINUTE=600, WORKERS=8,
                       RETRY_BACKOFF=1.5)
    codes: list[int] = []
    run = threading.Thread(target=lambda: codes.append(cli.main(["--config", str(config)])))
    run.start()
    deadline = time.monotonic() + 60
    while sum(mirror.server.requests.values()) < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    blocked.set()  # turns are waiting now: the pace hands them out ahead
    time.sleep(1.2)  # the first cooldown (RETRY_BACKOFF) outlasts this: the identity probes once it is over
    blocked.clear()
    run.join(timeout=120)
    assert codes == [0]
    assert set(rows_by_id(tmp_path / "out" / "eval_segments.split-pos.csv")) == set(ids)
    # The clips under way when it began (at 10 a second, a clip's few requests: two or three) meet the block;
    # without the turns given back, each of the turns waiting (up to 8) adds a 429.
    assert 1 <= len(refused) <= 4, f"{len(refused)} requests were refused during the block"
