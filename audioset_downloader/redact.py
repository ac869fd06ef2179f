"""One redaction for every message: a URL's password never reaches a console, a log or an output file.

A proxy URL (``http://lab:PASSWORD@host:port``) is paid access, and logs are what people paste into
bug reports. Every path that prints or writes a message that may quote a URL passes it through
``redact``: the log handlers (console and X_dl.log), failed.csv details, the command line's
errors, the dry run and the doctor. It sits below every stage, as ``errors`` does.
"""

from __future__ import annotations

import logging
import re

# scheme://user:password@ -> scheme://user:***@ (a password holds no "@", "/" or space unescaped)
_CREDENTIALS = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)([^\s/@:]*):([^\s/@]*)@")
HIDDEN = "***"


def redact(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ***."""
    return _CREDENTIALS.sub(lambda match: f"{match[1]}{match[2]}:{HIDDEN}@", text) if "@" in text else text


class RedactingFormatter(logging.Formatter):
    """A log formatter whose lines, tracebacks included, pass through ``redact``."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
