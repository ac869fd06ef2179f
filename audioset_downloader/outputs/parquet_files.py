"""OUTPUT_LAYOUT = "parquet": a shard of clips as the Hub holds audio sets, one row per clip.

The shards are the webdataset layout's, in another container: the same samples (a clip and its
JSON), packed the same way (outputs/shards.py), written here as ``X/X-000000.parquet``. A row holds
the clip in ``audio`` (a struct of ``{bytes, path}``, the clip file's bytes in the run's
AUDIO_FORMAT, ``path`` its member name), then ``YTID``, ``start_seconds``, ``end_seconds``,
``labels``, ``label_names``, the measures and the list's own annotations, one column each (an
annotation that is not text or a list of texts is JSON text, named in the file's metadata). The
schema's ``huggingface`` metadata declares ``audio`` an Audio feature, so the Hub's viewer and
``datasets`` see one; ``audioset_downloader`` metadata marks the file as this tool's.

Each clip is a row group of its own: one clip is read alone (a ranged read of its column chunk),
and the footer's statistics name every row's video and start, so another run reads the folder as a
mirror from its footers alone (fetch/mirrors/parquet.py). pyarrow is needed (``.[parquet]``).
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from audioset_downloader.errors import ConfigError

MARK = b"audioset_downloader"
FORMAT = 1
HUGGING_FACE = {"info": {"features": {"audio": {"_type": "Audio"}}}}
REQUIRED = ("audio", "YTID", "start_seconds", "end_seconds", "labels", "label_names")
EXTRA = 'pip install -e ".[parquet]"'


def pyarrow() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise ConfigError(f'OUTPUT_LAYOUT = "parquet" needs pyarrow, which is not installed; install it with: {EXTRA}'
                          ) from None
    return pa


def write_parquet(raw: IO[bytes], members: Iterable[tuple[tarfile.TarInfo, IO[bytes]]]) -> int:
    """The samples (a clip member, then its JSON member, as a tar holds them) as one parquet file into ``raw``."""
    pa = pyarrow()
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    clip: tuple[str, bytes] | None = None
    for info, content in members:
        if info.name.endswith(".json"):
            meta = json.loads(content.read())
            assert clip is not None and isinstance(meta, dict), "a sample's clip comes before its json"
            rows.append({"audio": {"bytes": clip[1], "path": clip[0]}, **meta})
            clip = None
        else:
            clip = (info.name, content.read())
    encoded = sorted({key for row in rows for key, value in row.items() if key != "audio" and not _plain(value)})
    for row in rows:
        for key in encoded:
            if key in row:
                row[key] = json.dumps(row[key], ensure_ascii=False)
    columns = list(dict.fromkeys(key for row in rows for key in row))
    audio = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    table = pa.Table.from_pylist(rows, schema=_schema(pa, rows, columns, audio))
    metadata = {b"huggingface": json.dumps(HUGGING_FACE).encode(),
                MARK: json.dumps({"format": FORMAT, "json_columns": encoded}).encode()}
    table = table.replace_schema_metadata(metadata)
    pq.write_table(table, raw, row_group_size=1, compression="zstd", write_statistics=True)
    return len(rows)


def _plain(value: object) -> bool:
    """Stored as it is: a number, text, a truth value, nothing, or a list of texts."""
    return value is None or isinstance(value, (str, int, float, bool)) or (
        isinstance(value, list) and all(isinstance(item, str) for item in value))


def _schema(pa: Any, rows: list[dict[str, Any]], columns: list[str], audio: Any) -> Any:
    fields = [pa.field("audio", audio)]
    for name in columns[1:] if columns and columns[0] == "audio" else columns:
        if name == "audio":
            continue
        values = [row.get(name) for row in rows if row.get(name) is not None]
        if name in ("labels", "label_names") or values and isinstance(values[0], list):
            kind = pa.list_(pa.string())
        elif values and all(isinstance(v, bool) for v in values):
            kind = pa.bool_()
        elif values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            kind = pa.float64()
        else:
            kind = pa.string()
        fields.append(pa.field(name, kind))
    return pa.schema(fields)


def parquet_members(path: Path) -> Iterator[tuple[tarfile.TarInfo, IO[bytes]]]:
    """A parquet shard as the samples a tar would hold: each row's clip, then its JSON."""
    pyarrow()
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    encoded = set(_mark(parquet.schema_arrow.metadata).get("json_columns", []))
    mtime = path.stat().st_mtime
    for group in range(parquet.num_row_groups):
        for row in parquet.read_row_group(group).to_pylist():
            audio = row.pop("audio") or {}
            name, data = audio.get("path") or "", audio.get("bytes") or b""
            meta = {key: json.loads(value) if key in encoded and isinstance(value, str) else value
                    for key, value in row.items() if value is not None}
            body = json.dumps(meta, ensure_ascii=False).encode("utf-8")
            yield _info(name, len(data), mtime), io.BytesIO(data)
            yield _info(name.partition(".")[0] + ".json", len(body), mtime), io.BytesIO(body)


def parquet_clip(path: Path, member: str) -> bytes | None:
    """One clip's bytes, by its member name (the row's ``audio.path``): its row group alone is read."""
    pyarrow()
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    for group in range(parquet.num_row_groups):
        column = parquet.read_row_group(group, columns=["audio"]).column("audio").to_pylist()
        for cell in column:
            if cell and cell.get("path") == member:
                return cell.get("bytes")
    return None


def schema_problem(path: Path) -> str | None:
    """What makes ``path`` no shard of this tool's (another schema, not parquet at all), or None."""
    pyarrow()
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow says "not parquet" in several ways
        return f"not a parquet file pyarrow can read ({str(exc).splitlines()[0][:120]})"
    missing = [name for name in REQUIRED if name not in schema.names]
    if missing:
        return f"a parquet file of another schema (no {', '.join(missing)} column)"
    if _mark(schema.metadata).get("format") != FORMAT:
        return "a parquet file this tool did not write (no audioset_downloader metadata)"
    return None


def _mark(metadata: dict | None) -> dict[str, Any]:
    try:
        return json.loads((metadata or {}).get(MARK, b"{}"))
    except ValueError:
        return {}


def _info(name: str, size: int, mtime: float) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, int(mtime), 0o644
    return info
