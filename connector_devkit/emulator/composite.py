"""POST /composite: up to 25 subrequests in one API call, later ones using earlier results.

Rules, each from the REST API Developer Guide, "Composite" (resources_composite_composite_post)
and "Composite Request Body" (requests_composite), unless said otherwise:

- At most 25 subrequests, of which at most 5 are sObject Collections or query (Query, QueryAll)
  subrequests; the whole series counts as one API call.
- ``@{referenceId.field}`` and ``@{referenceId[0].id}`` (``.`` into a JSON object, ``[n]`` into
  an array, e.g. ``@{refQuery.records[0].Id}`` or a collection result's ``@{refRows[0].id}``) in
  a subrequest's url or body take a value from an earlier subrequest's response.
- A reference that has no value (the referenced subrequest failed, the path is missing, an index
  is out of range, the referenceId is unknown or comes later) fails only the dependent
  subrequest with 400 PROCESSING_HALTED "Invalid reference specified. No value for
  ref[1].id found in ref." (the guide's examples "Behavior and Responses If There Are Illegal
  Characters in Reference IDs" and "Behavior for References to Null Fields"); with allOrNone
  false the others run ("the remaining subrequests that don't depend on the failed subrequest
  are executed. Dependent subrequests aren't executed").
- A null field resolves (to null, or "" inside a longer string) when the parent is an sObject
  Rows request (API 52.0 and later, "Behavior for References to Null Fields"); a null elsewhere
  (a failed collection row's id) has no value.
- allOrNone true: the first failed subrequest (HTTP status 400 or more) rolls back everything and
  every other subrequest answers 400 PROCESSING_HALTED "We rolled back the transaction since
  another operation in the same transaction failed." (text as recorded in
  heroku/heroku-applink-nodejs mappings/composite-graph-multiple-errors.json). An sObject
  Collections subrequest answers 200 with per-row results and "behaves according to its value of
  allOrNone" (resources_composite_allornone).
- collateSubrequests (default true from API 49.0, false in 48.0): when true "the order of
  execution is not guaranteed (unless there is an explicit dependency between the subrequests)";
  "Subrequests that contain valid HTTP headers are not collated"; when false they run in the
  order received. The emulator runs them in order unless a test sets
  ``emu.faults.composite_reorder = True``, which then runs collatable subrequests in reverse order
  (dependencies first), so code that needs order must say ``collateSubrequests: false``.
- Headers: a subrequest carries its own ``httpHeaders``; ``Sforce-Auto-Assign`` and
  ``Sforce-Duplicate-Rule-Header`` given on the top-level request also reach every subrequest
  (a subrequest's own value wins). The guide lists the headers subrequests inherit (Accept,
  Authorization, Content-Type) and says nothing of these two; the emulator applies them so a
  client that sends them on both levels is honoured either way.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from .rules import RequestOptions

if TYPE_CHECKING:  # the handler lives in server.py, which imports this module
    from .server import _Handler

# "You can have up to 25 subrequests in a single call. Up to 5 of these subrequests can be sObject
# Collections or query operations" (REST API Developer Guide, Composite, POST:
# developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_composite_post.htm).
MAX_SUBREQUESTS = 25
MAX_HEAVY = 5
REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")
PATH_PART = re.compile(r"\.([A-Za-z0-9_]+)|\[(\d+)\]")
FORWARDED = ("Sforce-Auto-Assign", "Sforce-Duplicate-Rule-Header")
# PROCESSING_HALTED text as recorded (2021) in heroku/heroku-applink-nodejs
# mappings/composite-graph-multiple-errors.json; body key order errorCode, message as there.
ROLLED_BACK = "We rolled back the transaction since another operation in the same transaction failed."


class _Headers(dict):
    """Header names compared without case, as HTTP does."""

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)


class Unresolved(Exception):
    def __init__(self, text: str, name: str):
        super().__init__(f"Invalid reference specified. No value for {text} found in {name}.")


class ApiFailure(Exception):
    """A whole-request refusal (the server turns it into its ApiError)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code = status, code


