"""--status watches a real run from outside: running and its pid, counts, rates, a blocked identity; then a kill."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO, Mirror, run_script, write_config, write_csv
from tests.support.limit import IdentityLimit
from tests.test_identities import cookie_identity


def status(config: Path, cwd: Path) -> dict:
    result = run_script("--config", str(config), "--status", "--json", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


def digest(root: Path) -> dict[str, tuple[str, int]]:
    """Every file and folder under ``root``: its content's hash (files) and its modification time."""
    return {str(p): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder", p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


def test_status_shows_a_running_download_and_a_killed_one_is_not_running(tmp_path: Path, mirror: Mirror) -> None:
    limit = IdentityLimit(mirror.server, per_second=100, penalty_s=1, blocked_forever={"banned"})
    ids = [f"watched{n:04d}" for n in range(40)]
    for ytid in ids:
        mirror.add(ytid)
    csv_path = write_csv(tmp_path / "eval_segments.csv", [f'{ytid}, 30.000, 40.000, "/m/a"' for ytid in ids])
    config = write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(csv_path)], YTB_URL_FORMAT=mirror.url_format,
                          BACKEND="direct", OUTPUT_DIR=str(tmp_path / "out"), TIMER=0, WORKERS=2,
                          REQUESTS_PER_MINUTE=20, RETRY_BACKOFF=600, MAX_BACKOFF_MINUTES=60,
                          IDENTITIES=[cookie_identity(tmp_path, "open"), cookie_identity(tmp_path, "banned")])
    run = subprocess.Popen([sys.executable, str(REPO / "AudioDownloader.py"), "--config", str(config)], cwd=tmp_path,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while True:  # a heartbeat every 10 s: wait for one that shows clips written and the banned identity blocked
            seen = status(config, tmp_path)
            identities = {entry["name"]: entry for entry in seen["identities"]}
            if seen["csvs"][0]["written"] >= 3 and identities.get("banned", {}).get("blocked"):
                break
            assert time.monotonic() < deadline, seen
            time.sleep(1)
        assert limit.refused["banned"] >= 1 and run.poll() is None
        now = seen["csvs"][0]
        assert now["running"] and isinstance(now["pid"], int)
        os.kill(now["pid"], 0)  # the CSV's own process, alive
        assert now["left"] == len(ids) - now["written"] and now["failed"] == {} and now["invalid_rows"] == 0
        assert now["per_hour_since_start"] > 0 and now["eta_seconds"] > 0
        assert identities["open"]["per_minute"] == 20 and not identities["open"]["blocked"]
        assert identities["banned"]["blocked_until_utc"] > time.time() + 300  # RETRY_BACKOFF: 450-750 s
        before = snapshot(tmp_path / "out")
        text = run_script("--config", str(config), "--status", cwd=tmp_path)
        assert text.returncode == 0
        lines = text.stdout.splitlines()
        assert lines[0] == f"running: eval_segments (pid {now['pid']})", lines
        assert any(line.startswith("identity banned: pace 1200 clips/h; blocked until ") for line in lines), lines
        assert any(line.startswith("eval_segments: ") and " left to attempt; " in line and "left at that rate" in line
                   for line in lines), lines
        changed = {path for path, stat in snapshot(tmp_path / "out").items() if before.get(path) != stat}
        assert all(path.endswith((".status.json", ".wav", ".csv", ".log", ".part")) for path in changed)  # the run's
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # the run and its CSV process, as a crash or OOM would
        run.wait()

    after = status(config, tmp_path)["csvs"][0]
    heartbeat = json.loads((tmp_path / "out" / "eval_segments.status.json").read_text())
    assert heartbeat["running"] and heartbeat["pid"] == now["pid"]  # the killed run's last word: a stale pid
    assert not after["running"] and after["pid"] is None and after["eta_seconds"] is None
    written = len((tmp_path / "out" / "eval_segments.split-pos.csv").read_text().splitlines()) - 1
    assert after["written"] == written >= now["written"]
    # No run holds the folder now: --status writes no byte there and asks the server for nothing.
    contents = digest(tmp_path / "out")
    asked = sum(mirror.server.requests.values())
    text = run_script("--config", str(config), "--status", cwd=tmp_path)
    assert text.returncode == 0 and text.stdout.startswith("not running (no run holds these outputs)")
    status(config, tmp_path)
    assert digest(tmp_path / "out") == contents, "--status changed the output folder"
    assert sum(mirror.server.requests.values()) == asked, "--status made a request"
