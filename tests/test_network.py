"""Against YouTube itself: excluded by default; run with ``pytest -m network``.

These tell a user with internet whether the backends still work today: YouTube
changes often, and pytube's last release is from 2023.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from audioset_downloader.runner import run_csv
from audioset_downloader.settings import Settings
from tests.conftest import write_csv
from tests.support.audio import decode

pytestmark = pytest.mark.network

# The first rows of Google's eval_segments.csv.
ROWS = ['--4gqARaEJE, 0.000, 10.000, "/m/068hy,/m/07q6cd_,/m/0bt9lr,/m/0jbk"',
        '--BfvyPmVMo, 20.000, 30.000, "/m/03l9g"',
        '--U7joUcTCo, 0.000, 10.000, "/m/01b_21"']


@pytest.mark.parametrize("backend", ["pytube"])
def test_backend_downloads_a_real_audioset_clip(tmp_path: Path, backend: str) -> None:
    csv_path = write_csv(tmp_path / "eval_segments.csv", ROWS)
    settings = Settings(csv_file_names=(csv_path,), output_dir=tmp_path / "out", backend=backend, timer=0)
    summary = run_csv(csv_path, settings, console=False)
    assert summary.written >= 1, summary.failed
    clip = decode(next((tmp_path / "out" / "eval_segments").iterdir()))
    assert abs(clip.duration - 10) < 0.05
