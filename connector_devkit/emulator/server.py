"""The emulator's HTTPS front: OAuth token endpoint, REST routing, call counting, faults.

A ThreadingHTTPServer speaking HTTP/1.1 (keep-alive, so a requests.Session reuses its TLS
connection) behind an ssl context whose certificate comes from a throwaway trustme CA.
simple-salesforce always builds https:// URLs, which is why plain HTTP is not an option.
Request bodies are parsed here; all record logic lives in :mod:`.org` under its lock.

Front-end rules enforced here, each with its source:

- The request line plus headers may be at most 16,384 bytes: a longer URI gets 414, a longer
  whole gets 431, both with Jetty's HTML body, not JSON (Help 000386264; bodies REAL-PASTE in
  simple-salesforce #271, jsforce #1134, forcedotcom/cli #63).
- JWT bearer: ``aud`` must be https://login.salesforce.com, https://test.salesforce.com or an
  Experience Cloud site URL (``Emulator.site_urls``), else ``invalid_grant`` "audience is invalid"
  (omniphx/forrest #302, Talend/components #1423).
- ``Sforce-Auto-Assign`` and ``Sforce-Duplicate-Rule-Header`` reach the org as
  :class:`.rules.RequestOptions` (see :mod:`.rules`); in /composite also from the top-level
  request into every subrequest (see :mod:`.composite`).
"""

from __future__ import annotations

import base64
import binascii
import collections
import itertools
import json
import secrets
import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

from . import composite
from .automation import tooling_query
from .describe import describe_global, describe_object
from .faults import Faults
from .org import Org, RecordError, normalise_id
from .rules import RequestOptions

API_VERSIONS = [("Spring '24", "60.0"), ("Summer '24", "61.0"), ("Winter '25", "62.0"),
                ("Spring '25", "63.0"), ("Summer '25", "64.0"), ("Winter '26", "65.0")]
