"""A gateway configured with the keys operators get: Alipay's three certificate files, and WeChat Pay with no
platform key at all but fetch_certificates, trusting what it downloaded for answers and callbacks."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from gateway.config import AlipayConfig, Config
from tests.billing.fixtures import pem_file, provider_config
from tests.billing.standin import ProviderKeys, wechat_transaction
from tests.billing.standin_certs import AlipayCertFiles, CertStandIn, alipay_cert_files
from tests.conftest import started
from tests.integration.test_billing_providers import (
    awaiting,
    data,
    order_detail,
    post_wechat,
    wechat_pay_event,
)


@pytest.fixture(scope="module")
def cert_files(provider_keys: ProviderKeys) -> AlipayCertFiles:
    return alipay_cert_files(provider_keys)


@pytest.fixture
def standin(provider_keys: ProviderKeys, cert_files: AlipayCertFiles) -> Iterator[CertStandIn]:
    with CertStandIn(provider_keys, alipay_certs=cert_files) as running:
        yield running


@pytest.fixture
def config(tmp_path: Path, provider_keys: ProviderKeys, standin: CertStandIn, cert_files: AlipayCertFiles) -> Config:
    config = provider_config(tmp_path, provider_keys, standin)
    files = tmp_path / "certs"
    files.mkdir()
    for name, content in (("app.crt", cert_files.app_cert), ("root.crt", cert_files.root_file),
                          ("alipay.crt", cert_files.alipay_cert_file)):
        (files / name).write_bytes(content)
    config.billing.alipay = AlipayConfig(
        app_id=provider_keys.app_id, seller_id=provider_keys.seller_id,
        app_private_key=pem_file(files / "app.pem", provider_keys.app_private),
        app_cert=str(files / "app.crt"), alipay_root_cert=str(files / "root.crt"),
        alipay_cert=str(files / "alipay.crt"), gateway_url=standin.alipay_url,
        notify_url="https://gw.example/api/payment/callback/alipay", timeout=2.0)
    config.billing.wechat.platform_keys = {}
    config.billing.wechat.fetch_certificates = True
    return config


async def test_payments_through_certificate_mode_and_downloaded_platform_certificates(nursery, config, standin, provider_keys,
                                                                                    cert_files):
    async with started(nursery, config) as gw:
        assert len(standin.received("/v3/certificates")) == 1  # downloaded before anything else
        async with gw.http() as http:
            _, payment = await awaiting(gw, http, "alipay")  # precreate signed with the SNs, answer verified
            [request] = [r for r in standin.received("/gateway.do") if r.form["method"] == "alipay.trade.precreate"]
            assert request.verified and request.form["app_cert_sn"] == cert_files.app_cert_sn
            assert request.form["alipay_root_cert_sn"] == cert_files.root_cert_sn

            order, payment = await awaiting(gw, http, "wechat")  # the answer verified with the downloaded cert
            standin.pay(payment["tradeNo"])
            trade = standin.wechat_trades[payment["tradeNo"]]
            headers, body = wechat_pay_event(provider_keys, payment, serial=standin.platform_serial, plain=wechat_transaction(
                payment["tradeNo"], payment["amount"], transaction_id=trade.trade_no))
            assert (await post_wechat(http, headers, body)).status_code == 204
            assert (await order_detail(http, order["id"]))["status"] == 11
            assert data(await http.get("/api/payment/callbacks"))[0]["status"] == "processed"
