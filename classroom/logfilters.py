"""Log filters of the composition root.

aiohttp answers a malformed HTTP request (bad request line, too many or too long headers, bad
chunked encoding, a body its Content-Encoding cannot decode …) with 400 and then logs it at
ERROR *with a traceback* ("Error handling
request"): anybody who can reach the port could fill the log with tracebacks that are not
defects (found by tests/fuzz/signaling/schedule/test_api.py). :class:`BadRequestFilter` turns
those records into one WARNING line without the traceback; everything else passes unchanged."""

from __future__ import annotations

import logging

from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError


class BadRequestFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, RequestPayloadError):  # a body that cannot be decoded (e.g. a lying Content-Encoding)
            cause = exc.__cause__ if isinstance(exc.__cause__, HttpProcessingError) else None
            exc = cause or HttpProcessingError(code=400, message=str(exc))
        if isinstance(exc, HttpProcessingError) and 400 <= (exc.code or 400) < 500:
            record.msg = f"{record.getMessage()}: malformed request answered {exc.code}: {exc.message!s:.200}"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def install() -> None:
    logging.getLogger("aiohttp.server").addFilter(BadRequestFilter())
