"""The operator's YAML configuration (the operator contract: README, Running it), loaded into pydantic models.

`${NAME}` is replaced from the environment anywhere in a value; unknown keys are errors;
relative paths resolve against the config file's folder; secrets are SecretStr. Every problem
is reported at once, each with its key path.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from connector.errors import ConfigError

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SqsConfig(_Strict):
    queue_url: str
    region: str
    endpoint_url: str | None = None
    allowed_topic_arns: list[str] = Field(default_factory=list)
    # With allowed_topic_arns set, bodies without an SNS envelope are refused unless the subscription
    # delivers raw (then the queue policy is the boundary). No allow-list: both forms are accepted.
    raw_delivery: bool = False
    # Additions to the contract (optional, with safe defaults):
    wait_seconds: int = Field(20, ge=0, le=20, description="long-poll wait")
    visibility_timeout: int = Field(120, ge=10, le=43200,
                                    description="seconds a held message stays hidden; renewed while held")
    # 1,000: five 200-record collections, so one /composite write call per object and batch.
    batch_messages: int = Field(1000, ge=1, le=5000, description="messages gathered into one plan/apply cycle")
    parallel_receives: int = Field(4, ge=1, le=20, description="receive calls in flight when the backlog is large")
    batch_window_seconds: float = Field(
        5, ge=0, le=300,   # measured: 20 msg/s → 20 calls per 1,000, p99 lag 5.7 s (README "What it costs")
        description="service mode: keep gathering until the batch is full, its first message has waited this long,"
                    " or its stream goes quiet")
    max_lag_seconds: float | None = Field(
        None, gt=0, le=300,   # when set, sizes the window from the recent batch duration (README "What it costs")
        description="service mode: the lag to aim for; the window becomes this minus twice the recent batch time")
    retry_attempts: int = Field(6, ge=1, le=20, description="SQS attempts on throttling or network errors")
    retry_base_seconds: float = Field(0.5, gt=0, description="first back-off between SQS attempts; doubles each time")
    retry_max_wait_seconds: float = Field(20, gt=0, description="longest back-off between SQS attempts")
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None


#: JWT bearer `aud` values Salesforce accepts besides an Experience Cloud site URL; never the My
#: Domain (Salesforce Help, "OAuth 2.0 JWT Bearer Flow for Server-to-Server Integration"; a wrong `aud`
#: answers `invalid_grant` "audience is invalid", as pasted in forcedotcom/cli issue #3325 and
#: omniphx/forrest issue #302).
JWT_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")


class AuthConfig(_Strict):
    method: Literal["client_credentials", "jwt", "access_token"]
    login_url: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    username: str | None = None
    private_key_file: Path | None = None
    access_token: SecretStr | None = None
    audience: str = Field("https://login.salesforce.com",
                          description="jwt: the assertion's aud; https://test.salesforce.com for sandboxes")

    @model_validator(mode="after")
    def _needs(self, info: ValidationInfo) -> AuthConfig:
        if (info.context or {}).get("offline"):
            return self     # a command that never talks to Salesforce (status, quarantine...)
        need = {
            "client_credentials": ("login_url", "client_id", "client_secret"),
            "jwt": ("login_url", "client_id", "username", "private_key_file"),
            "access_token": ("access_token",),
        }[self.method]
        missing = [k for k in need if getattr(self, k) in (None, "")]
        if missing:
            raise ValueError(f"auth method {self.method} needs: {', '.join(missing)}")
        return self


class InstanceFilter(_Strict):
    """Which Jomablue instances (the `{instance}` part of ids) this connector accepts."""

    accept: list[str] = Field(default_factory=list, description="empty: every instance")
    skip: list[str] = Field(default_factory=list)

    def allows(self, instance: str | None) -> bool:
        if instance is None:
            return True
        if instance in self.skip:
            return False
        return not self.accept or instance in self.accept


class SalesforceConfig(_Strict):
    instance_url: str
    api_version: str = "62.0"
    ca_bundle: Path | None = None
    auth: AuthConfig
    requests_per_second: float = Field(5, gt=0)
    max_in_flight: int = Field(2, ge=1, le=25)
    daily_api_budget: float = Field(0.8, gt=0, le=1)
    timeout_seconds: float = Field(60, gt=0)
    retry_attempts: int = Field(6, ge=1, le=20)
    retry_max_wait_seconds: float = Field(30, gt=0)
    retry_base_seconds: float = Field(0.5, gt=0)
    lead_assignment_rules: Literal["keep", "run"] = Field(
        "keep", description="keep: Sforce-Auto-Assign FALSE on writes; run: the org's active rule reassigns")
    duplicate_rules: Literal["respect", "allow_save"] = Field(
        "respect", description="respect: a duplicate rule's block quarantines; allow_save: allowSave=true")

    def write_headers(self) -> dict[str, str]:
        """Headers every write carries, from the two settings above (REST API Developer Guide:
        "Assignment Rule Header" and "Duplicate Rule Header")."""
        headers = {}
        if self.lead_assignment_rules == "keep":
            # REST defaults Sforce-Auto-Assign to TRUE: every Lead create/update re-runs the
            # active assignment rule unless told otherwise.
            headers["Sforce-Auto-Assign"] = "FALSE"
        if self.duplicate_rules == "allow_save":
            # Rules set to Alert then let the save through; rules set to Block still block.
            headers["Sforce-Duplicate-Rule-Header"] = "allowSave=true"
        return headers


class StateConfig(_Strict):
    path: Path = Path("state/connector.db")
    lock_wait_seconds: float = Field(
        0, ge=0, description="a second run on the same SQLite file waits this long for the first, then exits 75")
    # The shared store for replicas and disk-less containers; wins over path. The schema is the
    # first of the URL's search_path (?options=-csearch_path%3Dconnector), created when missing.
    url: str | None = None
    keep_days: float = Field(30, gt=0, description="outcome rows older than this are pruned (quarantined ones stay)")

    @model_validator(mode="after")
    def _postgres_only(self) -> StateConfig:
        if self.url is not None and not self.url.startswith(("postgresql://", "postgres://")):
            raise ValueError("url must be a PostgreSQL URL (postgresql://user@host:5432/db); "
                             "for a SQLite file use state.path")
        return self

    @property
    def location(self) -> Path | str:
        """Where the store is: the PostgreSQL URL when set, else the SQLite path."""
        return self.url or self.path


class MappingConfig(_Strict):
    path: Path | None = None


class JomablueConfig(_Strict):
    instances: InstanceFilter = Field(default_factory=InstanceFilter)


class LoggingConfig(_Strict):
    redact_personal_data: bool = Field(
        False, description="emails and names in logs, quarantine reasons and reports become stable hashes")
    # Optional: the key of the keyed hash. Without it, a random key is made once and kept in the
    # state store, so the same email gives the same hash on every run of this deployment.
    redaction_key: SecretStr | None = None


class MetricsConfig(_Strict):
    """Prometheus, health probes, CloudWatch EMF and the Pushgateway (README: Monitoring)."""

    port: int = Field(0, ge=0, le=65535,
                      description="service mode: serve /metrics, /healthz and /readyz on this port "
                                  "(all interfaces); 0: off")
    emf: bool = Field(False, description="every run: one CloudWatch Embedded Metric Format record on stdout")
    pushgateway_url: str | None = Field(None, description="every run: push the run's metrics to this Pushgateway")
    namespace: str = Field("JomablueConnector", min_length=1, description="the EMF record's CloudWatch namespace")


class Config(_Strict):
    sqs: SqsConfig
    salesforce: SalesforceConfig
    state: StateConfig = Field(default_factory=StateConfig)
    mapping: MappingConfig = Field(default_factory=MappingConfig)
    jomablue: JomablueConfig = Field(default_factory=JomablueConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    source_path: Path | None = Field(None, exclude=True)
    # Loaded for a command that never talks to Salesforce: its credentials may be unresolved.
    offline: bool = Field(False, exclude=True)


def _interpolate(node: Any, path: str, missing: list[str], tolerate: tuple[str, ...] = ()) -> Any:
    """Replace ${NAME} from the environment; a missing variable is a problem, except under the
    `tolerate` key paths, where the value becomes None (offline commands: no Salesforce secrets)."""
    if isinstance(node, dict):
        return {k: _interpolate(v, f"{path}.{k}" if path else str(k), missing, tolerate) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, f"{path}[{i}]", missing, tolerate) for i, v in enumerate(node)]
    if isinstance(node, str):
        unresolved: list[str] = []

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in os.environ:
                unresolved.append(name)
                return ""
            return os.environ[name]

        out = _ENV_REF.sub(sub, node)
        if unresolved:
            if any(path == t or path.startswith(t + ".") for t in tolerate):
                return None
            missing += [f"{path}: environment variable {name} is not set" for name in unresolved]
        return out
    return node


def _resolve(base: Path, p: Path | None) -> Path | None:
    if p is None:
        return None
    p = p.expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def _unreadable(config: Path, key: str, p: Path) -> str | None:
    """Why the file a setting names cannot be used, or None. `is_file()` itself raises when a
    folder on the way may not be searched; a file this process may not read fails only later."""
    try:
        if not p.is_file():
            return f"{config}: {key}: no such file: {p}"
        with p.open("rb"):
            return None
    except OSError as exc:
        return f"{config}: {key}: cannot read {p} ({exc.strerror or exc}); give the connector's user read access"


def load_config(path: Path | str, *, offline: bool = False) -> Config:
    """Load and validate a configuration file; raise ConfigError with every problem.

    `offline`: for commands that never call Salesforce (status, quarantine, offline mapping
    validate/preview): environment variables under `salesforce.auth` may be unset and the auth
    method's required keys may be missing. Such a Config cannot build a gateway.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such configuration file"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
                           "save the configuration as UTF-8"]) from None
    except OSError as exc:          # a directory, no permission...
        raise ConfigError([f"{path}: cannot read the configuration file ({exc.strerror or exc})"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: not valid YAML: {exc}"]) from None
    if not isinstance(raw, dict):
        raise ConfigError([f"{path}: the configuration must be a mapping of sections"])
    problems: list[str] = []
    data = _interpolate(raw, "", problems, ("salesforce.auth",) if offline else ())
    try:
        cfg = Config.model_validate(data, context={"offline": offline})
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{path}: {loc}: {msg}")
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError([f"{path}: {p}" for p in problems])
    base = path.resolve().parent
    sf = cfg.salesforce
    auth = sf.auth.model_copy(update={"private_key_file": _resolve(base, sf.auth.private_key_file)})
    sf = sf.model_copy(update={"ca_bundle": _resolve(base, sf.ca_bundle), "auth": auth})
    # Files the configuration names must be there now: found missing at the first TLS handshake or
    # token request, they would look like an outage (75) or a fatal run (1) instead of bad config.
    files = [("salesforce.ca_bundle", sf.ca_bundle)]
    if auth.method == "jwt":
        files.append(("salesforce.auth.private_key_file", auth.private_key_file))
    unreadable = [problem for key, p in files if p is not None and (problem := _unreadable(path, key, p))]
    if unreadable:
        raise ConfigError(unreadable)
    return cfg.model_copy(
        update={
            "salesforce": sf,
            "state": cfg.state.model_copy(update={"path": _resolve(base, cfg.state.path)}),
            "mapping": MappingConfig(path=_resolve(base, cfg.mapping.path)),
            "source_path": path.resolve(),
            "offline": offline,
        }
    )
