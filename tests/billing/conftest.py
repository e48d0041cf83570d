from __future__ import annotations

import pytest

from gateway.billing.alipay import AlipaySettings
from gateway.billing.wechat import WechatSettings
from tests.billing.standin import ProviderKeys, StandIn

# provider_keys, other_key and standin: tests/billing/fixtures.py


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
