"""Billing configuration made usable: parsed tariffs, the time zone, and the provider keys."""

from __future__ import annotations

import os
import zoneinfo
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Mapping

import attrs
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from ..config import AlipayConfig, BillingConfig, ConfigError
from .alipay import AlipaySettings
from .certs import CertificateError, alipay_certs
from .tariffs import Tariff, parse_tariff
from .wechat import WechatSettings

log = structlog.get_logger("gateway.billing")


def _local_zone() -> tzinfo:
    """This machine's zone (TZ, then /etc/localtime), by its IANA name when it has one."""
    if os.environ.get("TZ"):
        try:
            return zoneinfo.ZoneInfo(os.environ["TZ"].lstrip(":"))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    target = os.path.realpath("/etc/localtime")
    if "/zoneinfo/" in target:  # a link into the zone database names the zone: Asia/Shanghai, not "localtime"
        try:
            return zoneinfo.ZoneInfo(target.split("/zoneinfo/", 1)[1])
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    try:
        with open("/etc/localtime", "rb") as fh:
            return zoneinfo.ZoneInfo.from_file(fh, key="localtime")
    except OSError:
        return timezone.utc


def _is_utc(tz: tzinfo) -> bool:
    """True for a zone at UTC+0 all year (UTC, Etc/UTC, a server's default), judged by two solstices."""
    return all(datetime(2026, month, 21, 12, tzinfo=tz).utcoffset() == timedelta(0) for month in (6, 12))


def zone_name(tz: tzinfo) -> str:
    return str(getattr(tz, "key", None) or tz)


def load_timezone(name: str) -> tzinfo:
    """An IANA zone, or "local": the zone this machine's clock shows (TZ, then /etc/localtime).

    "local" on a server left at UTC silently shifts every tariff period by the site's offset (eight hours
    in China), so the zone is logged at start, with a warning when "local" turned out to be UTC."""
    if name != "local":
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"billing.timezone: unknown time zone {name!r} (use an IANA name such as "
                              "Asia/Shanghai, or \"local\")") from None
    tz = _local_zone()
    if _is_utc(tz):
        log.warning("billing.timezone = \"local\" is UTC on this machine: tariff periods are read as UTC "
                    "wall-clock times; set billing.timezone to the site's zone, e.g. \"Asia/Shanghai\"",
                    zone=zone_name(tz))
    else:
        log.info("billing time zone", zone=zone_name(tz), configured="local")
    return tz


def _pem(path: str, what: str, private: bool) -> RSAPrivateKey | RSAPublicKey:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path}: {exc.strerror}") from None
    try:
        if private:
            key = serialization.load_pem_private_key(data, password=None)
        elif b"CERTIFICATE" in data:  # a platform certificate: its public key
            from cryptography import x509
            key = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except ValueError:
        raise ConfigError(f"{what}: {path} is not a PEM {'private key' if private else 'public key'}") from None
    if not isinstance(key, (RSAPrivateKey, RSAPublicKey)):
        raise ConfigError(f"{what}: {path} is not an RSA key")
    return key


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read {path or '(not set)'}: {exc.strerror}") from None


def _alipay_cert_mode(a: AlipayConfig) -> dict[str, Any]:
    """Certificate mode's verifying key and serial numbers, from the three certificate files."""
    if a.alipay_public_key:
        raise ConfigError("billing.alipay: set alipay_public_key (public-key mode) or alipay_cert, app_cert and "
                          "alipay_root_cert (certificate mode), not both")
    if not (a.app_cert and a.alipay_root_cert):
        raise ConfigError("billing.alipay: certificate mode needs app_cert and alipay_root_cert beside alipay_cert")
    try:
        found = alipay_certs(_read(a.app_cert, "billing.alipay.app_cert"),
                             _read(a.alipay_root_cert, "billing.alipay.alipay_root_cert"),
                             _read(a.alipay_cert, "billing.alipay.alipay_cert"), datetime.now(timezone.utc))
    except CertificateError as exc:
        raise ConfigError(str(exc)) from None
    return {"alipay_public_key": found.alipay_public_key, "app_cert_sn": found.app_cert_sn,
            "alipay_root_cert_sn": found.alipay_root_cert_sn, "alipay_cert_sn": found.alipay_cert_sn}


