"""Reading the providers' daily bills, from samples written by hand after their documented formats, and
downloading them from the stand-in (tests/billing/standin_bills.py)."""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import date, datetime

import pytest

from gateway.billing.alipay import AlipayClient
from gateway.billing.bills import (
    BillError,
    BillLine,
    BillNotReady,
    check_sha1,
    fetch,
    parse_alipay_csv,
    parse_alipay_zip,
    parse_wechat,
    yuan_to_fen,
)
from gateway.billing.errors import ProviderError
from gateway.billing.wechat import WechatClient
from tests.billing.standin import BEIJING
from tests.billing.standin_bills import BillStandIn, Entry

DAY = date(2026, 2, 10)

# Alipay's business-detail file: a trade of 12.34 (fee 0.07), a trade of 100.00 (fee 0.60) and a partial refund of
# 30.00 on it (0.18 of the fee returned); fields end in tabs as Alipay writes them.
ALIPAY_CSV = """#支付宝业务明细查询
#账号：[20880000000000010156]
#起始日期：[2026年02月10日 00:00:00]   终止日期：[2026年02月11日 00:00:00]
#-----------------------------------------业务明细列表----------------------------------------
支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注
2026021022001400001000000001\t,PAY-20260210-000001\t,交易,充电,2026-02-10 10:00:00,2026-02-10 10:00:05,,,,,159****5620,12.34,12.34,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,,-0.07,0.00,
2026021022001400001000000002\t,PAY-20260210-000002\t,交易,充电,2026-02-10 11:00:00,2026-02-10 11:00:09,,,,,159****5620,100.00,100.00,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,,-0.60,0.00,
2026021022001400001000000002\t,PAY-20260210-000002\t,退款,充电,2026-02-10 11:00:00,2026-02-10 15:30:00,,,,,159****5620,-30.00,-30.00,0.00,0.00,0.00,0.00,0.00,,0.00,0.00,REF-20260210-000001\t,0.18,0.00,
#-----------------------------------------业务明细列表结束------------------------------------
#交易合计：2笔，退款合计：1笔
#导出时间：[2026年02月11日 09:16:13]
"""

ALIPAY_LINES = (
    BillLine("payment", "PAY-20260210-000001", "2026021022001400001000000001", 1234, 1234, 7, None, None,
             "2026-02-10 10:00:05"),
    BillLine("payment", "PAY-20260210-000002", "2026021022001400001000000002", 10000, 10000, 60, None, None,
             "2026-02-10 11:00:09"),
    BillLine("refund", "PAY-20260210-000002", "2026021022001400001000000002", 3000, -3000, -18,
             "REF-20260210-000001", None, "2026-02-10 15:30:00"),
)

# WeChat Pay's ALL trade bill: a payment of 0.50 (fee 0.00300 -> 0.00), one of 88.88 (fee 0.53328 -> 0.53), a
# refund of 10.00 on the second (0.06 of the fee returned), then the summary.
WECHAT_BILL = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
    "应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,"
    "手续费,费率,订单金额,申请退款金额,费率备注\r\n"
    "`2026-02-10 09:00:01,`wx0000000000000001,`1900000001,`0,`,`4200000001202602100000000001,`PAY-20260210-000003,"
    "`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`NATIVE,`SUCCESS,`OTHERS,`CNY,`0.50,`0.00,`0,`0,`0.00,`0.00,`,`,`充电,`,"
    "`0.00300,`0.60%,`0.50,`0.00,`\r\n"
    "`2026-02-10 12:00:00,`wx0000000000000001,`1900000001,`0,`,`4200000001202602100000000002,`PAY-20260210-000004,"
    "`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`NATIVE,`SUCCESS,`OTHERS,`CNY,`88.88,`0.00,`0,`0,`0.00,`0.00,`,`,`充电,`,"
    "`0.53328,`0.60%,`88.88,`0.00,`\r\n"
    "`2026-02-10 18:00:00,`wx0000000000000001,`1900000001,`0,`,`4200000001202602100000000002,`PAY-20260210-000004,"
    "`oUpF8uMuAJO_M2pxb1Q9zNjWeS6o,`NATIVE,`REFUND,`OTHERS,`CNY,`0.00,`0.00,`50300000012026021000000000001,"
    "`REF-20260210-000002,`10.00,`0.00,`ORIGINAL,`SUCCESS,`充电,`,`-0.06000,`0.60%,`0.00,`10.00,`\r\n"
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n"
    "`3,`89.38,`10.00,`0.00,`0.47000,`89.38,`10.00\r\n"
).encode("utf-8")

