from __future__ import annotations

import logging

from aiohttp.http_exceptions import BadHttpMessage

from classroom.logfilters import BadRequestFilter


def record(exc: BaseException | None) -> logging.LogRecord:
    info = (type(exc), exc, None) if exc is not None else None
    return logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1, "Error handling request from %s",
                             ("127.0.0.1",), info)  # type: ignore[arg-type]


def test_a_malformed_request_is_one_warning_line_without_traceback() -> None:
    r = record(BadHttpMessage("Too many headers received"))
    assert BadRequestFilter().filter(r)
    assert r.exc_info is None and r.levelname == "WARNING"
    assert "127.0.0.1" in r.getMessage() and "Too many headers" in r.getMessage()


def test_other_errors_keep_their_traceback() -> None:
    r = record(RuntimeError("boom"))
    assert BadRequestFilter().filter(r)
    assert r.exc_info is not None and r.levelname == "ERROR"


def test_an_undecodable_body_is_one_warning_line() -> None:
    from aiohttp.http_exceptions import ContentEncodingError
    from aiohttp.web_protocol import RequestPayloadError

    exc = RequestPayloadError("Can not decode content-encoding: br")
    exc.__cause__ = ContentEncodingError("br")
    r = record(exc)
    assert BadRequestFilter().filter(r)
    assert r.exc_info is None and r.levelname == "WARNING"
