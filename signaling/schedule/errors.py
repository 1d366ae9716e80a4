"""One error format for the whole schedule API.

Every refusal is ``{"error": {"code": "...", "message": "..."}}`` (plus optional extra fields
inside ``error``, e.g. ``conflicts`` for a 409) with a 4xx status. Unexpected failures are
logged and answered ``500 internal`` in the same format, never with a traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

API_PREFIX = "/api/"


class ApiError(Exception):
    """A refusal with an HTTP status, a stable machine code and a human message."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        body.update(self.extra)
        return {"error": body}


def bad_request(code: str, message: str, **extra: Any) -> ApiError:
    return ApiError(400, code, message, **extra)


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def error_response(err: ApiError) -> web.Response:
    return web.Response(
        status=err.status,
        text=json.dumps(err.to_json()),
        content_type="application/json",
        headers=err.headers,
    )


# Headers that carry credentials: printable ASCII or refused (401), before any handler runs.
CREDENTIAL_HEADERS = ("Authorization", "X-API-Key")


def _printable_ascii(value: str) -> bool:
    return value.isascii() and value.isprintable()


def check_credential_headers(request: web.Request) -> None:
    """Refuse credentials that are not printable ASCII (aiohttp hands non-UTF-8 header bytes
    over as lone surrogates, which no key can contain)."""
    for name in CREDENTIAL_HEADERS:
        for value in request.headers.getall(name, []):
            if not _printable_ascii(value):
                raise ApiError(401, "unauthorized", f"the {name} header must be printable ASCII")


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "body_timeout",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def api_error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure under ``/api/`` into the JSON error format (other paths untouched)."""
    if not request.path.startswith(API_PREFIX):
        return await handler(request)
    try:
        check_credential_headers(request)
        return await handler(request)
    except ApiError as err:
        return error_response(err)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        message = exc.reason
        if exc.status == 404:
            message = f"no API endpoint at {request.path}"
        elif exc.status == 405:
            message = f"method {request.method} not allowed on {request.path}"
        elif exc.status == 413:
            message = "request body too large (limit 1 MiB)"
        resp = error_response(ApiError(exc.status, code, message))
        if exc.status == 405 and "Allow" in exc.headers:
            resp.headers["Allow"] = exc.headers["Allow"]
        return resp
    except Exception:
        log.exception("schedule API failure on %s %s", request.method, request.path)
        return error_response(ApiError(500, "internal", "internal error"))
