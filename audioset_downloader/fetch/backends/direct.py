"""The ``direct`` backend: YTB_URL_FORMAT, formatted, is the media URL itself.

For a lab mirror of AudioSet (``http://mirror/audioset/{YTID}.m4a``): nothing is
resolved; a missing file shows up as ffmpeg's HTTP 404, classified there.
"""

from __future__ import annotations

from audioset_downloader.inputs.segments import Segment
from audioset_downloader.inputs.settings import Settings

from .base import MediaSource


class DirectBackend:
    name = "direct"
    fix_hint = "check that YTB_URL_FORMAT points at your mirror and that it accepts these requests"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def resolve(self, segment: Segment) -> MediaSource:
        return MediaSource(url=self._settings.url_for(segment.ytid), description="direct URL")
