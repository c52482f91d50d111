"""An internal service on loopback that a checker must never reach: the victim of SSRF tests.

A cited public page may redirect to ``http://127.0.0.1:PORT/`` (or name a host
that resolves there); `--offline-dns` must contact nothing unmapped. This
server plays the internal address those tests aim at: it answers anything with
`SECRET` and counts every request, so a test asserts "zero requests, and the
secret is in no WARC". It runs in its own thread (stdlib server), so it serves
in-process checkers and `linkkeeper` subprocesses alike.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

SECRET = b"INTERNAL ONLY: linkkeeper must never fetch, follow to or archive this page"


class InternalService:
    """``with InternalService() as internal:`` a counting loopback server on a free port."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.requests: list[str] = []  # "METHOD /path" of every request that arrived
        self.connections = 0  # TCP connections accepted, a request sent or not
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("use `with InternalService() as internal:` first")
        return int(self._server.server_address[1])

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def __enter__(self) -> InternalService:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def setup(self) -> None:
                service.connections += 1
                super().setup()

            def _answer(self) -> None:
                service.requests.append(f"{self.command} {self.path}")
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(SECRET)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(SECRET)

            do_GET = do_HEAD = do_POST = _answer

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer((self.host, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
