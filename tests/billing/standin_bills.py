"""The stand-in's daily bills: Alipay's zip of GBK CSV files and WeChat Pay's backquoted trade bill.

Written from the providers' documentation, independently of gateway.billing.bills (never imported here):

- Alipay alipay.data.dataservice.bill.downloadurl.query (bill_type trade) answers, signed like every answer, a
  bill_download_url; the link serves a zip with the business-detail CSV ("业务明细") and its summary
  ("业务明细(汇总)"), GBK, `#` comment lines around a header; amounts in yuan, refunds negative, the service
  fee written negative when charged and positive when a refund returns it; fields often end in a tab.
- WeChat Pay GET /v3/bill/tradebill answers, signed, {download_url, hash_type SHA1, hash_value}; the download
  is a signed GET whose answer is the unsigned file: a header, one line per payment (SUCCESS) or refund
  (REFUND) with a backquote before every field, then the summary header and its line. Fees have 5 decimals.

Payments and refunds made through the stand-in land in the bill of their Beijing day by themselves; a test adds
what happened elsewhere (a refund in the merchant console, a trade of another system) with `add`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import secrets
import string
import urllib.parse
import zipfile
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import attrs

from tests.billing.standin import BEIJING, StandIn, _random

FEE_RATE = Decimal("0.006")  # 0.6%, the common rate of both providers


def fee_of(amount: int) -> int:
    """The fee in fen of an amount in fen, rounded half up to the fen."""
    return int((Decimal(amount) * FEE_RATE).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@attrs.define
class Entry:
    kind: str  # payment | refund
    out_trade_no: str
    trade_no: str  # the provider's
    amount: int  # fen
    at: datetime  # Beijing
    refund_no: str | None = None
    refund_id: str | None = None
    fee: int | None = None  # None: fee_of(amount)

    @property
    def charged(self) -> int:
        return fee_of(self.amount) if self.fee is None else self.fee


def _yuan(fen: int, places: int = 2) -> str:
    return f"{Decimal(fen) / 100:.{places}f}"


ALIPAY_HEADER = ("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,"
                 "订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,"
                 "券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注")


def alipay_bill(entries: list[Entry], day: date, pid: str) -> bytes:
    """The zip Alipay's download link serves for a day."""
    out = io.StringIO()
    out.write("#支付宝业务明细查询\n")
    out.write(f"#账号：[{pid}0156]\n")
    out.write(f"#起始日期：[{day:%Y年%m月%d日} 00:00:00]   终止日期：[{day:%Y年%m月%d日} 23:59:59]\n")
    out.write("#-----------------------------------------业务明细列表----------------------------------------\n")
    out.write(ALIPAY_HEADER + "\n")
    writer = csv.writer(out, lineterminator="\n")
    for e in entries:
        sign = 1 if e.kind == "payment" else -1
        writer.writerow([e.trade_no + "\t", e.out_trade_no + "\t", "交易" if e.kind == "payment" else "退款",
                         "EV charging", (e.at.replace(second=0)).strftime("%Y-%m-%d %H:%M:%S"),
                         e.at.strftime("%Y-%m-%d %H:%M:%S"), "", "", "", "", "159****5620",
                         _yuan(sign * e.amount), _yuan(sign * e.amount), "0.00", "0.00", "0.00", "0.00", "0.00", "",
                         "0.00", "0.00", (e.refund_no or "") + ("\t" if e.refund_no else ""),
                         _yuan(-sign * e.charged), "0.00", ""])
    out.write("#-----------------------------------------业务明细列表结束------------------------------------\n")
    trades = sum(e.kind == "payment" for e in entries)
    out.write(f"#交易合计：{trades}笔，退款合计：{len(entries) - trades}笔\n")
    out.write(f"#导出时间：[{datetime.now(BEIJING):%Y年%m月%d日 %H:%M:%S}]\n")
    summary = ("#支付宝业务汇总查询\n门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）\n"
               f"合计,,{trades},{len(entries) - trades},"
               f"{_yuan(sum(e.amount if e.kind == 'payment' else -e.amount for e in entries))},0.00\n")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        stem = f"{pid}_{day:%Y%m%d}"
        archive.writestr(f"{stem}_业务明细.csv", out.getvalue().encode("gbk"))
        archive.writestr(f"{stem}_业务明细(汇总).csv", summary.encode("gbk"))
    return buffer.getvalue()


