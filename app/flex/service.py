"""The Flex Web Service client: SendRequest → reference code → GetStatement.

IB's documentation ("Flex Web Service", https://www.interactivebrokers.com/campus/ibkr-api-page/
flex-web-service/ and the Client Portal guide https://ibkrguides.com/clientportal/
performanceandstatements/flex3.htm):

    GET {base}/SendRequest?t=TOKEN&q=QUERY_ID&v=3      (a User-Agent header is required)
    → <FlexStatementResponse timestamp="…"><Status>Success</Status>
        <ReferenceCode>1234567890</ReferenceCode><Url>{base}/GetStatement</Url>
      </FlexStatementResponse>
      or <Status>Fail</Status><ErrorCode>1015</ErrorCode><ErrorMessage>Token is invalid.</…>
    GET {Url}?q=REFERENCE_CODE&t=TOKEN&v=3
    → the statement (<FlexQueryResponse …>), or a FlexStatementResponse with an error code;
      1019 "Statement generation in progress. Please try again shortly." until it is ready.
      (Version 2 answered <FlexStatementResponse><code>Statement generation in progress…</code>:
      ib_insync's flexreport.py polls on that text; both forms are read here.)

The error codes (IB's table on the page above): 1001, 1004-1009, 1018, 1019 and 1021 say "try
again shortly" and are retried with capped exponential backoff; the others are the user's to
fix (an expired or invalid token, a wrong query id, an IP restriction) and become one clear
message. The token is a secret: it goes only into the two request URLs, never into a message,
a log line or an exception (answers that echo it are redacted).
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.client import HTTPMessage
from typing import IO
from xml.parsers import expat

from app import __version__

log = logging.getLogger(__name__)

DEFAULT_URL = "https://ndcdyn.interactivebrokers.com/AccountManagement/FlexWebService"
"""IB's Flex Web Service (version 3 endpoints SendRequest and GetStatement below it)."""

RETRYABLE = frozenset({1001, 1004, 1005, 1006, 1007, 1008, 1009, 1018, 1019, 1021})
"""IB's "please try again shortly" codes (1018: too many requests — one a second, ten a minute
per token — so the backoff also keeps us under that limit)."""

MESSAGES = {
    1003: "IB says the statement is not available",
    1010: "the query is a legacy Flex query; IB no longer serves those: make an Activity Flex "
    "Query in Client Portal",
    1011: "the Flex Web Service is inactive for this account: activate it in Client Portal "
    "(Performance & Reports → Flex Queries → Flex Web Service Configuration)",
    1012: "the Flex token has expired: generate a new one in Client Portal and set flex_token",
    1013: "IB refused this machine's IP address for the token (the token is restricted to "
    "another address)",
    1014: "IB says the query is invalid: check flex_query_id (the Query ID shown beside the Flex "
    "query in Client Portal)",
    1015: "IB says the Flex token is invalid: check flex_token",
    1016: "IB says the account is invalid",
    1017: "IB says the reference code is invalid (the statement request expired); fetch again",
    1020: "IB could not validate the request: check flex_token and flex_query_id",
}

BACKOFF_START = 1.0
BACKOFF_CAP = 30.0
MAX_WAIT = 300.0
"""How long (seconds of backoff in total) to wait for IB to generate a statement."""


class FlexServiceError(Exception):
    """The statement could not be fetched; the message is for people and holds no token."""

    def __init__(self, message: str, *, unreachable: bool = False, code: int | None = None):
        super().__init__(message)
        self.unreachable = unreachable
        """True for network failures and IB being busy past MAX_WAIT (nothing is wrong with
        the settings); False for IB refusing the request."""
        self.code = code


@dataclass(frozen=True, slots=True)
class FlexRequest:
    """What a fetch needs: the service address, the token (a secret) and the query id."""

    url: str
    token: str = field(repr=False)
    query_id: str
    timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class _Answer:
    """A FlexStatementResponse: its status, code and message, or the reference and URL."""

    status: str = ""
    code: int | None = None
    message: str = ""
    reference: str = ""
    url: str = ""


def fetch_statement(
    request: FlexRequest,
    *,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[str], None] | None = None,
    max_wait: float | None = None,
) -> bytes:
    """The statement's XML bytes; FlexServiceError with a clear message otherwise."""
    if not request.token:
        raise FlexServiceError("flex_token is not set (the Flex Web Service token)")
    if not request.query_id:
        raise FlexServiceError("flex_query_id is not set (the Flex query's Query ID)")
    say = progress or (lambda _: None)
    base = request.url.rstrip("/")
    waiter = _Backoff(sleep, MAX_WAIT if max_wait is None else max_wait, delay=BACKOFF_START)
    while True:
        say("requesting the statement from IB")
        body = _get(request, f"{base}/SendRequest", {"q": request.query_id})
        answer = _answer(body, request.token)
        if answer is None:
            raise FlexServiceError("the Flex Web Service answered SendRequest with no response")
        if answer.status.lower() == "success" and answer.reference:
            break
        _raise_unless_retryable(answer, waiter, say)
    statement_url = _statement_url(base, answer.url)
    log.info("Flex statement requested (query %s); waiting for IB to generate it", request.query_id)
    while True:
        say("waiting for IB to generate the statement")
        body = _get(request, statement_url, {"q": answer.reference})
        polled = _answer(body, request.token)
        if polled is None:  # not a FlexStatementResponse: the statement itself
            say("statement received")
            return body
        _raise_unless_retryable(polled, waiter, say)


