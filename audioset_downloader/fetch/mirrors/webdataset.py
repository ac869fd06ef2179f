"""The "webdataset" layout: tar shards of samples, each an audio member and a JSON member naming its video.

Keys may be opaque (confit's ``sample-000000000``): the YTID is in the JSON (``id``, ``youtube_id``,
``video_id`` or ``ytid``; "Y"-prefixed or bare), else in the key itself. With no index published,
each shard is read once, in order, header by header: tarfile skips a member's data by seeking, so
only the 512-byte headers and the small JSON members travel, never the audio. A sample's audio is
then one ranged read of its member's bytes.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator

from audioset_downloader.fetch.mirrors.access import FileEntry, MirrorAccess
from audioset_downloader.fetch.mirrors.base import AUDIO_SUFFIXES, Copy, start_ms_of, ytid_of

MAX_JSON = 1 << 20  # a sample's JSON larger than this is no annotation: skipped
_ID_KEYS = ("id", "youtube_id", "video_id", "ytid", "YTID")
_START_KEYS = ("start_seconds", "start_time", "start")


class WebDatasetLayout:
    name = "webdataset"

    def reads(self, entry: FileEntry) -> bool:
        return entry.path.endswith(".tar")

    def copies_in(self, access: MirrorAccess, entry: FileEntry, number: int) -> list[Copy]:
        return list(self._samples(access, entry, number))

    def _samples(self, access: MirrorAccess, entry: FileEntry, number: int) -> Iterator[Copy]:
        key, audio, meta = None, None, None
        try:
            with tarfile.open(fileobj=access.ranged(entry), mode="r:") as tar:
                for member in tar:
                    if not member.isfile():
                        continue
                    name = member.name.rpartition("/")[2]
                    stem, _, suffix = name.partition(".")
                    if stem != key:
                        if key is not None and (copy := _copy(key, audio, meta, number)) is not None:
                            yield copy
                        key, audio, meta = stem, None, None
                    suffix = suffix.lower()
                    if suffix.rpartition(".")[2] in AUDIO_SUFFIXES and audio is None:
                        audio = member
                    elif suffix == "json" and member.size <= MAX_JSON:
                        handle = tar.extractfile(member)
                        try:
                            meta = json.loads(handle.read()) if handle is not None else None
                        except ValueError:
                            meta = None  # a damaged annotation: the key alone may still name the video
        except tarfile.TarError:
            pass  # a damaged shard: the samples read so far stand; the rest are not held
        if key is not None and (copy := _copy(key, audio, meta, number)) is not None:
            yield copy

    def read(self, access: MirrorAccess, entry: FileEntry, copy: Copy) -> bytes:
        return access.read(entry.path, copy.offset, copy.offset + copy.length, entry.size)


def _copy(key: str, audio: tarfile.TarInfo | None, meta: object, number: int) -> Copy | None:
    if audio is None:
        return None
    ytid, start = None, None
    if isinstance(meta, dict):
        ytid = next((found for name in _ID_KEYS if (found := ytid_of(meta.get(name))) is not None), None)
        start = next((found for name in _START_KEYS if (found := start_ms_of(meta.get(name))) is not None), None)
    ytid = ytid or ytid_of(key)
    if ytid is None:
        return None
    return Copy(ytid, start, number, audio.offset_data, audio.size)