WECHAT_HEADER = ("交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,"
                 "应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,"
                 "商户数据包,手续费,费率,订单金额,申请退款金额,费率备注")


def wechat_bill(entries: list[Entry], appid: str, mchid: str) -> bytes:
    """The ALL trade bill WeChat Pay's download serves for a day."""
    lines = [WECHAT_HEADER]
    for e in entries:
        pay = e.kind == "payment"
        fields = [e.at.strftime("%Y-%m-%d %H:%M:%S"), appid, mchid, "0", "", e.trade_no, e.out_trade_no,
                  "o" + "x" * 27, "NATIVE", "SUCCESS" if pay else "REFUND", "OTHERS", "CNY",
                  _yuan(e.amount) if pay else "0.00", "0.00", "" if pay else (e.refund_id or ""),
                  "" if pay else (e.refund_no or ""), "0.00" if pay else _yuan(e.amount), "0.00",
                  "" if pay else "ORIGINAL", "" if pay else "SUCCESS", "EV charging", "",
                  _yuan(e.charged if pay else -e.charged, 5), "0.60%", _yuan(e.amount) if pay else "0.00",
                  "0.00" if pay else _yuan(e.amount), ""]
        lines.append(",".join("`" + f for f in fields))
    pays = [e for e in entries if e.kind == "payment"]
    refunds = [e for e in entries if e.kind == "refund"]
    lines.append("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额")
    lines.append(",".join("`" + f for f in [
        str(len(entries)), _yuan(sum(e.amount for e in pays)), _yuan(sum(e.amount for e in refunds)), "0.00",
        _yuan(sum(e.charged for e in pays) - sum(e.charged for e in refunds), 5), _yuan(sum(e.amount for e in pays)),
        _yuan(sum(e.amount for e in refunds))]))
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


