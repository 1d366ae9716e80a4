"""How ``classroom serve`` writes its log: ``text`` (one human line per record, the default) or
``json`` (one JSON object per line, for a log shipper: Loki, Elasticsearch, journald's JSON…).

A JSON line holds ``time`` (UTC, ISO 8601 with milliseconds), ``level``, ``logger``, ``message``,
then ``lesson``, ``classroom`` and ``participant`` when the record has them (from the signaling
session's context, ``signaling/logcontext.py``, or ``extra=``), any other ``extra=`` field of a
plain JSON type, and ``exception`` (the formatted traceback) when there is one (docs/ops.md)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from signaling import logcontext

LOG_FORMATS: tuple[str, ...] = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# attributes every LogRecord has: never copied into the JSON line as "extra" fields
_STANDARD = set(vars(logging.LogRecord("x", logging.INFO, "x", 0, "", None, None))) | {"message", "asctime"}


class ContextFilter(logging.Filter):
    """Copies the bound lesson/classroom/participant onto a record that does not have them."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in logcontext.current().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in logcontext.FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                out[key] = str(value)
        for key, value in vars(record).items():
            if key in _STANDARD or key in out or key.startswith("_"):
                continue
            if isinstance(value, str | int | float | bool) or value is None:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False)


def configure(level: str = "INFO", fmt: str = "text") -> logging.Handler:
    """Install one stderr handler on the root logger in the given format (replacing any)."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    return handler
