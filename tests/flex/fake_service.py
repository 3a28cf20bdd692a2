"""A local fake of IB's Flex Web Service: a real HTTP server on a loopback socket.

It answers as IB documents (https://www.interactivebrokers.com/campus/ibkr-api-page/
flex-web-service/): SendRequest → FlexStatementResponse with Status, ReferenceCode and Url (or
Fail with ErrorCode/ErrorMessage); GetStatement → 1019 "Statement generation in progress" while
`pending` polls remain, then the statement XML. Not a mock: the client under test opens real
connections and parses real bytes.
"""

from __future__ import annotations

import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "117734987298717293847298"
QUERY = "912345"


@dataclass
class FakeFlexService:
    statement: bytes = b""
    pending: int = 0
    """GetStatement polls answered 1019 before the statement."""
    send_error: tuple[int, str] | None = None
    """SendRequest's (ErrorCode, ErrorMessage), when it should fail."""
    busy: int = 0
    """SendRequest calls answered 1018 (too many requests) first."""
    redirect: str = ""
    """When set, the next SendRequest is answered 302 to this base address (same query)."""
    requests: list[tuple[str, dict[str, str], str]] = field(default_factory=list)
    """(path, query, User-Agent) of every request."""
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/AccountManagement/FlexWebService"

    def start(self) -> FakeFlexService:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # http.server calls it by this name
                parts = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parts.query))
                service.requests.append((parts.path, query, self.headers.get("User-Agent", "")))
                if service.redirect and parts.path.endswith("/SendRequest"):
                    self.send_response(302)
                    target, service.redirect = service.redirect, ""  # once
                    self.send_header("Location", f"{target}/SendRequest?{parts.query}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = service.answer(parts.path.rsplit("/", 1)[-1], query)
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass  # quiet: the test reads `requests`

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def answer(self, action: str, query: dict[str, str]) -> bytes:
        if query.get("v") != "3":
            return _fail(1020, "Invalid request or unable to validate request.")
        if query.get("t") != TOKEN:
            return _fail(1015, "Token is invalid.")
        if action == "SendRequest":
            if self.busy:
                self.busy -= 1
                return _fail(1018, "Too many requests have been made from this token.")
            if self.send_error is not None:
                return _fail(*self.send_error)
            if query.get("q") != QUERY:
                return _fail(1014, "Query is invalid.")
            return (
                '<FlexStatementResponse timestamp="01 December, 2026 08:30 AM EST">'
                "<Status>Success</Status><ReferenceCode>5551234567</ReferenceCode>"
                f"<Url>{self.url}/GetStatement</Url></FlexStatementResponse>"
            ).encode()
        if action == "GetStatement":
            if query.get("q") != "5551234567":
                return _fail(1017, "Reference code is invalid.")
            if self.pending:
                self.pending -= 1
                return _fail(
                    1019, "Statement generation in progress. Please try again shortly.", "Warn"
                )
            return self.statement
        return _fail(1020, "Invalid request or unable to validate request.")


def _fail(code: int, message: str, status: str = "Fail") -> bytes:
    return (
        '<FlexStatementResponse timestamp="01 December, 2026 08:30 AM EST">'
        f"<Status>{status}</Status><ErrorCode>{code}</ErrorCode>"
        f"<ErrorMessage>{message}</ErrorMessage></FlexStatementResponse>"
    ).encode()