class BillStandIn(StandIn):
    """The stand-in with daily bills: trade/refund entries per (channel, Beijing day)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.entries: dict[tuple[str, date], list[Entry]] = {}
        self.not_ready: set[tuple[str, date]] = set()  # days whose bill "is not generated yet"
        self.files: dict[str, bytes] = {}  # download token -> file
        self.corrupt_download = False  # the WeChat file served differs from its announced SHA1

    def add(self, channel: str, entry: Entry) -> None:
        with self.lock:
            self._add(channel, entry)

    def _add(self, channel: str, entry: Entry) -> None:
        self.entries.setdefault((channel, entry.at.date()), []).append(entry)

    # bills fill themselves from what happens at the stand-in

    def pay(self, out_trade_no: str) -> None:
        super().pay(out_trade_no)
        now = datetime.now(BEIJING)
        with self.lock:
            for channel, trades in (("alipay", self.alipay_trades), ("wechat", self.wechat_trades)):
                if out_trade_no in trades:
                    trade = trades[out_trade_no]
                    self._add(channel, Entry("payment", out_trade_no, trade.trade_no, trade.total, now))

    def _refund(self, biz: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
        before = self.alipay_trades.get(biz["out_trade_no"])
        refunded = before.refunded if before else 0
        node = super()._refund(biz, form)
        if before is not None and before.refunded > refunded:
            self._add("alipay", Entry("refund", before.out_trade_no, before.trade_no or "", before.refunded - refunded,
                                      datetime.now(BEIJING), refund_no=biz["out_request_no"]))
        return node

    def _wechat_refund(self, doc: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        trade = self.wechat_trades.get(doc.get("out_trade_no", ""))
        refunded = trade.refunded if trade else 0
        status, answer = super()._wechat_refund(doc)
        if trade is not None and trade.refunded > refunded:
            self._add("wechat", Entry("refund", trade.out_trade_no, trade.trade_no or "", trade.refunded - refunded,
                                      datetime.now(BEIJING), refund_no=doc["out_refund_no"],
                                      refund_id=answer.get("refund_id")))
        return status, answer

    # the bill APIs

    def _file(self, data: bytes) -> str:
        token = secrets.token_urlsafe(16)
        self.files[token] = data
        return token

    def extra_alipay_methods(self) -> dict[str, Any]:
        return {"alipay.data.dataservice.bill.downloadurl.query": self._alipay_bill_url}

    def _alipay_bill_url(self, biz: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
        if biz.get("bill_type") != "trade":
            return {"code": "40004", "msg": "Business Failed", "sub_code": "isv.invalid-bill-type",
                    "sub_msg": "账单类型不正确"}
        day = date.fromisoformat(biz["bill_date"])
        if ("alipay", day) in self.not_ready:
            return {"code": "40004", "msg": "Business Failed", "sub_code": "isp.bill_not_exist",
                    "sub_msg": "账单不存在"}
        entries = sorted(self.entries.get(("alipay", day), []), key=lambda e: e.at)
        token = self._file(alipay_bill(entries, day, self.keys.seller_id))
        return {"code": "10000", "msg": "Success", "bill_download_url": f"{self.url}/alipay-bills/{token}.zip"}

    def extra_wechat_route(self, method: str, path: str, query: dict[str, str],
                           body: bytes) -> tuple[int, dict[str, Any]] | None:
        if method != "GET" or path != "/v3/bill/tradebill":
            return None
        if query.get("bill_type", "ALL") != "ALL" or "bill_date" not in query:
            return 400, {"code": "PARAM_ERROR", "message": "参数错误"}
        day = date.fromisoformat(query["bill_date"])
        if ("wechat", day) in self.not_ready:
            return 400, {"code": "NO_STATEMENT_EXIST", "message": "账单文件不存在"}
        entries = sorted(self.entries.get(("wechat", day), []), key=lambda e: e.at)
        data = wechat_bill(entries, self.keys.appid, self.keys.mchid)
        digest = hashlib.sha1(data).hexdigest()
        token = self._file(data + b"x" if self.corrupt_download else data)
        return 200, {"hash_type": "SHA1", "hash_value": digest,
                     "download_url": f"{self.url}/v3/billdownload/file?token={token}"}

    def raw_route(self, method: str, path: str, headers: dict[str, str],
                  body: bytes) -> tuple[bool, int, dict[str, str], bytes] | None:
        split = urllib.parse.urlsplit(path)
        if method == "GET" and split.path.startswith("/alipay-bills/"):  # a plain link, as Alipay's OSS serves
            with self.lock:
                data = self.files.pop(split.path[len("/alipay-bills/"):-len(".zip")], None)  # one download each
            if data is None:
                return True, 404, {"Content-Type": "text/plain"}, b"expired"
            return True, 200, {"Content-Type": "application/zip"}, data
        if method == "GET" and split.path == "/v3/billdownload/file":  # a signed request, an unsigned file
            verified = self._wechat_auth_ok(method, path, body, headers.get("Authorization", ""))
            token = dict(urllib.parse.parse_qsl(split.query)).get("token", "")
            with self.lock:
                data = self.files.get(token) if verified else None
            if data is None:
                return verified, 401 if not verified else 404, {"Content-Type": "text/plain"}, b"no"
            return True, 200, {"Content-Type": "application/octet-stream"}, data
        return None


def provider_no(channel: str) -> str:
    if channel == "alipay":
        return datetime.now(BEIJING).strftime("%Y%m%d") + _random(20, string.digits)
    return "4200" + _random(24, string.digits)