MAX_COLLECTION = 200
QUERY_PAGE = 2000
NOT_FOUND = [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
JWT_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")
MAX_REQUEST_HEAD = 16_384  # bytes of request line + headers (Help 000386264)
HTML_414 = "<h1>Bad Message 414</h1><pre>reason: URI Too Long</pre>"
HTML_431 = "<h1>Bad Message 431</h1><pre>reason: Request Header Fields Too Large</pre>"


class ApiError(Exception):
    """A whole-request failure: HTTP status plus Salesforce's [{message, errorCode}] body."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None):
        super().__init__(message)
        self.status = status
        self.body: Any = [{"message": message, "errorCode": code}]
        if fields is not None:
            self.body[0]["fields"] = fields


class Emulator:
    """A local Salesforce REST API over HTTPS (see the module docstring)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 client_id: str = "emulator-client", client_secret: str = "emulator-secret",
                 daily_limit: int = 100_000, api_version: str = "62.0",
                 cert_dir: str | Path | None = None, metadata_dir: str | Path | bool | None = True):
        self.host, self.port = host, port
        self.client_id, self.client_secret = client_id, client_secret
        self.api_version = api_version
        # metadata_dir: where the org's deployed fields come from (True: the project's salesforce/)
        self.org = Org(daily_limit=daily_limit, metadata_dir=metadata_dir)
        self.site_urls: list[str] = []  # Experience Cloud site URLs accepted as a JWT audience
        self.faults = Faults()
        self.api_calls = 0
        self.calls_by_kind: collections.Counter[str] = collections.Counter()
        self._counter_lock = threading.Lock()
        self._tokens: dict[str, int] = {}  # token → fault generation it was minted in
        self._locators: dict[str, tuple[str, list[dict[str, Any]], int]] = {}
        self._locator_ids = itertools.count(1)
        self._cert_dir = Path(cert_dir) if cert_dir else None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.ca_path = ""
        self.url = ""

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "Emulator":
        import trustme  # imported lazily: only the emulator needs it

        if self._cert_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="sf-emulator-")
            self._cert_dir = Path(self._tmp.name)
        self._cert_dir.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_path = str(self._cert_dir / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_path)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(context)

        server = _Server((self.host, self.port), _Handler)
        # Handshake lazily in the handler thread, so one slow client cannot stall accept().
        server.socket = context.wrap_socket(server.socket, server_side=True,
                                            do_handshake_on_connect=False)
        server.emulator = self
        self._server = server
        self.port = server.server_address[1]
        shown = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        self.url = f"https://{shown}:{self.port}"
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="sf-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
            self._cert_dir = None

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def reset_counters(self) -> None:
        """Zero api_calls and calls_by_kind (the org's daily usage is set with set_api_usage)."""
        with self._counter_lock:
            self.api_calls = 0
            self.calls_by_kind = collections.Counter()

    # ------------------------------------------------------------------ tokens & counting

    def issue_token(self) -> dict[str, Any]:
        token = f"{self.org.org_id[:15]}!{secrets.token_urlsafe(48)}"
        with self._counter_lock:
            self._tokens[token] = self.faults.token_generation
        return {"access_token": token, "instance_url": self.url,
                "id": f"{self.url}/id/{self.org.org_id}/{self.org.user_id}",
                "token_type": "Bearer", "issued_at": str(int(time.time() * 1000)),
                "signature": "x", "scope": "api"}

    def token_valid(self, token: str) -> bool:
        with self._counter_lock:
            return self._tokens.get(token) == self.faults.token_generation

    def count_call(self, kind: str) -> tuple[bool, str]:
        """Count one API call unless the daily limit is reached; returns (allowed, limit header)."""
        org = self.org
        with org.lock:
            if org.api_used >= org.api_max:
                return False, f"api-usage={org.api_used}/{org.api_max}"
            org.api_used += 1
            header = f"api-usage={org.api_used}/{org.api_max}"
        with self._counter_lock:
            self.api_calls += 1
            self.calls_by_kind[kind] += 1
        return True, header

    def new_locator(self, sobject: str, rows: list[dict[str, Any]], size: int) -> str:
        locator = normalise_id(f"01g000{next(self._locator_ids):09d}")
        assert locator is not None
        with self._counter_lock:
            self._locators[locator] = (sobject, rows, size)
        return locator

    def locator_rows(self, locator: str) -> tuple[str, list[dict[str, Any]], int] | None:
        with self._counter_lock:
            return self._locators.get(locator)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    emulator: Emulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # client disconnects and TLS failures are routine; tests see real errors as 500s


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SalesforceEmulator/1.0"
    timeout = 60  # idle keep-alive connections release their thread
    # Send headers and body in one TLS record and without Nagle: otherwise delayed ACKs
    # add ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PATCH(self) -> None:
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    # ------------------------------------------------------------------ plumbing

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if status == 204 or body is None:
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _json_body(self) -> Any:
        raw = self._body
        try:
            return json.loads(raw.decode("utf-8")) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(400, "JSON_PARSER_ERROR", f"Unexpected character in JSON body: {exc}")

    def _send_html(self, status: int, html: str) -> None:
        data = html.encode("iso-8859-1")
        self.send_response(status)
        self.send_header("Content-Type", "text/html;charset=iso-8859-1")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def _head_too_large(self) -> bool:
        """Answer 414/431 as Salesforce's front end does when the head exceeds 16,384 bytes."""
        head = len(self.raw_requestline) + sum(len(k) + len(v) + 4 for k, v in self.headers.items())
        if head <= MAX_REQUEST_HEAD:
            return False
        if len(self.path) > MAX_REQUEST_HEAD:
            self._send_html(414, HTML_414)
        else:
            self._send_html(431, HTML_431)
        return True

    def _dispatch(self, method: str) -> None:
        emu = self.server.emulator
        self._body = self._read_body()
        if self._head_too_large():
            return
        parts = urlsplit(self.path)
        segments = [unquote(s) for s in parts.path.split("/")]
        while segments and segments[-1] == "":
            segments.pop()  # trailing slash is optional
        self._params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        try:
            if segments[:4] == ["", "services", "oauth2", "token"] and method == "POST":
                return self._token()
            if segments[:4] == ["", "services", "oauth2", "userinfo"]:
                return self._userinfo()
            if segments == ["", "services", "data"] and method == "GET":
                return self._send(200, [{"label": label, "url": f"/services/data/v{v}",
                                         "version": v} for label, v in API_VERSIONS])
            if segments[:3] != ["", "services", "data"] or len(segments) < 4 \
                    or not segments[3].startswith("v"):
                return self._send(404, NOT_FOUND)
            self._version = segments[3][1:]
            self._api(emu, method, segments[4:])
        except (ConnectionError, ssl.SSLError, TimeoutError):
            raise
        except Exception as exc:  # a bug in the emulator: answer like Salesforce's 500
            self._send(500, [{"errorCode": "UNKNOWN_EXCEPTION", "message": f"emulator error: {exc!r}"}])

    # ------------------------------------------------------------------ OAuth

    def _token(self) -> None:
        emu = self.server.emulator
        form = {k: v[-1] for k, v in parse_qs(self._body.decode("utf-8", "replace")).items()}
        grant = form.get("grant_type")
        bad_client = {"error": "invalid_client", "error_description": "invalid client credentials"}
        if grant == "client_credentials":
            client_id, secret = form.get("client_id"), form.get("client_secret")
            auth = self.headers.get("Authorization", "")
            if auth.lower().startswith("basic "):
                try:
                    client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
                except (binascii.Error, UnicodeDecodeError):
                    return self._send(400, bad_client)
            if client_id != emu.client_id or secret != emu.client_secret:
                return self._send(400, bad_client)
            return self._send(200, emu.issue_token())
        if grant == JWT_GRANT:
            claims = _jwt_claims(form.get("assertion", ""))
            if claims is None:
                return self._send(400, {"error": "invalid_grant", "error_description": "invalid assertion"})
            if claims.get("iss") != emu.client_id:
                return self._send(400, bad_client)
            audiences = claims.get("aud")
            audiences = audiences if isinstance(audiences, list) else [audiences]
            allowed = {a.rstrip("/") for a in (*JWT_AUDIENCES, *emu.site_urls)}
            if not any(isinstance(a, str) and a.rstrip("/") in allowed for a in audiences):
                return self._send(400, {"error": "invalid_grant",
                                        "error_description": "audience is invalid"})
            exp = claims.get("exp")
            if not claims.get("sub") or not isinstance(exp, (int, float)) or exp <= time.time():
                return self._send(400, {"error": "invalid_grant",
                                        "error_description": "expired authorization code"})
            return self._send(200, emu.issue_token())
        self._send(400, {"error": "unsupported_grant_type",
                         "error_description": "grant type not supported"})

    def _userinfo(self) -> None:
        """GET /services/oauth2/userinfo: who the token belongs to (OpenID Connect userinfo)."""
        emu = self.server.emulator
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not emu.token_valid(token.strip()):
            return self._send(403, {"error": "invalid_token", "error_description": "Bad_OAuth_Token"})
        org = emu.org
        user = org.get(org.user_id) or {}
        return self._send(200, {
            "sub": f"{emu.url}/id/{org.org_id}/{org.user_id}", "user_id": org.user_id,
            "organization_id": org.org_id, "preferred_username": user.get("Username"),
            "name": user.get("Name"), "active": True, "user_type": "STANDARD"})

    # ------------------------------------------------------------------ REST API

    def _api(self, emu: Emulator, method: str, path: list[str]) -> None:
        auth = self.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() not in ("bearer", "oauth") or not emu.token_valid(token.strip()):
            return self._send(401, [{"message": "Session expired or invalid",
                                     "errorCode": "INVALID_SESSION_ID"}])
        kind, handler = self._route(method, path)
        allowed, usage = emu.count_call(kind)
        headers = {"Sforce-Limit-Info": usage}
        if not allowed:
            return self._send(403, [{"message": "TotalRequests Limit exceeded.",
                                     "errorCode": "REQUEST_LIMIT_EXCEEDED"}], headers)
        if emu.faults.latency_ms:
            time.sleep(emu.faults.latency_ms / 1000)
        fault = emu.faults.request_fault(unquote(self.path) + self._body.decode("utf-8", "replace"))
        if fault is not None:
            return self._send(fault[0], fault[1], headers)
        try:
            with emu.org.request_options(RequestOptions.from_headers(self.headers, self._version)):
                status, body = handler()
        except ApiError as exc:
            status, body = exc.status, exc.body
        self._send(status, body, headers)

    def _route(self, method: str, p: list[str]) -> tuple[str, Callable[[], tuple[int, Any]]]:
        """(call kind for counting, handler) for a path below /services/data/vXX.X/."""
        def allow(*methods: str) -> None:
            if method not in methods:
                raise ApiError(405, "METHOD_NOT_ALLOWED",
                               f"HTTP Method '{method}' not allowed. Allowed are {','.join(methods)}")

        def guarded(fn: Callable[[], tuple[int, Any]], *methods: str) -> Callable[[], tuple[int, Any]]:
            def run() -> tuple[int, Any]:
                allow(*methods)
                return fn()
            return run

        n = len(p)
        if n == 0:
            v = f"/services/data/v{self._version}"
            return "other", guarded(lambda: (200, {"sobjects": v + "/sobjects", "query": v + "/query",
                                                   "limits": v + "/limits",
                                                   "composite": v + "/composite"}), "GET")
        head = p[0]
        if head == "limits" and n == 1:
            return "limits", guarded(self._limits, "GET")
        if head in ("query", "queryAll"):
            if n == 1:
                return "query", guarded(lambda: self._query(include_deleted=head == "queryAll"), "GET")
            if n == 2:
                return "query", guarded(lambda: self._query_more(p[1]), "GET")
        if head == "sobjects":
            if n == 1:
                return "describe", guarded(lambda: (200, describe_global(self._objects)), "GET")
            if n == 2 and method == "GET":
                return "describe", lambda: (200, {"objectDescribe": self._describe(p[1])[1],
                                                  "recentItems": []})
            if n == 2:
                return "sobject", guarded(lambda: self._create_one(p[1]), "POST")
            if n == 3 and p[2] == "describe":
                return "describe", guarded(lambda: self._describe(p[1]), "GET")
            if n == 3:
                return "sobject", guarded(lambda: self._by_id(method, p[1], p[2]),
                                          "GET", "PATCH", "DELETE")
            if n == 4:
                return "sobject", guarded(lambda: self._by_external_id(method, p[1], p[2], p[3]),
                                          "GET", "PATCH")
        # GET /services/data/vXX.X/tooling/query/?q=... (Tooling API Developer Guide, "query";
        # answers in automation.py).
        if head == "tooling" and p[1:2] == ["query"]:
            return "query", guarded(lambda: tooling_query(self.server.emulator.org, self._params), "GET")
        if p == ["composite"]:
            return "composite", guarded(self._composite, "POST")
        if p[:2] == ["composite", "sobjects"]:
            if n == 2:
                kind = {"POST": "collections_create", "PATCH": "collections_update",
                        "DELETE": "collections_delete"}.get(method, "collections")
                return kind, guarded(lambda: self._collection(method), "POST", "PATCH", "DELETE")
            if n == 4:
                return "collections_upsert", guarded(lambda: self._collection_upsert(p[2], p[3]),
                                                     "PATCH")
        return "other", lambda: (404, NOT_FOUND)

    # ------------------------------------------------------------------ handlers

    def _composite(self) -> tuple[int, Any]:
        """POST /composite (rules and sources in :mod:`.composite`)."""
        try:
            return composite.run(self, reorder=self.server.emulator.faults.composite_reorder)
        except composite.ApiFailure as exc:
            raise ApiError(exc.status, exc.code, str(exc)) from None

    def _object(self, name: str) -> str:
        sobject = self.server.emulator.org.resolve_object(name)
        if sobject is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        return sobject

    def _describe(self, name: str) -> tuple[int, Any]:
        return 200, describe_object(self._objects, self._object(name))

    @property
    def _objects(self) -> dict[str, Any]:
        return self.server.emulator.org.objects

    def _limits(self) -> tuple[int, Any]:
        org = self.server.emulator.org
        with org.lock:
            used, top = org.api_used, org.api_max
        def pair(m: int, r: int) -> dict[str, int]:
            return {"Max": m, "Remaining": r}
        return 200, {"DailyApiRequests": pair(top, max(top - used, 0)),
                     "DailyBulkApiBatches": pair(15000, 15000),
                     "DailyBulkV2QueryJobs": pair(10000, 10000),
                     "DailyAsyncApexExecutions": pair(250000, 250000),
                     "DataStorageMB": pair(5120, 5100), "FileStorageMB": pair(5120, 5120),
                     "ConcurrentAsyncGetReportInstances": pair(200, 200)}

    def _record_url(self, sobject: str, record_id: str) -> str:
        return f"/services/data/v{self._version}/sobjects/{sobject}/{record_id}"

    def _query(self, include_deleted: bool = False) -> tuple[int, Any]:
        from .soql import SoqlError

        text = self._params.get("q")
        if not text:
            raise ApiError(400, "MALFORMED_QUERY", "A query string must be provided")
        org = self.server.emulator.org
        try:
            with org.lock:
                compiled, rows = org.run_query(text, include_deleted)
        except SoqlError as exc:
            raise ApiError(400, exc.code, exc.message) from None
        if compiled.query.count:
            return 200, {"totalSize": len(rows), "done": True, "records": []}
        # Stored records are never mutated in place, so formatting outside the lock is safe.
        sobject, fields = compiled.sobject, compiled.fields
        out = [{"attributes": {"type": sobject, "url": self._record_url(sobject, r["Id"])},
                **{f: r[f] for f in fields}} for r in rows]
        return 200, self._page(sobject, out, len(out))

    def _page(self, sobject: str, rows: list[dict[str, Any]], total: int) -> dict[str, Any]:
        size = QUERY_PAGE
        options = self.headers.get("Sforce-Query-Options", "")
        if "batchSize=" in options:
            try:
                size = min(max(int(options.split("batchSize=")[1].split(",")[0]), 200), QUERY_PAGE)
            except ValueError:
                pass
        locator = self.server.emulator.new_locator(sobject, rows, size) if total > size else ""
        return self._slice(locator, rows, 0, size)

    def _slice(self, locator: str, rows: list[dict[str, Any]], start: int, size: int) -> dict[str, Any]:
        end = start + size
        page: dict[str, Any] = {"totalSize": len(rows), "done": end >= len(rows),
                                "records": rows[start:end]}
        if not page["done"]:
            page["nextRecordsUrl"] = f"/services/data/v{self._version}/query/{locator}-{end}"
        return page

    def _query_more(self, locator: str) -> tuple[int, Any]:
        base, _, offset = locator.partition("-")
        found = self.server.emulator.locator_rows(base)
        if found is None or not offset.isdigit():
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        _, rows, size = found
        return 200, self._slice(base, rows, int(offset), size)

    # ------------------------------------------------------------------ single records

    def _fields_body(self) -> dict[str, Any]:
        body = self._json_body()
        if not isinstance(body, dict):
            raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
        return {k: v for k, v in body.items() if k != "attributes"}

    def _create_one(self, name: str) -> tuple[int, Any]:
        sobject = self._object(name)
        fields = self._fields_body()
        org = self.server.emulator.org
        try:
            with org.lock:
                record_id = org.create(sobject, fields)
        except RecordError as exc:
            return 400, exc.as_response()
        return 201, {"id": record_id, "success": True, "errors": []}

    def _record_out(self, sobject: str, record: dict[str, Any]) -> dict[str, Any]:
        wanted = self._params.get("fields")
        names = list(self._objects[sobject]["fields"])
        if wanted:
            lookup = {n.lower(): n for n in names}
            names = [lookup[w.strip().lower()] for w in wanted.split(",") if w.strip().lower() in lookup]
        return {"attributes": {"type": sobject, "url": self._record_url(sobject, record["Id"])},
                **{n: record[n] for n in names}}

    def _by_id(self, method: str, name: str, record_id: str) -> tuple[int, Any]:
        sobject = self._object(name)
        org = self.server.emulator.org
        with org.lock:
            found = org.lookup(record_id)
            if found is None or found[0] != sobject:
                return 404, [{"errorCode": "NOT_FOUND", "message":
                              f"Provided external ID field does not exist or is not accessible: {record_id}"}]
            if found[1]["IsDeleted"]:
                return 404, [{"errorCode": "ENTITY_IS_DELETED", "message": "entity is deleted",
                              "fields": []}]
            if method == "GET":
                return 200, self._record_out(sobject, found[1])
            try:
                if method == "DELETE":
                    org.delete_by_id(record_id)
                else:
                    fields = self._fields_body()
                    if normalise_id(fields.get("Id")) == found[1]["Id"]:
                        fields.pop("Id")  # echoing the record's own Id is harmless
                    org.update_by_id(sobject, record_id, fields)
            except RecordError as exc:
                return 400, exc.as_response()
        return 204, None

    def _by_external_id(self, method: str, name: str, field: str, value: str) -> tuple[int, Any]:
        sobject = self._object(name)
        org = self.server.emulator.org
        meta = self._objects[sobject]["fields"]
        ext = next((f for f in meta if f.lower() == field.lower()), None)
        if ext is None or not meta[ext]["external_id"]:
            return 404, [{"errorCode": "NOT_FOUND", "message":
                          f"Provided external ID field does not exist or is not accessible: {field}"}]
        with org.lock:
            matches = org.find_by_external_id(sobject, ext, value)
            if len(matches) > 1:
                return 300, [self._record_url(sobject, m) for m in matches]
            if method == "GET":
                if not matches:
                    return 404, NOT_FOUND
                return 200, self._record_out(sobject, org.lookup(matches[0])[1])  # type: ignore[index]
            fields = self._fields_body()
            given = next((k for k in fields if k.lower() == ext.lower()), None)
            if given is not None and fields.pop(given) != value:
                return 400, [{"message": f"{ext} in the body does not match the URL value",
                              "errorCode": "INVALID_FIELD", "fields": [ext]}]
            try:
                record_id, created = org.upsert(sobject, ext, {**fields, ext: value})
            except RecordError as exc:
                return 400, exc.as_response()
        return (201 if created else 200), {"id": record_id, "success": True, "errors": [],
                                           "created": created}

    # ------------------------------------------------------------------ sObject Collections

    def _collection_records(self) -> tuple[list[dict[str, Any]], bool]:
        body = self._json_body()
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise ApiError(400, "JSON_PARSER_ERROR", "Expected a JSON object with a records array")
        records = body["records"]
        if len(records) > MAX_COLLECTION:
            raise ApiError(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more "
                           f"than {MAX_COLLECTION} records into this call")
        all_or_none = body.get("allOrNone", False)
        if not isinstance(all_or_none, bool):
            raise ApiError(400, "JSON_PARSER_ERROR", "allOrNone must be a boolean")
        for rec in records:
            if not isinstance(rec, dict):
                raise ApiError(400, "JSON_PARSER_ERROR", "Each record must be a JSON object")
        return records, all_or_none

    def _record_type(self, rec: dict[str, Any]) -> str:
        attrs = rec.get("attributes")
        name = attrs.get("type") if isinstance(attrs, dict) else None
        if not isinstance(name, str) or not name:
            raise ApiError(400, "INVALID_TYPE", "Must send a concrete entity type.")
        sobject = self.server.emulator.org.resolve_object(name)
        if sobject is None:
            raise ApiError(400, "INVALID_TYPE", f"sObject type '{name}' is not supported.")
        return sobject

    def _collection(self, method: str) -> tuple[int, Any]:
        emu = self.server.emulator
        org, faults = emu.org, emu.faults
        if method == "DELETE":
            return self._collection_delete()
        records, all_or_none = self._collection_records()
        types = [self._record_type(r) for r in records]

        def locked(sobject: str) -> None:
            if faults.take_row_lock(sobject):
                raise RecordError("UNABLE_TO_LOCK_ROW",
                                  "unable to obtain exclusive access to this record or 1 records", [])

        def row(rec: dict[str, Any], sobject: str) -> Callable[[], dict[str, Any]]:
            fields = {k: v for k, v in rec.items() if k != "attributes"}

            def run() -> dict[str, Any]:
                locked(sobject)
                if method == "POST":
                    if any(k.lower() == "id" for k in fields):
                        raise RecordError("INVALID_FIELD_FOR_INSERT_UPDATE",
                                          "cannot specify Id in an insert call", ["Id"])
                    return {"id": org.create(sobject, fields), "success": True, "errors": []}
                rest = {k: v for k, v in fields.items() if k.lower() != "id"}
                record_id = next((v for k, v in fields.items() if k.lower() == "id"), None)
                if not record_id:
                    raise RecordError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
                return {"id": org.update_by_id(sobject, record_id, rest), "success": True,
                        "errors": []}
            return run

        results = org.run_rows(
            [row(r, t) for r, t in zip(records, types)], all_or_none,
            failed=lambda exc: {"id": None, "success": False, "errors": exc.as_results()},
            rolled_back=lambda: {"id": None, "success": False, "errors": _rolled_back()})
        return 200, results

    def _collection_upsert(self, name: str, field: str) -> tuple[int, Any]:
        emu = self.server.emulator
        org, faults = emu.org, emu.faults
        sobject = self._object(name)
        meta = self._objects[sobject]["fields"]
        ext = next((f for f in meta if f.lower() == field.lower()), None)
        if ext is None or not meta[ext]["external_id"]:
            raise ApiError(400, "INVALID_FIELD", f"Field name provided, {field} is not an External "
                           f"ID or indexed field for {sobject}")
        records, all_or_none = self._collection_records()
        for rec in records:
            if self._record_type(rec) != sobject:
                raise ApiError(400, "INVALID_TYPE", f"All records must be of type {sobject}")

        def key(rec: dict[str, Any]) -> Any:
            value = next((v for k, v in rec.items() if k.lower() == ext.lower()), None)
            if isinstance(value, str) and not meta[ext]["case_sensitive"]:
                return value.lower()
            return value

        keys = [key(r) for r in records]
        seen = collections.Counter(k for k in keys if k not in (None, ""))

        def row(rec: dict[str, Any], k: Any) -> Callable[[], dict[str, Any]]:
            fields = {kk: v for kk, v in rec.items() if kk != "attributes"}
            ext_value = next((v for kk, v in fields.items() if kk.lower() == ext.lower()), None)
            if ext_value is not None:  # canonical spelling, so org.upsert finds it
                fields = {kk: v for kk, v in fields.items() if kk.lower() != ext.lower()}
                fields[ext] = ext_value

            def run() -> dict[str, Any]:
                if k not in (None, "") and seen[k] > 1:
                    raise RecordError("DUPLICATE_VALUE",
                                      f"Duplicate external id specified: {ext_value}", [ext])
                if faults.take_row_lock(sobject):
                    raise RecordError("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access "
                                      "to this record or 1 records", [])
                record_id, created = org.upsert(sobject, ext, fields)
                return {"id": record_id, "success": True, "errors": [], "created": created}
            return run

        results = org.run_rows(
            [row(r, k) for r, k in zip(records, keys)], all_or_none,
            failed=lambda exc: {"id": None, "success": False, "errors": exc.as_results(),
                                "created": False},
            rolled_back=lambda: {"id": None, "success": False, "errors": _rolled_back(),
                                 "created": False})
        return 200, results

    def _collection_delete(self) -> tuple[int, Any]:
        org = self.server.emulator.org
        ids = [i for i in self._params.get("ids", "").split(",") if i]
        if not ids:
            raise ApiError(400, "MISSING_ARGUMENT", "ids parameter is required")
        if len(ids) > MAX_COLLECTION:
            raise ApiError(400, "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more "
                           f"than {MAX_COLLECTION} records into this call")
        all_or_none = self._params.get("allOrNone", "false").lower() == "true"

        def row(record_id: str) -> Callable[[], dict[str, Any]]:
            return lambda: {"id": org.delete_by_id(record_id), "success": True, "errors": []}

        return 200, org.run_rows(
            [row(i) for i in ids], all_or_none,
            failed=lambda exc: {"id": None, "success": False, "errors": exc.as_results()},
            rolled_back=lambda: {"id": None, "success": False, "errors": _rolled_back()})


def _rolled_back() -> list[dict[str, Any]]:
    from .org import ROLLED_BACK

    return [{"statusCode": ROLLED_BACK[0], "message": ROLLED_BACK[1], "fields": []}]


def _jwt_claims(assertion: str) -> dict[str, Any] | None:
    """The JWT's payload, decoded without verifying the signature (the emulator trusts iss)."""
    parts = assertion.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None
