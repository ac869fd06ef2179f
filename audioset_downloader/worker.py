"""One clip, start to finish: resolve the segment's media, cut the window, report.

``ClipWorker`` is a picklable callable over plain data (Settings, CsvOutputs,
Segment): the local pool calls it in threads, and a distributed engine can ship it
to another process unchanged. It never writes manifests; it returns a ClipResult
and the caller records it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from .backends import load_backend
from .backends.base import Backend
from .cutter import Interrupted, cut_clip, extension_for
from .errors import ClipFailure, FailureReason
from .layout import CsvOutputs
from .segments import Segment
from .settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClipResult:
    segment: Segment
    file: str | None = None  # relative to OUTPUT_DIR, when written
    reason: FailureReason | None = None
    detail: str = ""
    size: int = 0
    seconds: float = 0.0  # wall time spent on the clip
    interrupted: bool = False

    @property
    def written(self) -> bool:
        return self.file is not None


class ClipWorker:
    def __init__(self, settings: Settings, outputs: CsvOutputs) -> None:
        self.settings = settings
        self.outputs = outputs
        self._extension = extension_for(settings.audio_format)
        self._backend: Backend | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        # The backend and lock stay behind; each process builds its own.
        return {"settings": self.settings, "outputs": self.outputs}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["settings"], state["outputs"])  # type: ignore[misc]

    @property
    def backend(self) -> Backend:
        with self._lock:
            if self._backend is None:
                self._backend = load_backend(self.settings)
            return self._backend

    def __call__(self, segment: Segment, stop: threading.Event) -> ClipResult:
        started = time.monotonic()
        relative = self.outputs.relative_clip(segment.stem, self._extension)
        try:
            source = self.backend.resolve(segment)
            log.debug("%s: %s", segment.ytid, source.description)
            cut = cut_clip(source, segment, self.settings, self.outputs.clip_path(segment.stem, self._extension), stop)
        except Interrupted:
            return ClipResult(segment, interrupted=True)
        except ClipFailure as failure:
            if stop.is_set():
                return ClipResult(segment, interrupted=True)
            return ClipResult(segment, reason=failure.reason, detail=failure.detail,
                              seconds=time.monotonic() - started)
        return ClipResult(segment, file=relative, size=cut.size, seconds=time.monotonic() - started)
