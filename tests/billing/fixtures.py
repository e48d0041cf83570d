"""The payment providers as every billing test meets them: the session's provider keys, a key that is
nobody's, the stand-in playing both providers, and a gateway configuration naming them.

A pytest plugin (tests/conftest.py loads it), so unit and integration tests share one set of keys: four
RSA-2048 keys take a moment to make. A module that needs another stand-in (bills, certificates)
overrides `standin`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from gateway.config import AlipayConfig, Config, WechatConfig
from tests.billing.standin import ProviderKeys, StandIn, new_rsa_key
from tests.conftest import make_config


@pytest.fixture(scope="session")
def provider_keys() -> ProviderKeys:
    return ProviderKeys.generate()  # four RSA-2048 keys: once per session, they take a moment


@pytest.fixture(scope="session")
def other_key() -> RSAPrivateKey:
    """A valid RSA key that is nobody's: signatures made with it must be refused."""
    return new_rsa_key()


@pytest.fixture
def standin(provider_keys: ProviderKeys) -> Iterator[StandIn]:
    with StandIn(provider_keys) as running:
        yield running


def pem_file(path: Path, key: Any) -> str:
    """Write `key` to `path` as PEM (a private key as PKCS#8) and return the path, as config.toml names it."""
    if isinstance(key, RSAPrivateKey):
        data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    else:
        data = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    path.write_bytes(data)
    return str(path)


def provider_config(tmp_path: Path, keys: ProviderKeys, standin: StandIn, *, alipay_url: str | None = None) -> Config:
    """Both providers configured from PEM files, as config.toml would name them; the same database each time."""
    config = make_config(tmp_path)
    pem = tmp_path / "pem"
    pem.mkdir(exist_ok=True)
    config.billing.timezone = "Asia/Shanghai"
    config.billing.alipay = AlipayConfig(
        app_id=keys.app_id, seller_id=keys.seller_id,
        app_private_key=pem_file(pem / "app_private.pem", keys.app_private),
        alipay_public_key=pem_file(pem / "alipay_public.pem", keys.alipay_public),
        gateway_url=alipay_url or standin.alipay_url, notify_url="https://gw.example/api/payment/callback/alipay",
        timeout=2.0)
    config.billing.wechat = WechatConfig(
        mchid=keys.mchid, appid=keys.appid, merchant_serial=keys.merchant_serial,
        merchant_private_key=pem_file(pem / "merchant_private.pem", keys.merchant_private),
        apiv3_key=keys.apiv3_key.decode("ascii"),
        platform_keys={keys.platform_serial: pem_file(pem / "platform_public.pem", keys.platform_public)},
        base_url=standin.url, notify_url="https://gw.example/api/payment/callback/wechat", timeout=2.0)
    return config
