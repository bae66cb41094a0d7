"""A narrow in-memory Salesforce for the gateway's unit tests: routes answered by functions,
mounted on the gateway's session with MockTransport (connector/salesforce/transport.py).

Only what a test sets up answers; anything else is a 404 NOT_FOUND, so a test cannot pass by
accident on a request it did not expect. Every request is kept in `seen` (method, path,
JSON body, headers) for assertions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from pydantic import SecretStr

from connector.config import AuthConfig
from connector.salesforce.auth import TokenSource
from connector.salesforce.gateway import SalesforceGateway, UsageGuard
from connector.salesforce.transport import MockTransport, mount

BASE = "https://acme.my.salesforce.com"
VERSION = "62.0"
PREFIX = f"/services/data/v{VERSION}/"

Answer = tuple[int, Any] | tuple[int, Any, dict[str, str]]


@dataclass
class Seen:
    method: str
    path: str                 # below /services/data/vXX.X/ (or the full path for others)
    body: Any
    headers: dict[str, str]


@dataclass
class FakeOrg:
    routes: list[tuple[str, str, Callable[[Seen], Answer]]] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)

    def on(self, method: str, path: str, answer: Callable[[Seen], Answer] | list[Answer]) -> None:
        """`answer`: a function of the request, or answers given in turn (the last one repeats)."""
        if isinstance(answer, list):
            queue = list(answer)

            def next_answer(_: Seen) -> Answer:
                return queue.pop(0) if len(queue) > 1 else queue[0]
            self.routes.append((method, path, next_answer))
        else:
            self.routes.append((method, path, answer))

    def __call__(self, request: requests.PreparedRequest) -> Answer:
        url = request.url or ""
        path = url.split("?", 1)[0].split(BASE, 1)[-1]
        if path == "/services/oauth2/token":
            return 200, {"access_token": "tok", "instance_url": BASE, "token_type": "Bearer"}
        path = path.removeprefix(PREFIX)
        raw = request.body.decode() if isinstance(request.body, bytes) else request.body
        seen = Seen(request.method or "", path, json.loads(raw) if raw else None, dict(request.headers))
        self.seen.append(seen)
        for method, route, answer in self.routes:
            if method == seen.method and route == path:
                return answer(seen)
        return 404, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]

    def calls(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]


def gateway(org: FakeOrg, *, attempts: int = 3, headers: dict[str, str] | None = None) -> SalesforceGateway:
    session = requests.Session()
    mount(session, MockTransport(org))
    auth = AuthConfig(method="client_credentials", login_url=BASE, client_id="cid", client_secret=SecretStr("sec"))
    return SalesforceGateway(
        instance_url=BASE, api_version=VERSION, tokens=TokenSource(auth, session), session=session,
        requests_per_second=1000, max_in_flight=2, guard=UsageGuard(0.8), retry_attempts=attempts,
        retry_max_wait=0.001, retry_base_wait=0.0001, write_headers=headers)


def ok(n: int = 1, prefix: str = "00Q") -> list[dict[str, Any]]:
    return [{"id": f"{prefix}{k:012d}AAA", "success": True, "created": True, "errors": []} for k in range(n)]


def failed(code: str, message: str, fields: list[str] | None = None) -> dict[str, Any]:
    return {"id": None, "success": False, "errors": [{"statusCode": code, "message": message, "fields": fields or []}]}


def error(code: str, message: str) -> list[dict[str, str]]:
    return [{"errorCode": code, "message": message}]


def subresponse(ref: str, status: int, body: Any) -> dict[str, Any]:
    return {"body": body, "httpHeaders": {}, "httpStatusCode": status, "referenceId": ref}
