"""Configuration: embedded defaults, then config.toml, then GATEWAY_* variables, then flags.

Every key of `Config` has an environment variable named after its path:
`http` is GATEWAY_HTTP, `charger.heartbeat_interval` is
GATEWAY_CHARGER_HEARTBEAT_INTERVAL.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Mapping

import attrs
import cattrs

ENV_PREFIX = "GATEWAY_"


class ConfigError(ValueError):
    pass


def parse_address(text: str) -> tuple[str, int]:
    """'0.0.0.0:9000' or '[::1]:9000' -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def _address(_inst: Any, attribute: attrs.Attribute, value: str) -> None:
    try:
        parse_address(value)
    except ConfigError as exc:
        raise ConfigError(f"{attribute.name}: {exc}") from None


def _optional_address(inst: Any, attribute: attrs.Attribute, value: str) -> None:
    if value:
        _address(inst, attribute, value)


def _one_of(*choices: str):
    def check(_inst: Any, attribute: attrs.Attribute, value: str) -> None:
        if value not in choices:
            raise ConfigError(f"{attribute.name} must be one of {', '.join(choices)}, not {value!r}")

    return check


def _positive(_inst: Any, attribute: attrs.Attribute, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{attribute.name} must be greater than 0, not {value}")


def _not_negative(_inst: Any, attribute: attrs.Attribute, value: float) -> None:
    if value < 0:
        raise ConfigError(f"{attribute.name} must not be negative, not {value}")


def _time_of_day(_inst: Any, attribute: attrs.Attribute, value: str) -> None:
    hours, sep, minutes = value.partition(":")
    if value and not (sep and len(hours) == 2 and len(minutes) == 2 and hours.isdigit() and minutes.isdigit()
                      and int(hours) < 24 and int(minutes) < 60):
        raise ConfigError(f"{attribute.name} must be a time of day such as 10:30 (or empty), not {value!r}")


@attrs.define
class ChargerConfig:
    heartbeat_interval: int = attrs.field(default=60, validator=_positive)
    validation: str = attrs.field(default="lenient", validator=_one_of("lenient", "strict"))
    unknown_chargers: str = attrs.field(
        default="accept", validator=_one_of("accept", "pending", "reject")
    )
    unknown_id_tags: str = attrs.field(default="accept", validator=_one_of("accept", "reject"))
    call_timeout: float = attrs.field(default=30.0, validator=_positive)
    require_subprotocol: bool = False
    max_frame_bytes: int = attrs.field(default=65536, validator=_positive)
    ping_interval: float = attrs.field(default=30.0, validator=_not_negative)
    handshake_timeout: float = attrs.field(default=10.0, validator=_positive)
    max_calls_per_second: float = attrs.field(default=200.0, validator=_positive)
    max_pending_commands: int = attrs.field(default=20, validator=_positive)
    idle_heartbeats: float = attrs.field(default=2.0, validator=_positive)
    failed_handshakes: int = attrs.field(default=10, validator=_positive)  # per charger id and address per minute
    failed_handshake_ids: int = attrs.field(default=10, validator=_positive)  # failing ids per address per minute
    new_chargers_per_minute: int = attrs.field(default=30, validator=_positive)  # per address

    @property
    def idle_limit(self) -> float:
        """Seconds without any frame or pong after which a charger counts as gone."""
        return self.heartbeat_interval * self.idle_heartbeats + self.ping_interval


@attrs.define
class FramesConfig:
    retention_days: float = attrs.field(default=30.0, validator=_not_negative)
    flush_interval: float = attrs.field(default=0.5, validator=_positive)
    flush_size: int = attrs.field(default=500, validator=_positive)


@attrs.define
class AuditConfig:
    retention_days: float = attrs.field(default=365.0, validator=_not_negative)  # 0: kept forever


attrs.resolve_types(AuditConfig)  # as the classes below are: GATEWAY_AUDIT_* variables are read by type


@attrs.define
class RetentionConfig:
    meter_values_full_days: float = attrs.field(default=90.0, validator=_not_negative)  # kept whole this long
    # then one message per transaction per this many minutes kept whole, the others keep only the energy
    # register readings pricing reads; 0: never thinned
    meter_values_every_minutes: float = attrs.field(default=15.0, validator=_not_negative)
    commands_days: float = attrs.field(default=90.0, validator=_not_negative)  # 0: kept for ever
    every_minutes: float = attrs.field(default=60.0, validator=_positive)  # between two pruning cycles
    vacuum: bool = True  # give freed pages back to the file system (incremental vacuum)


@attrs.define
class BackupConfig:
    every_hours: float = attrs.field(default=0.0, validator=_not_negative)  # 0: no scheduled backups
    folder: str = "data/backups"
    keep: int = attrs.field(default=7, validator=_positive)  # scheduled backups kept, the newest
    compress: bool = True  # gzip


@attrs.define
class AuthConfig:
    trust_loopback: bool = False
    token_hours: float = attrs.field(default=12.0, validator=_positive)
    login_attempts: int = attrs.field(default=5, validator=_positive)
    lockout_seconds: float = attrs.field(default=300.0, validator=_positive)


def _default_tariffs() -> dict[str, Any]:
    # The EVCS default: 06:00-22:00 at 1.50 per kWh, otherwise 0.80 (minor units per kWh).
    return {"standard": {"periods": [{"start": "06:00", "end": "22:00", "price": 150},
                                     {"start": "22:00", "end": "06:00", "price": 80}],
                         "service_fee": 0}}


@attrs.define
class AlipayConfig:
    app_id: str = ""
    seller_id: str = ""  # the merchant's Alipay user id (2088...)
    app_private_key: str = ""  # PEM file: our app private key, signs requests
    alipay_public_key: str = ""  # PEM file: Alipay's public key, verifies notifications and answers
    # certificate mode, instead of alipay_public_key: the three certificate files the open platform gives
    app_cert: str = ""  # appCertPublicKey_<app_id>.crt: our app public certificate
    alipay_root_cert: str = ""  # alipayRootCert.crt
    alipay_cert: str = ""  # alipayCertPublicKey_RSA2.crt: its key verifies notifications and answers
    gateway_url: str = "https://openapi.alipay.com/gateway.do"
    notify_url: str = ""
    timeout: float = attrs.field(default=10.0, validator=_positive)

    @property
    def configured(self) -> bool:
        return bool(self.app_id and self.seller_id and self.app_private_key
                    and (self.alipay_public_key or self.alipay_cert))


@attrs.define
class WechatConfig:
    mchid: str = ""
    appid: str = ""
    merchant_serial: str = ""  # serial number of our merchant API certificate
    merchant_private_key: str = ""  # PEM file: signs requests
    apiv3_key: str = attrs.field(default="", repr=False)  # a secret: decrypts callback resources
    platform_keys: dict[str, str] = attrs.field(factory=dict)  # serial or PUB_KEY_ID_... -> PEM public key file
    fetch_certificates: bool = False  # download the platform certificates (/v3/certificates) and keep them current
    base_url: str = "https://api.mch.weixin.qq.com"
    notify_url: str = ""
    timeout: float = attrs.field(default=10.0, validator=_positive)

    @property
    def configured(self) -> bool:
        return bool(self.mchid and self.appid and self.merchant_serial and self.merchant_private_key
                    and self.apiv3_key and (self.platform_keys or self.fetch_certificates))


@attrs.define
class BillingConfig:
    enabled: bool = True
    currency: str = "CNY"
    timezone: str = "local"  # tariff periods are wall-clock times here; an IANA name or "local"
    default_tariff: str = "standard"
    tariffs: dict[str, Any] = attrs.field(factory=_default_tariffs)
    charger_tariffs: dict[str, str] = attrs.field(factory=dict)  # charge point id -> tariff name
    trade_expiry_minutes: int = attrs.field(default=30, validator=_positive)  # a QR trade is payable this long
    close_attempts: int = attrs.field(default=10, validator=_positive)  # tries to close a trade at the provider
    close_retry_seconds: float = attrs.field(default=60.0, validator=_positive)  # between those tries
    callback_refusals_per_minute: int = attrs.field(default=60, validator=_positive)  # per address, then 429
    refused_callbacks_max_bytes: int = attrs.field(default=16 * 1024 * 1024, validator=_positive)  # kept at most
    # a charger's start/stop time this far from when the gateway received it (or before the charger was first
    # seen) is replaced by the receive time for pricing; trust_charger_clock = true believes chargers always
    charger_clock_tolerance_hours: float = attrs.field(default=24.0, validator=_positive)
    trust_charger_clock: bool = False
    alipay: AlipayConfig = attrs.field(factory=AlipayConfig)
    wechat: WechatConfig = attrs.field(factory=WechatConfig)
    # the daily reconciliation of the day before, at this wall-clock time in billing.timezone ("" = never);
    # both providers publish the day's bill by 10:00 Beijing time
    reconcile_at: str = attrs.field(default="10:30", validator=_time_of_day)
    reconcile_channels: list[str] = attrs.field(factory=lambda: ["manual", "alipay", "wechat"])  # when configured

    def __attrs_post_init__(self) -> None:
        unknown = [c for c in self.reconcile_channels if c not in ("manual", "alipay", "wechat")]
        if unknown:
            raise ConfigError(f"billing.reconcile_channels: unknown channel(s) {', '.join(map(repr, unknown))}: "
                              "expected manual, alipay or wechat")
        for cp_id, name in {"default_tariff": self.default_tariff, **self.charger_tariffs}.items():
            if name not in self.tariffs:
                raise ConfigError(f"billing: {cp_id} names tariff {name!r}, which [billing.tariffs] does not define")


@attrs.define
class CertificatesConfig:
    """The certificate authority (OCPP 1.6 security extension): gateway/certificates/."""

    validity_days: int = attrs.field(default=365, validator=_positive)  # of the charge point certificates issued
    expiry_warning_days: int = attrs.field(default=30, validator=_positive)  # issued ones ending sooner are listed
    # An external CA: a command (run without a shell, split like a shell would) given the CSR PEM on its standard
    # input, printing the signed certificate (and its chain) as PEM; empty: the gateway's own issuing key signs
    external_command: str = ""
    external_timeout: float = attrs.field(default=30.0, validator=_positive)  # seconds the command may take
    firmware_max_bytes: int = attrs.field(default=256 * 1024 * 1024, validator=_positive)  # a firmware URL's content


@attrs.define
class AlertRule:
    """One alert rule: its threshold (what it counts: gateway/monitoring/rules.py UNITS), the window of the
    rules that count events, whether its alerts resolve themselves when the condition clears (else they wait
    for a person), and their severity."""
    enabled: bool = True
    threshold: float = attrs.field(default=0.0, validator=_not_negative)
    window_minutes: float = attrs.field(default=60.0, validator=_positive)
    auto_resolve: bool = True
    severity: str = attrs.field(default="warning", validator=_one_of("info", "warning", "critical"))


def _alert_rule(name: str, threshold: float, auto_resolve: bool = True, severity: str = "warning") -> type:
    """A rule's own class, so that a [alerts.<rule>] table that sets some keys keeps the rule's defaults for
    the others."""
    return attrs.make_class(name, {
        "threshold": attrs.field(default=threshold, validator=_not_negative, type=float),
        "auto_resolve": attrs.field(default=auto_resolve, type=bool),
        "severity": attrs.field(default=severity, validator=_one_of("info", "warning", "critical"), type=str),
    }, bases=(AlertRule,))


ChargerOfflineRule = _alert_rule("ChargerOfflineRule", 10.0)  # minutes offline
ConnectorFaultedRule = _alert_rule("ConnectorFaultedRule", 0.0, severity="critical")  # minutes Faulted
TransactionOpenRule = _alert_rule("TransactionOpenRule", 24.0)  # hours without a stop
ProtocolViolationsRule = _alert_rule("ProtocolViolationsRule", 20.0)  # violations in the window
CallbackRefusedRule = _alert_rule("CallbackRefusedRule", 1.0, auto_resolve=False)  # refused in the window
ReconciliationMismatchRule = _alert_rule("ReconciliationMismatchRule", 1.0, auto_resolve=False,
                                         severity="critical")  # mismatches in the latest report
DiskSpaceRule = _alert_rule("DiskSpaceRule", 10.0, severity="critical")  # percent free, alert below
WriterRestartsRule = _alert_rule("WriterRestartsRule", 3.0)  # restarts in the window
WriterBehindRule = _alert_rule("WriterBehindRule", 200.0)  # batches handed over, not yet committed


@attrs.define
class AlertsConfig:
    enabled: bool = True
    check_interval: float = attrs.field(default=30.0, validator=_positive)  # seconds between two checks
    webhook_url: str = ""  # alerts raised and resolved are POSTed here as JSON; empty: none
    webhook_secret: str = attrs.field(default="", repr=False)  # a secret: the HMAC-SHA256 key of the signature
    webhook_timeout: float = attrs.field(default=10.0, validator=_positive)  # seconds per attempt
    webhook_attempts: int = attrs.field(default=8, validator=_positive)  # then the alert's delivery is given up
    webhook_queue: int = attrs.field(default=1000, validator=_positive)  # deliveries waiting; more are dropped
    charger_offline: ChargerOfflineRule = attrs.field(factory=ChargerOfflineRule)  # type: ignore[valid-type]
    connector_faulted: ConnectorFaultedRule = attrs.field(factory=ConnectorFaultedRule)  # type: ignore[valid-type]
    transaction_open: TransactionOpenRule = attrs.field(factory=TransactionOpenRule)  # type: ignore[valid-type]
    protocol_violations: ProtocolViolationsRule = attrs.field(factory=ProtocolViolationsRule)  # type: ignore
    payment_callback_refused: CallbackRefusedRule = attrs.field(factory=CallbackRefusedRule)  # type: ignore
    reconciliation_mismatch: ReconciliationMismatchRule = attrs.field(  # type: ignore[valid-type]
        factory=ReconciliationMismatchRule)
    disk_space: DiskSpaceRule = attrs.field(factory=DiskSpaceRule)  # type: ignore[valid-type]
    writer_restarts: WriterRestartsRule = attrs.field(factory=WriterRestartsRule)  # type: ignore[valid-type]
    writer_behind: WriterBehindRule = attrs.field(factory=WriterBehindRule)  # type: ignore[valid-type]

    def __attrs_post_init__(self) -> None:
        if self.webhook_url and not self.webhook_url.startswith(("http://", "https://")):
            raise ConfigError(f"alerts.webhook_url must be an http:// or https:// URL, not {self.webhook_url!r}")
        if self.webhook_url and not self.webhook_secret:
            raise ConfigError("alerts.webhook_url needs alerts.webhook_secret (the key the signature is made with)")


@attrs.define
class LogbookConfig:
    realtime_lines: int = attrs.field(default=2000, validator=_positive)  # the newest lines kept in memory
    level: str = attrs.field(default="info", validator=_one_of("debug", "info", "warning", "error"))  # kept from
    retention_days: float = attrs.field(default=7.0, validator=_positive)
    max_rows: int = attrs.field(default=500_000, validator=_positive)  # the table keeps at most this many lines
    flush_interval: float = attrs.field(default=2.0, validator=_positive)  # seconds between two writes


@attrs.define
class ChargerTestFilesConfig:
    """The file server of charger test runs (gateway/chargertest/files.py): firmware images to download and a
    place for diagnostics uploads, per run; each listener starts when the first run needs it."""
    http: str = attrs.field(default="0.0.0.0:0", validator=_address)  # HOST:PORT; port 0: any free port
    ftp: str = attrs.field(default="0.0.0.0:0", validator=_optional_address)  # HOST:PORT; empty: no FTP
    public_host: str = ""  # the name chargers reach this machine by; empty: the address facing each charger
    folder: str = ""  # a folder per run (the images, what was uploaded) in it; empty: charger-tests beside the db
    firmware_file: str = ""  # the vendor's valid firmware image; empty: a test image (for simulators)
    max_upload_mb: int = attrs.field(default=100, validator=_positive)  # a larger upload is refused (413)


@attrs.define
class ConsoleConfig:
    live_buffer: int = attrs.field(default=1000, validator=_positive)  # events held per browser of GET /api/live
    live_catch_up: int = attrs.field(default=2000, validator=_positive)  # stored frames a reconnecting browser gets


@attrs.define
class ClusterConfig:
    # Several gateway nodes on one PostgreSQL (README "Past one machine"): on when `db` is a PostgreSQL URL.
    node_id: str = ""  # this node's name among them; empty: the host name and the OCPP port
    lease_seconds: float = attrs.field(default=10.0, validator=_positive)  # a node silent this long loses its chargers
    heartbeat_seconds: float = attrs.field(default=2.0, validator=_positive)  # between two renewals of the lease
    sweep_seconds: float = attrs.field(default=3.0, validator=_positive)  # between two sweeps of the command queue
    pool_size: int = attrs.field(default=4, validator=_positive)  # connections to PostgreSQL for the cluster's work
    # frames and meter values a node stops with while the server is unreachable: kept here, shipped at its next start
    unwritten_folder: str = "data/unwritten"

    @staticmethod
    def url(db: str) -> str:
        """The PostgreSQL URL the nodes meet at (the store's), or "" for a gateway on its own."""
        return db if db.startswith(("postgresql://", "postgres://")) else ""


@attrs.define
class Config:
    http: str = attrs.field(default="0.0.0.0:8080", validator=_address)
    ocpp: str = attrs.field(default="0.0.0.0:9000", validator=_address)
    db: str = "data/gateway.db"
    # PRAGMA quick_check at start for a file up to this size (MiB): it reads the whole file (10 s per GiB
    # from cache, 35 s from disk on the reference machine); 0: never
    db_check_max_mb: int = attrs.field(default=256, validator=_not_negative)
    log_format: str = attrs.field(default="auto", validator=_one_of("auto", "console", "json"))
    ocpp_tls: str = ""  # HOST:PORT of the wss:// listener (security profiles 2 and 3); empty: none
    tls_cert: str = ""  # PEM certificate chain of the wss:// listener
    tls_key: str = ""  # its PEM private key
    tls_client_ca: str = ""  # PEM CA that signs chargers' client certificates (profile 3); empty: none
    ykc: str = attrs.field(default="", validator=_optional_address)  # HOST:PORT of the YKC listener; empty: none
    ykc_idle_timeout: float = attrs.field(default=60.0, validator=_positive)  # a pile silent this long is cut off
    cloudcharge_key: str = attrs.field(default="", repr=False)  # HMAC-SHA256 key of /api/cloudcharge; a secret
    cloudcharge_window: float = attrs.field(default=300.0, validator=_positive)  # seconds a signed request is good
    http_max_body_bytes: int = attrs.field(default=1_048_576, validator=_positive)
    http_max_page_size: int = attrs.field(default=500, validator=_positive)
    http_body_timeout: float = attrs.field(default=30.0, validator=_positive)  # seconds to send a request body
    max_connections: int = attrs.field(default=0, validator=_not_negative)  # 0: from the open-file limit
    max_connections_per_address: int = attrs.field(default=100, validator=_positive)
    log_level: str = attrs.field(
        default="info", validator=_one_of("debug", "info", "warning", "error")
    )
    admin_password: str = attrs.field(default="", repr=False)  # a secret: never printed
    trusted_proxies: list[str] = attrs.field(factory=list)  # reverse proxies believed about X-Forwarded-*
    http_allowed_hosts: list[str] = attrs.field(factory=list)  # Host names answered besides loopback and IPs
    charger: ChargerConfig = attrs.field(factory=ChargerConfig)
    frames: FramesConfig = attrs.field(factory=FramesConfig)
    auth: AuthConfig = attrs.field(factory=AuthConfig)
    audit: AuditConfig = attrs.field(factory=AuditConfig)
    retention: RetentionConfig = attrs.field(factory=RetentionConfig)
    backup: BackupConfig = attrs.field(factory=BackupConfig)
    billing: BillingConfig = attrs.field(factory=BillingConfig)
    certificates: CertificatesConfig = attrs.field(factory=CertificatesConfig)
    alerts: AlertsConfig = attrs.field(factory=AlertsConfig)
    logbook: LogbookConfig = attrs.field(factory=LogbookConfig)
    charger_test_files: ChargerTestFilesConfig = attrs.field(factory=ChargerTestFilesConfig)
    console: ConsoleConfig = attrs.field(factory=ConsoleConfig)
    cluster: ClusterConfig = attrs.field(factory=ClusterConfig)

    def __attrs_post_init__(self) -> None:
        if self.cluster.heartbeat_seconds * 2 > self.cluster.lease_seconds:
            raise ConfigError("cluster.lease_seconds must be at least twice cluster.heartbeat_seconds: a node "
                              "would lose its chargers between two renewals")
        if self.ocpp_tls:
            _address(self, attrs.fields(Config).ocpp_tls, self.ocpp_tls)
            if not (self.tls_cert and self.tls_key):
                raise ConfigError("ocpp_tls needs tls_cert and tls_key (PEM files)")


for _cls in (ChargerConfig, FramesConfig, AuthConfig, AlipayConfig, WechatConfig, BillingConfig, CertificatesConfig,
             AlertRule,
             ChargerOfflineRule, ConnectorFaultedRule, TransactionOpenRule, ProtocolViolationsRule,
             CallbackRefusedRule, ReconciliationMismatchRule, DiskSpaceRule, WriterRestartsRule, WriterBehindRule,
             AlertsConfig, LogbookConfig, RetentionConfig, BackupConfig, ChargerTestFilesConfig, ConsoleConfig,
             ClusterConfig, Config):
    attrs.resolve_types(_cls)
_converter = cattrs.Converter(forbid_extra_keys=True)


def _exactly(kind: type):
    """cattrs would coerce with int()/bool(): 60.7 -> 60, "false" -> True. Refuse instead."""

    def structure(value: Any, _type: type) -> Any:
        if kind is float and type(value) is int:
            return float(value)
        if type(value) is not kind:
            raise ValueError(f"expected {kind.__name__}, got {value!r}")
        return value

    return structure


for _kind in (int, float, bool, str):
    _converter.register_structure_hook(_kind, _exactly(_kind))


def _env_value(raw: str, kind: Any, name: str) -> Any:
    if kind is bool:
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}={raw!r} is not a boolean")
    if kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a number") from None
    return raw