def _validate(body: Any) -> tuple[list[dict[str, Any]], bool, bool | None]:
    """The whole-request refusals. The limits are documented (see MAX_SUBREQUESTS); no recording
    of these refusals exists, so the codes and texts are inferred: JSON_PARSER_ERROR as for any
    body that does not fit the request's shape (its REAL-PASTE texts in restforce #619 and
    developer comments), LIMIT_EXCEEDED naming the documented limit. Counting a subrequest as a
    query or Collections one by its url is the emulator's own reading of that limit."""
    reqs = body.get("compositeRequest") if isinstance(body, dict) else None
    if not isinstance(reqs, list) or not reqs or not all(isinstance(r, dict) for r in reqs):
        raise ApiFailure(400, "JSON_PARSER_ERROR", "compositeRequest must be a non-empty array of objects")
    if len(reqs) > MAX_SUBREQUESTS:
        raise ApiFailure(400, "LIMIT_EXCEEDED",
                         f"A composite request can have at most {MAX_SUBREQUESTS} subrequests")
    heavy = sum(1 for r in reqs if any(k in str(r.get("url", "")) for k in ("/query", "/composite/sobjects")))
    if heavy > MAX_HEAVY:
        raise ApiFailure(400, "LIMIT_EXCEEDED", "A composite request can have at most "
                         f"{MAX_HEAVY} query or sObject Collections subrequests")
    all_or_none, collate = body.get("allOrNone", False), body.get("collateSubrequests")
    if not isinstance(all_or_none, bool) or not isinstance(collate, (bool, type(None))):
        raise ApiFailure(400, "JSON_PARSER_ERROR", "allOrNone and collateSubrequests must be booleans")
    return reqs, all_or_none, collate


def _refs_in(req: dict[str, Any]) -> set[str]:
    text = str(req.get("url", "")) + json.dumps(req.get("body"))
    return {m.group(1) for m in REFERENCE.finditer(text)}


def execution_order(reqs: list[dict[str, Any]], reorder: bool) -> list[int]:
    """Indices in the order they run: as listed, or (reorder) collatable ones reversed with each
    subrequest still after the earlier subrequests it references."""
    if not reorder:
        return list(range(len(reqs)))
    collatable = [i for i, r in enumerate(reqs) if not r.get("httpHeaders")]
    slots = dict(zip(collatable, reversed(collatable)))
    proposed = [slots.get(i, i) for i in range(len(reqs))]
    index_of = {r.get("referenceId"): i for i, r in enumerate(reqs)}
    deps = {i: {index_of[n] for n in _refs_in(r) if index_of.get(n, len(reqs)) < i}
            for i, r in enumerate(reqs)}
    order: list[int] = []
    while proposed:
        pick = next(i for i in proposed if deps[i] <= set(order))
        proposed.remove(pick)
        order.append(pick)
    return order


def _resolve_value(name: str, path: str, earlier: dict[str, tuple[int, Any, bool]]) -> Any:
    text = name + path
    if name not in earlier:
        raise Unresolved(text, name)
    status, node, rows_parent = earlier[name]
    if status >= 400:
        raise Unresolved(text, name)
    for key, index in PATH_PART.findall(path):
        if key and isinstance(node, dict) and key in node:
            node = node[key]
        elif index and isinstance(node, list) and int(index) < len(node):
            node = node[int(index)]
        else:
            raise Unresolved(text, name)
    if isinstance(node, (dict, list)) or (node is None and not rows_parent):
        raise Unresolved(text, name)
    return node


def resolve(node: Any, earlier: dict[str, tuple[int, Any, bool]]) -> Any:
    """``node`` (a url string or a JSON body) with every @{...} reference replaced."""
    if isinstance(node, dict):
        return {k: resolve(v, earlier) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v, earlier) for v in node]
    if not isinstance(node, str) or "@{" not in node:
        return node
    whole = REFERENCE.fullmatch(node)
    if whole:
        return _resolve_value(whole.group(1), whole.group(2), earlier)

    def text(match: re.Match[str]) -> str:
        value = _resolve_value(match.group(1), match.group(2), earlier)
        if value is None:
            return ""
        return json.dumps(value) if isinstance(value, bool) else str(value)
    return REFERENCE.sub(text, node)


