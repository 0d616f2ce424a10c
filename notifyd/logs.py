"""Logging: journald-friendly text or JSON lines, and a filter that blanks every known secret."""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Iterable

REDACTED = "***"
# C0 controls, DEL and C1 controls as visible escapes, so a request path or a body field cannot
# forge a log line (a newline) or reach a terminal (an escape sequence) through a message.
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))} | {
    0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}
_TRACEBACK_CONTROLS = {c: e for c, e in _CONTROLS.items() if c != 0x0A}
LOG_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
# Libraries that say something at INFO on every request, reload or plugin load: heard only at debug.
CHATTY_LOGGERS = ("httpx", "httpcore", "apprise", "watchfiles", "uvicorn.access")


def escape_controls(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with control characters written as escapes (tracebacks keep their line breaks)."""
    if text.isascii() and text.isprintable():       # the common line: nothing to escape, no copy
        return text
    return text.translate(_TRACEBACK_CONTROLS if keep_newlines else _CONTROLS)


class Redactor:
    """Replaces every known secret in a text; the set is swapped whole when the config reloads."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: tuple[str, ...] = ()
        self._lock = threading.Lock()
        self.update(secrets)

    def update(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._secrets = tuple(sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


class _RedactingFilter(logging.Filter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.msg = escape_controls(self.redact(message))
        record.args = None
        if record.exc_text:
            record.exc_text = escape_controls(self.redact(record.exc_text), keep_newlines=True)
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname.lower(),
                 "logger": record.name, "message": record.getMessage()}
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry)


def setup_logging(redact: Redactor, fmt: str = "text", level: int = logging.INFO) -> None:
    """Send notifyd's (and Apprise's, and uvicorn's) log lines at `level` and above to stderr through
    the redactor; the chatty libraries' only from WARNING, unless `level` is DEBUG."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RedactingFilter(redact))
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        # journald adds its own timestamp; a plain level + message reads best there and in a terminal.
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    # No format here shows the thread, the process or the caller's file and line: not gathering them
    # makes each line (one per webhook accepted) cheaper (the logging HOWTO's "Optimization").
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if level <= logging.DEBUG else max(level, logging.WARNING))