@attrs.frozen
class BillingSettings:
    tariffs: Mapping[str, Tariff]
    default_tariff: str
    charger_tariffs: Mapping[str, str]
    tz: tzinfo
    currency: str
    clock_tolerance: timedelta | None = timedelta(hours=24)  # None: chargers' clocks are trusted (plausible.py)
    alipay: AlipaySettings | None = None
    wechat: WechatSettings | None = None
    trade_expiry_minutes: int = 30
    close_attempts: int = 10
    close_retry_seconds: float = 60.0
    callback_refusals_per_minute: int = 60
    refused_callbacks_max_bytes: int = 16 * 1024 * 1024

    def tariff_name(self, cp_id: str) -> str:
        return self.charger_tariffs.get(cp_id, self.default_tariff)

    def tariff(self, name: str) -> Tariff:
        """A tariff by the name an order recorded; the default one if the name has gone from the config."""
        return self.tariffs.get(name) or self.tariffs[self.default_tariff]

    def day(self, moment: datetime | None = None) -> str:
        """YYYYMMDD in the billing time zone: the date part of order and payment numbers."""
        return (moment or datetime.now(timezone.utc)).astimezone(self.tz).strftime("%Y%m%d")

    def channels(self) -> list[str]:
        return ["manual"] + [name for name in ("alipay", "wechat") if getattr(self, name) is not None]


def _tolerance(config: BillingConfig) -> timedelta:
    hours = config.charger_clock_tolerance_hours
    if not 0 < hours <= 24 * 366:  # also NaN; beyond a year the check would never replace anything
        raise ConfigError(f"billing.charger_clock_tolerance_hours must be more than 0 and at most 8784 (a year), "
                          f"not {hours}; set billing.trust_charger_clock = true to believe chargers' clocks")
    return timedelta(hours=hours)


def from_config(config: BillingConfig) -> BillingSettings:
    """Raise ConfigError with a readable message for a bad tariff, zone or key file."""
    tariffs = {}
    for name, data in config.tariffs.items():
        if not isinstance(data, dict):
            raise ConfigError(f"billing.tariffs.{name} must be a table with periods and service_fee")
        try:
            tariffs[name] = parse_tariff(name, data, config.currency)
        except ValueError as exc:
            raise ConfigError(f"billing.tariffs.{name}: {exc}") from None
    alipay = wechat = None
    a = config.alipay
    if a.configured:
        if a.alipay_cert:
            modes = _alipay_cert_mode(a)
        else:
            modes = {"alipay_public_key": _pem(a.alipay_public_key, "billing.alipay.alipay_public_key", False)}
        alipay = AlipaySettings(
            app_id=a.app_id, seller_id=a.seller_id,
            private_key=_pem(a.app_private_key, "billing.alipay.app_private_key", True),
            gateway_url=a.gateway_url, notify_url=a.notify_url, timeout=a.timeout, **modes)
    w = config.wechat
    if w.configured and not w.notify_url:
        raise ConfigError("billing.wechat.notify_url is required: WeChat Pay's native payments need the URL of "
                          "/api/payment/callback/wechat as the internet reaches it")
    if w.configured:
        key = w.apiv3_key.encode()
        if len(key) != 32:
            raise ConfigError("billing.wechat.apiv3_key must be the 32-character APIv3 key")
        wechat = WechatSettings(
            mchid=w.mchid, appid=w.appid, merchant_serial=w.merchant_serial,
            private_key=_pem(w.merchant_private_key, "billing.wechat.merchant_private_key", True),
            apiv3_key=key,
            platform_keys={serial: _pem(path, f"billing.wechat.platform_keys.{serial}", False)
                           for serial, path in w.platform_keys.items()},
            base_url=w.base_url, notify_url=w.notify_url, timeout=w.timeout, fetch_certificates=w.fetch_certificates)
    return BillingSettings(tariffs=tariffs, default_tariff=config.default_tariff,
                           charger_tariffs=dict(config.charger_tariffs), tz=load_timezone(config.timezone),
                           currency=config.currency, alipay=alipay, wechat=wechat,
                           trade_expiry_minutes=config.trade_expiry_minutes, close_attempts=config.close_attempts,
                           close_retry_seconds=config.close_retry_seconds,
                           callback_refusals_per_minute=config.callback_refusals_per_minute,
                           refused_callbacks_max_bytes=config.refused_callbacks_max_bytes,
                           clock_tolerance=None if config.trust_charger_clock else _tolerance(config))
