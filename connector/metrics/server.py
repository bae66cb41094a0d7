"""The service-mode listener: /metrics (prometheus_client's own WSGI app), /healthz and /readyz.

One small threaded WSGI server in a daemon thread, so it answers while the event loop is busy or
wedged (that is when /healthz must say 503).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

Probe = Callable[[], dict[str, str]]    # {part: why} for what fails; empty: fine


def _answer(start_response: Any, problems: dict[str, str]) -> Iterable[bytes]:
    status = "503 Service Unavailable" if problems else "200 OK"
    body = json.dumps({"status": "fail" if problems else "ok", "failing": problems}, ensure_ascii=False)
    start_response(status, [("Content-Type", "application/json; charset=utf-8"), ("Cache-Control", "no-store")])
    return [body.encode("utf-8")]


def make_app(registry: CollectorRegistry, healthz: Probe, readyz: Probe,
             before_scrape: Callable[[], None] = lambda: None) -> Callable[..., Iterable[bytes]]:
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/healthz":
            return _answer(start_response, healthz())
        if path == "/readyz":
            return _answer(start_response, readyz())
        if path == "/metrics":
            before_scrape()
            body: Iterable[bytes] = metrics_app(environ, start_response)
            return body
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found: /metrics, /healthz and /readyz are served here\n"]

    return app


class MetricsServer:
    """Serves the app on host:port from a daemon thread until `close()`."""

    def __init__(self, app: Callable[..., Iterable[bytes]], port: int, host: str = "0.0.0.0") -> None:
        self.httpd = make_server(host, port, app, ThreadingWSGIServer, handler_class=_SilentHandler)
        self.port = int(self.httpd.server_port)
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="metrics-listener", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)