WECHAT_LINES = (
    BillLine("payment", "PAY-20260210-000003", "4200000001202602100000000001", 50, 50, 0, None, None,
             "2026-02-10 09:00:01"),
    BillLine("payment", "PAY-20260210-000004", "4200000001202602100000000002", 8888, 8888, 53, None, None,
             "2026-02-10 12:00:00"),
    BillLine("refund", "PAY-20260210-000004", "4200000001202602100000000002", 1000, -1000, -6,
             "REF-20260210-000002", "50300000012026021000000000001", "2026-02-10 18:00:00"),
)


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# ---- Alipay ---------------------------------------------------------------------------------------------------------

def test_alipay_business_detail_lines():
    bill = parse_alipay_csv(ALIPAY_CSV, DAY)
    assert bill.lines == ALIPAY_LINES
    # by hand: paid 112.34, refunded 30.00, fees 0.07 + 0.60 - 0.18, settled 112.34 - 30.00
    assert bill.totals() == {"payments": 2, "paidAmount": 11234, "refunds": 1, "refundedAmount": 3000,
                             "fees": 49, "settlement": 8234}


def test_alipay_zip_of_gbk_files_finds_the_detail_file_by_its_header():
    summary = "#支付宝业务汇总查询\n门店编号,门店名称,交易订单总笔数\n合计,,2\n"
    data = _zip({"20880000000000010156_20260210_业务明细(汇总).csv": summary.encode("gbk"),
                 "20880000000000010156_20260210_业务明细.csv": ALIPAY_CSV.encode("gbk")})
    assert parse_alipay_zip(data, DAY).lines == ALIPAY_LINES


def test_alipay_columns_are_found_by_name_not_position():
    rows = [line.split(",") for line in ALIPAY_CSV.splitlines() if not line.startswith("#")]
    swapped = [[r[1], r[0], *r[2:]] for r in rows]  # 商户订单号 first
    text = "\n".join([*ALIPAY_CSV.splitlines()[:4], *(",".join(r) for r in swapped), *ALIPAY_CSV.splitlines()[-3:]])
    assert parse_alipay_csv(text, DAY).lines == ALIPAY_LINES


@pytest.mark.parametrize("change, message", [
    (lambda t: t.replace("#交易合计：2笔，退款合计：1笔\n", ""), "incomplete"),
    (lambda t: t.replace("#交易合计：2笔", "#交易合计：3笔"), "summary says 3"),
    (lambda t: t.replace(",12.34,12.34,", ",12.3x,12.34,"), "not an amount"),
    (lambda t: t.replace(",12.34,12.34,", ",12.345,12.34,"), "more than 2 decimals"),
    (lambda t: t.replace(",交易,充电,2026-02-10 10", ",转账,充电,2026-02-10 10"), "业务类型"),
    (lambda t: t.replace(",-30.00,-30.00,", ",30.00,-30.00,"), "退款 line with amount"),
    (lambda t: t.replace("服务费（元）", "手续费"), "服务费（元）"),
    (lambda t: "\n".join(line for line in t.splitlines() if line.startswith("#")), "no header"),
])
def test_alipay_bill_that_is_not_the_documented_format_is_refused(change, message):
    with pytest.raises(BillError, match=message):
        parse_alipay_csv(change(ALIPAY_CSV), DAY)


@pytest.mark.parametrize("data", [b"not a zip", _zip({"a.csv": b"x,y\n"}), _zip({"a.csv": b"\xff\xfe\xfd"})])
def test_alipay_zip_without_one_detail_file_is_refused(data):
    with pytest.raises(BillError):
        parse_alipay_zip(data, DAY)


# ---- WeChat Pay -----------------------------------------------------------------------------------------------------

def test_wechat_trade_bill_lines():
    bill = parse_wechat(WECHAT_BILL, DAY)
    assert bill.lines == WECHAT_LINES
    assert bill.totals() == {"payments": 2, "paidAmount": 8938, "refunds": 1, "refundedAmount": 1000,
                             "fees": 47, "settlement": 7938}


def test_wechat_refund_still_in_progress_moved_no_money():
    text = WECHAT_BILL.decode().replace("`ORIGINAL,`SUCCESS,", "`ORIGINAL,`PROCESSING,")
    assert parse_wechat(text.encode(), DAY).lines == WECHAT_LINES[:2]


def test_wechat_bill_with_a_byte_order_mark_reads_the_same():
    assert parse_wechat(b"\xef\xbb\xbf" + WECHAT_BILL, DAY).lines == WECHAT_LINES