def env_overrides(env: Mapping[str, str], cls: type = Config, prefix: str = ENV_PREFIX) -> dict:
    """Turn GATEWAY_* variables into a nested dict shaped like `cls`."""
    out: dict[str, Any] = {}
    for field in attrs.fields(cls):
        name = prefix + field.name.upper()
        if attrs.has(field.type):
            nested = env_overrides(env, field.type, name + "_")
            if nested:
                out[field.name] = nested
        elif name in env and field.type in (str, int, float, bool):  # tables come from config.toml only
            out[field.name] = _env_value(env[name], field.type, name)
    return out


def _merge(base: dict, extra: dict) -> dict:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build the configuration; raise ConfigError with a readable message."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path}: {exc}") from None
    data = _merge(data, env_overrides(os.environ if env is None else env))
    data = _merge(data, {k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        return _converter.structure(data, Config)
    except ConfigError:
        raise
    except cattrs.BaseValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def _describe(exc: BaseException) -> str:
    """Prefer our own validator's words; fall back to cattrs' description."""
    stack = [exc]
    while stack:
        current = stack.pop()
        if isinstance(current, ConfigError):
            return str(current)
        stack.extend(getattr(current, "exceptions", []))
    return "; ".join(cattrs.transform_error(exc, format_exception=lambda e, _type: str(e))) or str(exc)