def _raise_unless_retryable(answer: _Answer, waiter: _Backoff, say: Callable[[str], None]) -> None:
    code = answer.code
    if code is None and "in progress" in answer.message.lower():
        code = 1019  # version 2's answer carries the text only
    if code in RETRYABLE:
        seconds = waiter.next()
        if seconds is None:
            raise FlexServiceError(
                f"IB is still not ready after {waiter.waited:.0f} s (error {code}: "
                f"{answer.message or 'try again shortly'}); try again later",
                unreachable=True,
                code=code,
            )
        say(f"IB: {answer.message or 'try again shortly'} (retrying in {seconds:.0f} s)")
        log.info("Flex Web Service answered %s; retrying in %.0f s", code, seconds)
        waiter.sleep(seconds)
        return
    text = MESSAGES.get(code or -1) or answer.message or "the request was refused"
    suffix = f" (IB error {code}: {answer.message})" if code is not None else ""
    raise FlexServiceError(f"Flex Web Service: {text}{suffix}", code=code)


@dataclass(slots=True)
class _Backoff:
    """Capped exponential waits, bounded in total."""

    pause: Callable[[float], None]
    max_wait: float
    waited: float = 0.0
    delay: float = BACKOFF_START

    def next(self) -> float | None:
        """The next wait, or None when the total would pass max_wait."""
        if self.waited + self.delay > self.max_wait:
            return None
        seconds = self.delay
        self.delay = min(self.delay * 2, BACKOFF_CAP)
        return seconds

    def sleep(self, seconds: float) -> None:
        self.waited += seconds
        self.pause(seconds)


def _statement_url(base: str, offered: str) -> str:
    """GetStatement's address: the one IB's answer names when it is on the same host as the
    configured service (the token is sent there), else the configured service's own."""
    own = urllib.parse.urlsplit(base)
    if offered:
        theirs = urllib.parse.urlsplit(offered.strip())
        if (theirs.scheme, theirs.netloc) == (own.scheme, own.netloc):
            return offered.strip()
    return f"{base}/GetStatement"


class _SameHost(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only on the same scheme and host: the token rides in the query string
    and must not be handed to another server."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if _host(newurl) != _host(req.full_url):
            raise FlexServiceError(
                f"the Flex Web Service redirected to another server ({_host(newurl)}); refused",
                unreachable=True,
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_SameHost)


def _get(request: FlexRequest, url: str, params: dict[str, str]) -> bytes:
    query = urllib.parse.urlencode({**params, "t": request.token, "v": "3"})
    http = urllib.request.Request(
        f"{url}?{query}",
        # IB: "Programmatic access requires the User-Agent HTTP header to be set".
        headers={"User-Agent": f"position-sync/{__version__} Python"},
    )
    try:
        with _OPENER.open(http, timeout=request.timeout) as response:
            data: bytes = response.read()
            return data
    except urllib.error.HTTPError as exc:
        raise FlexServiceError(
            f"the Flex Web Service answered HTTP {exc.code} ({_redact(exc.reason, request)})",
            unreachable=True,
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FlexServiceError(
            f"cannot reach the Flex Web Service at {_host(url)}: {_redact(reason, request)}",
            unreachable=True,
        ) from None


def _host(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _redact(value: object, request: FlexRequest) -> str:
    text = str(value)
    return text.replace(request.token, "***") if request.token else text


def _answer(body: bytes, token: str) -> _Answer | None:
    """The FlexStatementResponse in `body`, or None when `body` is something else (the
    statement). Parsed without a DTD or entities (see app.flex.parse)."""
    head = body.lstrip()[:512]
    if b"FlexStatementResponse" not in head:
        return None
    fields: dict[str, str] = {}
    stack: list[str] = []

    def refuse(*_: object) -> None:
        raise FlexServiceError("the Flex Web Service answer has a DOCTYPE; refused")

    def start(name: str, _: dict[str, str]) -> None:
        stack.append(name)

    def end(_: str) -> None:
        stack.pop()

    def text(data: str) -> None:
        if len(stack) == 2:
            fields[stack[-1]] = fields.get(stack[-1], "") + data

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        parser.Parse(body, True)
    except expat.ExpatError:
        raise FlexServiceError("the Flex Web Service sent an answer that is not XML") from None
    code_text = fields.get("ErrorCode", "").strip()
    message = (fields.get("ErrorMessage") or fields.get("code") or "").strip()
    return _Answer(
        status=fields.get("Status", "").strip(),
        code=int(code_text) if code_text.isdigit() else None,
        message=message.replace(token, "***") if token else message,
        reference=fields.get("ReferenceCode", "").strip(),
        url=fields.get("Url", "").strip(),
    )
