"""Telling a dead network from clips with network trouble.

On a machine without internet every clip fails with ``network``, and recording them
would blame the videos (and a rerun would retry them only because the reason is
transient). So until something has answered, a clip whose host cannot be resolved
or reached is not retried and not recorded. At the first such clip the host (or the
proxy) is asked directly, once: when it cannot be resolved or connected to either, the
run stops there with one message (at a guest's pace ten clips take two minutes, so
waiting for ten proves nothing more); else after FIRST_CLIPS such clips in a row. Once
a clip has been written or a server has answered, a later outage takes the usual path:
retries, pauses, failed.csv.
"""

from __future__ import annotations

import re
import socket
import threading
from urllib.parse import urlsplit

from audioset_downloader.errors import ClipFailure, FailureReason, NetworkDownError
from audioset_downloader.inputs.settings import Settings
from audioset_downloader.redact import redact

FIRST_CLIPS = 10
PROBE_TIMEOUT_S = 5.0
DEFAULT_PORTS = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080}
# What ffmpeg, urllib (pytube), yt-dlp and the OS say when a host cannot be resolved or
# reached at all; a reset or a timeout mid-transfer is passing trouble, not this.
_UNREACHABLE = re.compile(
    r"name or service not known|temporary failure in name resolution|nodename nor servname|"
    r"no address associated with hostname|getaddrinfo failed|failed to resolve hostname|"
    r"connection refused|network is unreachable|no route to host|\[errno -[235]\]|\[errno 111\]",
    re.IGNORECASE,
)


class Reachability:
    """What one run knows of whether its host can be reached at all (thread-safe)."""

    def __init__(self, settings: Settings) -> None:
        proxy = urlsplit(redact(settings.proxy)).netloc if settings.proxy else ""  # user:***@host:port
        self.host = f"the proxy {proxy}" if proxy else urlsplit(settings.ytb_url_format).netloc
        target = urlsplit(settings.proxy or settings.ytb_url_format.replace("{YTID}", "x"))
        self._address = (target.hostname or "", target.port or DEFAULT_PORTS.get(target.scheme, 80))
        self._probed: bool | None = None  # the host or proxy took a connection when asked (None: not asked)
        self._lock = threading.Lock()
        self._answered = False
        self.unreachable = 0  # clips in a row that could not reach the host, before any answer
        self.last_error = ""

    def answered(self) -> None:
        """A clip was written, or a server said something about one: the network is there."""
        self._answered = True

    def no_network(self, failure: ClipFailure) -> bool:
        """True when, before anything has answered, ``failure`` says the host cannot be reached.

        Such a clip is left for the next run. The FIRST_CLIPS-th stops the run.
        """
        if failure.reason is not FailureReason.NETWORK or not _UNREACHABLE.search(failure.detail):
            return False
        with self._lock:
            if self._answered:
                return False
            self.unreachable += 1
            self.last_error = failure.detail
            if self._probed is None:
                self._probed = self._connects()
            if self.unreachable >= FIRST_CLIPS or not self._probed:
                raise self.down_error()
        return True

    def _connects(self) -> bool:
        """Whether the host (or proxy) resolves and takes a TCP connection at all."""
        try:
            with socket.create_connection(self._address, timeout=PROBE_TIMEOUT_S):
                return True
        except (OSError, ValueError):
            return False

    @property
    def never_answered(self) -> bool:
        return not self._answered and self.unreachable > 0

    def down_error(self) -> NetworkDownError:
        return NetworkDownError(
            f"cannot reach {self.host}: {self.last_error} "
            f"({self.unreachable} clip{'s' if self.unreachable != 1 else ''}, none written, none marked failed); "
            "is this machine online? Set PROXY if it needs one, or run --doctor")
