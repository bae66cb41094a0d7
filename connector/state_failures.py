"""How a state-store failure is named to an operator: which store (the one configured, its
password masked), what failed (opening it, or a write such as a full disk) and that nothing was
lost. Used by the CLI's one error mapping, the run's orchestration and the runner.

Every backend error arrives as :class:`connector.errors.StateUnavailable` (wrapped once at the
store's edge, connector/state/sql.py); an OSError is the run lock's file beside a SQLite store.
"""

from __future__ import annotations

import errno
from urllib.parse import urlsplit

from connector.config import StateConfig
from connector.errors import StateUnavailable

# A write refused because there is no room: SQLite's SQLITE_FULL / SQLITE_IOERR texts, the OS's
# ENOSPC / EFBIG (a file-size limit) / EDQUOT, PostgreSQL's SQLSTATE class 53 (insufficient resources).
_NO_ROOM_TEXTS = ("database or disk is full", "disk i/o error", "no space left", "file too large",
                  "could not extend file", "disk quota")
_NO_ROOM_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
NO_ROOM = "no room left: a full disk or a file-size limit"


def masked(url: str) -> str:
    """The URL without its password (host, port and query as written), for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return parts._replace(netloc=f"{user}:***@{netloc[1]}").geturl()


def store_location(state: StateConfig) -> str:
    """The store actually configured: the PostgreSQL URL (password masked) when set, else the path."""
    return masked(state.url) if state.url else str(state.path)


def is_backend_error(exc: BaseException) -> bool:
    """The state store failing: its StateUnavailable, or the OS refusing the run lock's file."""
    modules = {c.__module__.split(".")[0] for c in type(exc).__mro__}
    if modules & {"requests", "urllib3", "botocore"}:
        return False    # a network error of Salesforce's or SQS's client (requests' are OSErrors)
    return isinstance(exc, StateUnavailable | OSError)


def _first_failure(exc: BaseException) -> BaseException:
    """The backend error the failure started with: a rollback that fails after a refused write
    ("cannot rollback - no transaction is active") hides the write's own error in its context."""
    seen = {id(exc)}
    while exc.__context__ is not None and id(exc.__context__) not in seen and is_backend_error(exc.__context__):
        exc = exc.__context__
        seen.add(id(exc))
    return exc


def detail_of(exc: BaseException) -> str:
    """The cause in one line: a StateUnavailable's own cause, else the first error's first line."""
    text = getattr(exc, "cause", "") or str(_first_failure(exc))
    return text.splitlines()[0] if text else type(exc).__name__


def no_room(exc: BaseException) -> bool:
    """True when the failure reads as a full disk (or a file-size or quota limit)."""
    first = _first_failure(exc)
    if isinstance(first, OSError) and first.errno in _NO_ROOM_ERRNOS:
        return True
    if str(getattr(first, "sqlstate", "") or "").startswith("53"):
        return True
    text = f"{getattr(exc, 'cause', '')} {first}".lower()
    return any(t in text for t in _NO_ROOM_TEXTS)


def state_failed(exc: BaseException, state: StateConfig) -> str:
    """One line for a store that could not be opened, read, migrated or written by a command
    outside a run (exit 1): the store actually configured, and a full disk named as such."""
    location = getattr(exc, "location", "") or store_location(state)
    if no_room(exc):
        return f"a write to the state store at {location} failed ({NO_ROOM}): {detail_of(exc)}"
    return f"cannot open the state store at {location}: {detail_of(exc)}"


def write_failed(exc: BaseException, location: str, *, taken: bool = True) -> str:
    """One line for a store that failed while a run was using it (exit 75): what failed and that
    nothing was lost (a message leaves the queue only after its outcome is committed)."""
    location = getattr(exc, "location", "") or location
    what = f"a write failed ({NO_ROOM})" if no_room(exc) else "a read or write failed"
    kept = ("nothing was lost: messages whose outcome was not committed stay in the queue for the next run"
            if taken else "nothing was lost: no message was taken")
    return f"state store at {location}: {what}: {detail_of(exc)}; {kept}"


def as_unavailable(exc: BaseException, location: str, *, taken: bool = True) -> StateUnavailable:
    """The failure as a StopRun (exit 75) whose message says what failed and that nothing was lost."""
    return StateUnavailable(write_failed(exc, location, taken=taken), location=location, cause=detail_of(exc))
