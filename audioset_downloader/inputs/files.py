"""The files a user names (CSVs, the config, cookies): each must be a readable regular file.

Checked before anything opens them: opening a FIFO would block the run forever, and
"does not exist" is the wrong thing to say of a folder or of a file one may not read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def input_file_problem(path: Path) -> str | None:
    """What keeps ``path`` from being read as a file, or None when it can be."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "does not exist"
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        return f"cannot be looked at ({getattr(exc, 'strerror', None) or exc})"
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(mode):
        return "is not a regular file (a pipe, socket or device)"
    if not os.access(path, os.R_OK):
        return "cannot be read (permission denied)"
    return None