def run(handler: _Handler, reorder: bool = False) -> tuple[int, Any]:
    """The /composite handler: (200, {"compositeResponse": [...]}) in the request's order."""
    reqs, all_or_none, collate = _validate(handler._json_body())
    version = float(handler._version) if handler._version.replace(".", "").isdigit() else 62.0
    # Default of collateSubrequests: true from API 49.0 (REST API Developer Guide, "Composite
    # Request Body", requests_composite); an unreadable version counts as the emulator's newest.
    if collate is None:
        collate = version >= 49.0
    top = {name.lower(): handler.headers.get(name) for name in FORWARDED if handler.headers.get(name)}
    org = handler.server.emulator.org
    answers: dict[int, tuple[int, Any, dict[str, str]]] = {}
    earlier: dict[str, tuple[int, Any, bool]] = {}
    failed_at: int | None = None
    saved = (handler._params, handler._body)
    try:
        with org.lock, org.transaction():
            for i in execution_order(reqs, collate and reorder):
                if failed_at is not None:
                    break
                visible = {reqs[j].get("referenceId"): earlier[reqs[j].get("referenceId")]
                           for j in range(i) if reqs[j].get("referenceId") in earlier}
                status, body, headers, rows_parent = _one(handler, reqs[i], visible, top)
                answers[i] = (status, body, headers)
                ref = reqs[i].get("referenceId")
                if isinstance(ref, str) and ref:
                    earlier[ref] = (status, body, rows_parent)
                if all_or_none and status >= 400:
                    failed_at = i
                    org.rollback()
    finally:
        handler._params, handler._body = saved
    halted = (400, [{"errorCode": "PROCESSING_HALTED", "message": ROLLED_BACK}], {})
    # The top level answers 200 even when a subrequest failed, and each subresponse's keys come in
    # the order body, httpHeaders, httpStatusCode, referenceId (REAL-REC SFDO-Tooling/CumulusCI
    # cumulusci/utils/salesforce/tests/cassettes/TestCountSObjects.test_count_sobjects__errors.yaml).
    out = []
    for i, r in enumerate(reqs):
        status, body, headers = answers[i] if failed_at is None or i == failed_at else halted
        out.append({"body": body, "httpHeaders": headers, "httpStatusCode": status,
                    "referenceId": r.get("referenceId")})
    return 200, {"compositeResponse": out}


def _one(handler: _Handler, req: dict[str, Any], earlier: dict[str, tuple[int, Any, bool]],
         top: dict[str, str]) -> tuple[int, Any, dict[str, str], bool]:
    """Run one subrequest: (status, body, response headers, is an sObject Rows request)."""
    from .server import ApiError

    ref = req.get("referenceId")
    method = str(req.get("method", "GET")).upper()
    try:
        url = resolve(str(req.get("url", "")), earlier)
        body = resolve(req["body"], earlier) if "body" in req else None
    except Unresolved as exc:
        return 400, [{"errorCode": "PROCESSING_HALTED", "message": str(exc)}], {}, False
    parts = urlsplit(str(url))
    segs = [unquote(x) for x in parts.path.split("/")]
    while segs and segs[-1] == "":
        segs.pop()
    if segs[:3] != ["", "services", "data"] or len(segs) < 4 or not ref:
        # Inferred: no recording of a bad subrequest url or a missing referenceId; the guide
        # requires both (requests_composite). The code and text are the emulator's own.
        return 400, [{"errorCode": "INVALID_URL", "message": "bad subrequest url or referenceId"}], {}, False
    handler._params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    handler._body = json.dumps(body).encode() if "body" in req else b""
    own = req.get("httpHeaders") if isinstance(req.get("httpHeaders"), dict) else {}
    headers = _Headers({**top, **{str(k).lower(): v for k, v in own.items()}})
    path = segs[4:]
    try:
        _kind, route = handler._route(method, path)
        with handler.server.emulator.org.request_options(RequestOptions.from_headers(headers, handler._version)):
            status, rbody = route()
    except ApiError as exc:
        status, rbody = exc.status, exc.body
    out_headers: dict[str, str] = {}
    # A 201 create subresponse carries Location in its httpHeaders (REAL-REC
    # forcedotcom/sf-fx-runtime-java mappings/composite-graph-*.json; apache/camel
    # camel-salesforce .../api/dto/composite_response_example_failure.json); others carry {}.
    if status == 201 and isinstance(rbody, dict) and rbody.get("id") and len(path) >= 2:
        out_headers["Location"] = f"/services/data/{segs[3]}/sobjects/{path[1]}/{rbody['id']}"
    rows_parent = len(path) == 3 and path[0] == "sobjects" and method == "GET"
    return status, rbody, out_headers, rows_parent
