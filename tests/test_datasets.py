"""An output folder loads with Hugging Face ``datasets`` as it is: ``load_dataset("audiofolder", ...)``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audioset_downloader import cli
from tests.conftest import Mirror, write_config, write_csv
from tests.support.audio import decode, window_offset


def test_an_output_folder_loads_as_an_audiofolder_dataset(tmp_path: Path, mirror: Mirror,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for ytid in ("dogbark0001", "-speech0002"):
        mirror.add(ytid)
    csv_path = write_csv(tmp_path / "eval_segments.csv", [
        'dogbark0001, 10.000, 20.000, "/m/0bt9lr,/m/05tny_"', 'gonevideo03, 0.000, 10.000, "/m/09x0r"',
        '-speech0002, 123.250, 133.250, "/m/09x0r"'])
    config = write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(csv_path)], OUTPUT_DIR=str(tmp_path / "out"),
                          BACKEND="direct", YTB_URL_FORMAT=mirror.url_format, SAMPLE_RATE=16000, CHANNELS=1)
    assert cli.main(["--config", str(config)]) == 0

    folder = tmp_path / "out" / "eval_segments"
    dataset = datasets.load_dataset("audiofolder", data_dir=str(folder), split="train",
                                    cache_dir=str(tmp_path / "hf-cache"))
    rows = {row["YTID"]: row for row in dataset}
    assert set(rows) == {"dogbark0001", "-speech0002"}  # the failed one is not in it
    assert rows["dogbark0001"]["labels"] == "/m/0bt9lr,/m/05tny_"
    assert rows["dogbark0001"]["label_names"] == "Dog;Bark"
    assert rows["-speech0002"]["start_seconds"] == 123.25
    for ytid, row in rows.items():
        audio = row["audio"]
        assert Path(audio["path"]) == folder / f"{ytid}.wav"
        assert audio["sampling_rate"] == 16000 and len(audio["array"]) == 160000
        # What datasets decoded is the clip as written, which is the window.
        clip = decode(folder / f"{ytid}.wav")
        assert np.allclose(audio["array"], clip.samples, atol=1e-4)
        assert abs(window_offset(clip, row["start_seconds"])) < 0.02
