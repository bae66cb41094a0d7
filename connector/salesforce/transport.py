"""Bytes to and from Salesforce: the TLS session, the token, one HTTP call, and the test seam.

- :class:`PinnedSession`: the `requests.Session` every call (and the token endpoint) uses.
- :class:`SalesforceClient`: one REST call through simple-salesforce with the current token,
  a failure turned into the connector's exception by the one classifier (classify.py), an
  expired token renewed once where the auth method allows.
- :class:`MockTransport`: a `requests` transport adapter that answers from a function, mounted
  on the session in place of HTTPS (as httpx's ``MockTransport``): the gateway's unit tests
  drive it without the emulator, through the same session, client and classifier.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError

from connector.errors import SalesforceUnavailable
from connector.salesforce.auth import Token, TokenSource
from connector.salesforce.classify import Failure, Verb, classify_request, first_error, request_error

# What requests raises when no HTTP answer arrived (or arrived cut short).
TRANSPORT_ERRORS: tuple[type[Exception], ...] = (
    requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class PinnedSession(requests.Session):
    """A Session whose CA bundle wins over REQUESTS_CA_BUNDLE from the environment.

    requests lets that variable override Session.verify; the configured `ca_bundle` must not be
    silently replaced by whatever the container happens to export.
    """

    def __init__(self, verify: str | bool) -> None:
        super().__init__()
        self.verify = verify
        self._pinned = verify

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any,
                                   cert: Any) -> Any:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        settings["verify"] = self._pinned
        return settings


class SalesforceClient:
    """One REST call at a time with the current access token (thread-safe)."""

    def __init__(self, *, instance_url: str, api_version: str, tokens: TokenSource,
                 session: requests.Session, timeout: float) -> None:
        self.instance_url = instance_url.rstrip("/")
        self.api_version = api_version
        self.tokens = tokens
        self.session = session
        self.timeout = timeout
        self._sf: Salesforce | None = None
        self._lock = threading.Lock()

    def _client(self, renew: bool = False) -> Salesforce:
        with self._lock:
            if self._sf is None or renew:
                token: Token = self.tokens.fetch()
                self._sf = Salesforce(instance_url=token.instance_url or self.instance_url,
                                      session_id=token.access_token, version=self.api_version, session=self.session)
            return self._sf

    def request(self, what: str, method: str, path: str, *, verb: Verb,
                **kwargs: Any) -> tuple[Any, tuple[int, int] | None]:
        """(parsed body, (used, max) from Sforce-Limit-Info or None). Raises the classified error."""
        sf = self._client()
        for renewed in (False, True):
            try:
                result = sf.restful(path, method=method, timeout=self.timeout, **kwargs)
            except TRANSPORT_ERRORS as exc:
                raise request_error(Failure.RETRY, what, None, "", f"transport error {type(exc).__name__}") from None
            except SalesforceError as exc:
                code, msg = first_error(exc.content)
                failure = classify_request(exc.status, code, msg, verb=verb)
                if failure is Failure.RENEW_SESSION and not renewed:
                    if not self.tokens.renewable:
                        raise SalesforceUnavailable(
                            "Salesforce rejected the access token (INVALID_SESSION_ID) and the "
                            "access_token auth method cannot renew it; messages stay queued") from None
                    sf = self._client(renew=True)
                    continue
                if failure is Failure.RENEW_SESSION:
                    failure = Failure.FATAL       # a token fresh from the token endpoint refused: not ours to fix
                raise request_error(failure, f"{what} {path}", exc.status, code, msg) from None
            usage = (sf.api_usage or {}).get("api-usage")
            return result, (int(usage.used), int(usage.total)) if usage is not None else None
        raise AssertionError("unreachable")  # pragma: no cover


Answer = tuple[int, Any] | tuple[int, Any, Mapping[str, str]]
Handler = Callable[[requests.PreparedRequest], Answer]


class MockTransport(BaseAdapter):
    """Answers every request with ``handler(request)`` → (status, JSON body[, headers]).

    The handler may raise ``requests.ConnectionError`` (or Timeout) to stand for a network
    failure. Mount it with :func:`mount`; nothing leaves the process.
    """

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self.handler = handler

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        answer = self.handler(request)
        status, body = answer[0], answer[1]
        headers = dict(answer[2]) if len(answer) > 2 else {}
        resp = requests.Response()
        resp.status_code = status
        if isinstance(body, str):
            resp._content = body.encode("utf-8")
            headers.setdefault("Content-Type", "text/html;charset=utf-8")
        else:
            resp._content = b"" if body is None else json.dumps(body).encode("utf-8")
            headers.setdefault("Content-Type", "application/json;charset=UTF-8")
        resp.headers = CaseInsensitiveDict(headers)
        resp.encoding = "utf-8"
        resp.url = request.url or ""
        resp.request = request
        return resp

    def close(self) -> None:
        pass


def mount(session: requests.Session, transport: BaseAdapter) -> None:
    """Route every request of `session` (Salesforce and the token endpoint) to `transport`."""
    session.mount("https://", transport)
    session.mount("http://", transport)
