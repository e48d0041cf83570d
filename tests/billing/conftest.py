from __future__ import annotations

from typing import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from gateway.billing.alipay import AlipaySettings
from gateway.billing.wechat import WechatSettings
from tests.billing.standin import ProviderKeys, StandIn, new_rsa_key


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


@pytest.fixture
def alipay_settings(provider_keys: ProviderKeys, standin: StandIn) -> AlipaySettings:
    return AlipaySettings(
        app_id=provider_keys.app_id,
        seller_id=provider_keys.seller_id,
        private_key=provider_keys.app_private,
        alipay_public_key=provider_keys.alipay_public,
        gateway_url=standin.alipay_url,
        notify_url="https://gateway.example/api/payment/callback/alipay",
        timeout=5.0,
    )


@pytest.fixture
def wechat_settings(provider_keys: ProviderKeys, standin: StandIn) -> WechatSettings:
    return WechatSettings(
        mchid=provider_keys.mchid,
        appid=provider_keys.appid,
        merchant_serial=provider_keys.merchant_serial,
        private_key=provider_keys.merchant_private,
        apiv3_key=provider_keys.apiv3_key,
        platform_keys={provider_keys.platform_serial: provider_keys.platform_public},
        base_url=standin.url,
        notify_url="https://gateway.example/api/payment/callback/wechat",
        timeout=5.0,
    )
