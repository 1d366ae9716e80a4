"""JSON log lines: fields, the signaling session's context, extra=, exceptions; text format."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from classroom import logformat
from signaling import logcontext


def capture(fmt: str) -> tuple[logging.Logger, io.StringIO, logging.Handler]:
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(logformat.JsonFormatter() if fmt == "json" else logging.Formatter(logformat.TEXT_FORMAT))
    handler.addFilter(logformat.ContextFilter())
    logger = logging.getLogger(f"test.logformat.{fmt}")
    logger.propagate = False
    logger.handlers = [handler]
    logger.setLevel(logging.DEBUG)
    return logger, buf, handler


def lines(buf: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_json_line_has_the_basic_fields() -> None:
    logger, buf, _ = capture("json")
    logcontext.clear()
    logger.info("hello %s", "世界")
    (rec,) = lines(buf)
    assert rec["level"] == "INFO" and rec["logger"] == "test.logformat.json"
    assert rec["message"] == "hello 世界"
    assert str(rec["time"]).endswith("Z") and "T" in str(rec["time"])
    assert "lesson" not in rec and "classroom" not in rec


def test_bound_context_and_extra() -> None:
    logger, buf, _ = capture("json")

    async def session() -> None:  # a classroom's connection task binds its fields once joined
        logcontext.bind(lesson="L1", classroom="c-remote", participant="p7")
        logger.warning("signaling error %s", "bad_json")
        logger.info("explicit", extra={"lesson": "L2", "code": "floor_full", "count": 3})

    asyncio.run(session())
    logger.info("outside any session")
    first, second, third = lines(buf)
    assert (first["lesson"], first["classroom"], first["participant"]) == ("L1", "c-remote", "p7")
    assert second["lesson"] == "L2" and second["classroom"] == "c-remote"  # extra= wins
    assert second["code"] == "floor_full" and second["count"] == 3
    assert "lesson" not in third  # the task's context did not leak out of it


def test_exception_is_one_json_field() -> None:
    logger, buf, _ = capture("json")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("internal error handling %s", "publish")
    (rec,) = lines(buf)
    assert rec["level"] == "ERROR"
    assert "RuntimeError: boom" in str(rec["exception"])
    assert len(buf.getvalue().splitlines()) == 1  # the traceback stays inside the line


def test_text_format_unchanged() -> None:
    logger, buf, _ = capture("text")
    logger.info("plain")
    assert buf.getvalue().rstrip().endswith("INFO test.logformat.text: plain")


def test_configure_rejects_an_unknown_format() -> None:
    with pytest.raises(ValueError, match="text, json"):
        logformat.configure("INFO", "xml")


def test_configure_installs_one_handler() -> None:
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    try:
        handler = logformat.configure("WARNING", "json")
        assert root.handlers == [handler] and root.level == logging.WARNING
        assert isinstance(handler.formatter, logformat.JsonFormatter)
    finally:
        root.handlers = saved
        root.setLevel(level)


def test_log_format_from_the_environment() -> None:
    from classroom.config import load_config

    assert load_config(env={}).server.log_format == "text"
    assert load_config(env={"CLASSROOM_SERVER_LOG_FORMAT": "json"}).server.log_format == "json"


def test_recorder_processes_follow_the_servers_json_format() -> None:
    from classroom.cli import worker_logging

    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    try:
        assert not worker_logging(["--log-level", "DEBUG"], {})
        assert worker_logging(["--url", "ws://x", "--log-level", "WARNING"], {"CLASSROOM_SERVER_LOG_FORMAT": "json"})
        (handler,) = root.handlers
        assert isinstance(handler.formatter, logformat.JsonFormatter) and root.level == logging.WARNING
        logging.basicConfig(level=logging.INFO, format="%(message)s")  # what recorder/cli.py then does
        assert root.handlers == [handler] and root.level == logging.WARNING
        assert worker_logging([], {"CLASSROOM_SERVER_LOG_FORMAT": "json"}) and root.level == logging.INFO
    finally:
        root.handlers = saved
        root.setLevel(level)
