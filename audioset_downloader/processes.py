"""Which process a run, a task or a lock belongs to, and whether it is still there.

Several things a run leaves name their process by host and pid: an attempt's live marker and the
URL's lock on object storage, a scratch folder, a window claimed by another CSV process. A process
on this machine can be asked whether it still runs; one on another machine cannot, so its things
are judged by their age instead. Like ``errors`` and ``atomic``, this sits below every stage.
"""

from __future__ import annotations

import os
import socket


def this_process() -> tuple[str, int]:
    """(host, pid) of this process, as markers and locks record it."""
    return socket.gethostname(), os.getpid()


def process_running(pid: int) -> bool:
    """Whether process ``pid`` of this machine still runs (another user's counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def gone_here(host: str, pid: int) -> bool:
    """A process recorded as (host, pid) ran on this machine and is gone; False for any other machine's."""
    return host == socket.gethostname() and pid > 0 and not process_running(pid)