@pytest.mark.parametrize("change, message", [
    (lambda t: t[:t.index("总交易单数")], "no summary"),
    (lambda t: t.replace("`SUCCESS,`OTHERS,`CNY,`0.50", "`REVOKED,`OTHERS,`CNY,`0.50"), "交易状态"),
    (lambda t: t.replace("`88.88,`0.00,`0,", "`88.8.8,`0.00,`0,"), "not an amount"),
    (lambda t: t.replace(",`NATIVE,`SUCCESS,`OTHERS,`CNY,`0.50", ",NATIVE,`SUCCESS,`OTHERS,`CNY,`0.50"), "backquote"),
    (lambda t: t.replace("商户订单号", "订单号"), "商户订单号"),
])
def test_wechat_bill_that_is_not_the_documented_format_is_refused(change, message):
    with pytest.raises(BillError, match=message):
        parse_wechat(change(WECHAT_BILL.decode()).encode(), DAY)


def test_sha1_is_checked():
    check_sha1(WECHAT_BILL, "SHA1", hashlib.sha1(WECHAT_BILL).hexdigest().upper())
    with pytest.raises(BillError, match="SHA1 differs"):
        check_sha1(WECHAT_BILL[:-10], "SHA1", hashlib.sha1(WECHAT_BILL).hexdigest())
    with pytest.raises(BillError, match="not SHA1"):
        check_sha1(WECHAT_BILL, "MD5", hashlib.md5(WECHAT_BILL).hexdigest())


@pytest.mark.parametrize("text, fen", [("0.00300", 0), ("0.00500", 1), ("-0.00500", -1), ("0.53328", 53),
                                       ("-30.00", -3000), ("12", 1200), ("1,234.50", 123450)])
def test_yuan_to_fen_rounds_fees_half_up(text, fen):
    assert yuan_to_fen(text, what="fee") == fen


# ---- downloads from the stand-in ------------------------------------------------------------------------------------

@pytest.fixture
def standin(provider_keys):
    with BillStandIn(provider_keys) as running:
        yield running


def _entries(standin: BillStandIn, channel: str) -> None:
    at = datetime(2026, 2, 10, 10, 0, 0, tzinfo=BEIJING)
    standin.add(channel, Entry("payment", "PAY-20260210-000009", "T9", 1999, at))
    standin.add(channel, Entry("refund", "PAY-20260210-000009", "T9", 500, at.replace(hour=11),
                               refund_no="CONSOLE-1", refund_id="5030001"))


def test_alipay_bill_download(alipay_settings, standin):
    _entries(standin, "alipay")
    client = AlipayClient(alipay_settings)
    url = client.bill_url("2026-02-10")
    [request] = standin.received("/gateway.do")
    assert request.verified and request.biz == {"bill_type": "trade", "bill_date": "2026-02-10"}
    bill = parse_alipay_zip(fetch(url, 5, "Alipay bill"), DAY)
    assert [(x.kind, x.amount, x.fee, x.refund_no) for x in bill.lines] == [("payment", 1999, 12, None),
                                                                            ("refund", 500, -3, "CONSOLE-1")]


def test_alipay_bill_not_ready(alipay_settings, standin):
    standin.not_ready.add(("alipay", DAY))
    with pytest.raises(BillNotReady):
        AlipayClient(alipay_settings).bill_url("2026-02-10")


def test_wechat_bill_download_is_signed_and_hashed(wechat_settings, standin):
    _entries(standin, "wechat")
    client = WechatClient(wechat_settings)
    link = client.trade_bill("2026-02-10")
    data = client.download(link["download_url"])
    check_sha1(data, link["hash_type"], link["hash_value"])
    assert all(r.verified for r in standin.received("/v3/"))
    bill = parse_wechat(data, DAY)
    assert [(x.kind, x.amount, x.fee, x.refund_no, x.provider_refund_no) for x in bill.lines] == [
        ("payment", 1999, 12, None, None), ("refund", 500, -3, "CONSOLE-1", "5030001")]


def test_wechat_corrupt_download_fails_its_hash(wechat_settings, standin):
    standin.corrupt_download = True
    client = WechatClient(wechat_settings)
    link = client.trade_bill("2026-02-10")
    with pytest.raises(BillError, match="SHA1"):
        check_sha1(client.download(link["download_url"]), link["hash_type"], link["hash_value"])


def test_wechat_bill_not_ready(wechat_settings, standin):
    standin.not_ready.add(("wechat", DAY))
    with pytest.raises(BillNotReady):
        WechatClient(wechat_settings).trade_bill("2026-02-10")


def test_wechat_download_from_another_host_is_never_signed(wechat_settings, standin):
    with pytest.raises(ProviderError, match="not the API host"):
        WechatClient(wechat_settings).download("https://elsewhere.example/v3/billdownload/file?token=x")
    assert standin.received("/v3/") == []


def test_plain_http_download_elsewhere_is_refused():
    with pytest.raises(BillError, match="not https"):
        fetch("http://bills.example/x.zip", 5, "Alipay bill")
