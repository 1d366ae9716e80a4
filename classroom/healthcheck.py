"""``classroom healthcheck``: exit 0 when the server on this machine answers ``/healthz`` with
``{"status": "ok"}``, 1 otherwise (the compose/Kubernetes health probe; the image has no curl).

It asks ``https://`` first and then ``http://`` on the port (``--port``, else
``CLASSROOM_SERVER_PORT``, else 8080), on 127.0.0.1 unless ``--host`` says otherwise. The HTTPS
certificate is not verified: the probe only asks whether this machine's own server is alive
(it may use the certificate it generated for itself), it sends nothing secret."""

from __future__ import annotations

import argparse
import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence


def probe(host: str, port: int, timeout: float) -> tuple[bool, str]:
    """(healthy, what was seen) for ``/healthz`` over HTTPS, else plain HTTP."""
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    seen = []
    for scheme in ("https", "http"):
        url = f"{scheme}://{host}:{port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=timeout,
                                        context=unverified if scheme == "https" else None) as resp:
                body = json.loads(resp.read(65536).decode("utf-8"))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            seen.append(f"{url}: {exc}")
            continue
        if isinstance(body, dict) and body.get("status") == "ok":
            return True, f"{url}: ok"
        seen.append(f"{url}: unexpected answer {str(body)[:200]}")
    return False, "; ".join(seen)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="classroom healthcheck", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--timeout", type=float, default=4.0)
    args = parser.parse_args(argv)
    port = args.port
    if port is None:
        try:
            port = int(os.environ.get("CLASSROOM_SERVER_PORT", "8080"))
        except ValueError:
            print("classroom healthcheck: CLASSROOM_SERVER_PORT is not a number", file=sys.stderr)
            return 2
    ok, seen = probe(args.host, port, args.timeout)
    print(f"classroom healthcheck: {'healthy' if ok else 'UNHEALTHY'} ({seen})",
          file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
