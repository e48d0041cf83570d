"""The providers' daily trade bills: downloading them and reading them into typed lines.

- Alipay (alipay.data.dataservice.bill.downloadurl.query, bill_type trade): a URL, valid for 30 s, of a zip
  holding GBK CSV files. The "业务明细" (business detail) file has `#` comment lines around a header and one
  row per trade (业务类型 交易) or refund (退款); amounts in yuan, refunds negative, the service fee negative
  when charged and positive when returned; a `#交易合计：N笔，退款合计：M笔` line counts the rows.
- WeChat Pay (GET /v3/bill/tradebill?bill_type=ALL): a download_url plus hash_type/hash_value (SHA1 of the
  file). The file is UTF-8 CSV whose every field starts with a backquote; a header line, one line per payment
  (交易状态 SUCCESS) or refund (REFUND), then a summary header (总交易单数,...) and its line.

Columns are found by their header names, never by position: both providers say the order may change.
Parsing is pure; downloading blocks (stdlib urllib) and runs in a worker thread like the other calls.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import re
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from datetime import date
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Literal
from zoneinfo import ZoneInfo

import attrs

from .errors import ProviderError
from .money import round_half_up

BEIJING = ZoneInfo("Asia/Shanghai")  # both providers' bill days are Beijing days
MAX_BILL = 64 << 20  # a day of a busy site's bill is a few MB; this bounds a runaway download


class BillError(ProviderError):
    """A bill that cannot be read as the provider documents it (the message says which line and why)."""


class BillNotReady(ProviderError):
    """The provider has no bill for the day (yet): Alipay isp.bill_not_exist, WeChat NO_STATEMENT_EXIST."""


@attrs.frozen
class BillLine:
    kind: Literal["payment", "refund"]
    out_trade_no: str  # our trade number
    provider_trade_no: str  # Alipay trade_no / WeChat transaction_id
    amount: int  # fen: paid, or refunded (positive either way)
    settlement: int  # fen the line moves to the merchant before the fee (negative for a refund)
    fee: int  # fen the provider keeps (negative when a refund returns it)
    refund_no: str | None  # the refund request number (ours, or the merchant console's)
    provider_refund_no: str | None
    at: str  # the provider's completion time, Beijing wall clock "YYYY-MM-DD HH:MM:SS"


@attrs.frozen
class Bill:
    channel: str
    day: date
    lines: tuple[BillLine, ...]

    def totals(self) -> dict[str, int]:
        pay = [line for line in self.lines if line.kind == "payment"]
        refund = [line for line in self.lines if line.kind == "refund"]
        return {"payments": len(pay), "paidAmount": sum(x.amount for x in pay),
                "refunds": len(refund), "refundedAmount": sum(x.amount for x in refund),
                "fees": sum(x.fee for x in self.lines), "settlement": sum(x.settlement for x in self.lines)}


def yuan_to_fen(text: str, *, what: str) -> int:
    """Signed yuan text -> fen. Fees may carry more decimals (WeChat writes 5): rounded half up to the fen."""
    cleaned = text.strip().replace(",", "")
    if not re.fullmatch(r"[+-]?[0-9]+(\.[0-9]{1,5})?", cleaned):
        raise ValueError(f"{what} {text[:30]!r} is not an amount in yuan")
    try:
        return round_half_up(Fraction(Decimal(cleaned)) * 100)
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        raise ValueError(f"{what} {text[:30]!r} is not an amount in yuan") from None


def _cents(text: str, what: str, where: str) -> int:
    try:
        value = yuan_to_fen(text, what=what)
    except ValueError as e:
        raise BillError(f"{where}: {e}") from None
    if what != "fee" and not re.fullmatch(r"[+-]?[0-9]+(\.[0-9]{1,2})?", text.strip()):
        raise BillError(f"{where}: {what} {text[:30]!r} has more than 2 decimals")
    return value


def _columns(header: list[str], wanted: dict[str, str], where: str) -> dict[str, int]:
    index = {name.strip(): i for i, name in enumerate(header)}
    missing = [label for label in wanted.values() if label not in index]
    if missing:
        raise BillError(f"{where}: the header lacks the column(s) {', '.join(missing)}")
    return {key: index[label] for key, label in wanted.items()}


# ---- Alipay ---------------------------------------------------------------------------------------------------------

_ALIPAY = {"trade_no": "支付宝交易号", "out_trade_no": "商户订单号", "type": "业务类型", "finished": "完成时间",
           "amount": "订单金额（元）", "received": "商家实收（元）", "refund_no": "退款批次号/请求号",
           "fee": "服务费（元）"}
_ALIPAY_COUNTS = re.compile(r"#交易合计[:：]\s*(\d+)\s*笔[,，]\s*退款合计[:：]\s*(\d+)\s*笔")


def parse_alipay_csv(text: str, day: date) -> Bill:
    """The business-detail CSV (already decoded) -> a Bill; BillError on anything undocumented."""
    header: list[str] | None = None
    cols: dict[str, int] = {}
    lines: list[BillLine] = []
    counts: tuple[int, int] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        where = f"Alipay bill line {number}"
        if not raw.strip():
            continue
        if raw.startswith("#"):
            found = _ALIPAY_COUNTS.search(raw)
            if found:
                counts = int(found[1]), int(found[2])
            continue
        row = [field.strip() for field in next(csv.reader([raw]))]
        if header is None:
            header, cols = row, _columns(row, _ALIPAY, where)
            continue
        if len(row) < len(header):
            raise BillError(f"{where}: {len(row)} fields, the header has {len(header)}")
        kind = {"交易": "payment", "退款": "refund"}.get(row[cols["type"]])
        if kind is None:
            raise BillError(f"{where}: unknown 业务类型 {row[cols['type']][:20]!r} (expected 交易 or 退款)")
        amount = _cents(row[cols["amount"]], "amount", where)
        received = _cents(row[cols["received"]], "settlement", where)
        fee = -_cents(row[cols["fee"]], "fee", where)  # charged: written negative; returned: positive
        if (kind == "payment") != (amount >= 0):
            raise BillError(f"{where}: a {row[cols['type']]} line with amount {row[cols['amount']]!r}")
        if not row[cols["out_trade_no"]]:
            raise BillError(f"{where}: no 商户订单号")
        lines.append(BillLine(kind=kind, out_trade_no=row[cols["out_trade_no"]],
                              provider_trade_no=row[cols["trade_no"]], amount=abs(amount), settlement=received,
                              fee=fee, refund_no=(row[cols["refund_no"]] or None) if kind == "refund" else None,
                              provider_refund_no=None, at=row[cols["finished"]]))
    if header is None:
        raise BillError("Alipay bill: no header line (支付宝交易号,...) found")
    if counts is None:
        raise BillError("Alipay bill: no #交易合计 line: the file is incomplete")
    got = (sum(x.kind == "payment" for x in lines), sum(x.kind == "refund" for x in lines))
    if got != counts:
        raise BillError(f"Alipay bill: {got[0]} trade and {got[1]} refund lines, but its summary says "
                        f"{counts[0]} and {counts[1]}: the file is incomplete")
    return Bill("alipay", day, tuple(lines))


def parse_alipay_zip(data: bytes, day: date) -> Bill:
    """The downloaded zip -> the Bill of its business-detail file (found by its header, not its GBK name)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [m for m in archive.infolist() if not m.is_dir()]
        if sum(m.file_size for m in members) > MAX_BILL:
            raise BillError("Alipay bill: the zip unpacks to more than the size limit")
        texts = [archive.read(m).decode("gb18030") for m in members]  # GB18030 is a superset of GBK
    except (zipfile.BadZipFile, UnicodeDecodeError, EOFError) as e:
        raise BillError(f"Alipay bill: not a zip of GBK text files ({type(e).__name__})") from None
    detail = [t for t in texts if any(line.startswith(_ALIPAY["trade_no"]) for line in t.splitlines()[:20])]
    if len(detail) != 1:
        raise BillError(f"Alipay bill: {len(detail)} business-detail files in the zip, expected 1")
    return parse_alipay_csv(detail[0], day)


# ---- WeChat Pay -----------------------------------------------------------------------------------------------------

_WECHAT = {"time": "交易时间", "transaction_id": "微信订单号", "out_trade_no": "商户订单号", "state": "交易状态",
           "settlement": "应结订单金额", "refund_id": "微信退款单号", "refund_no": "商户退款单号",
           "refund": "退款金额", "refund_state": "退款状态", "fee": "手续费", "amount": "订单金额"}


def parse_wechat(data: bytes, day: date) -> Bill:
    """The downloaded ALL trade bill -> a Bill; BillError on anything undocumented."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BillError("WeChat Pay bill: not UTF-8 text") from None
    rows = [(n, [f.strip() for f in next(csv.reader([raw]))]) for n, raw in enumerate(text.splitlines(), 1)
            if raw.strip()]
    if not rows:
        raise BillError("WeChat Pay bill: empty")
    number, header = rows[0]
    cols = _columns(header, _WECHAT, f"WeChat Pay bill line {number}")
    lines: list[BillLine] = []
    summary_seen = False
    for number, row in rows[1:]:
        where = f"WeChat Pay bill line {number}"
        if row and row[0].startswith("总交易单数"):  # the summary: its header, then one line
            summary_seen = True
            break
        if any(field and not field.startswith("`") for field in row):
            raise BillError(f"{where}: a field without its leading backquote")
        row = [field[1:] for field in row]
        if len(row) < len(header):
            raise BillError(f"{where}: {len(row)} fields, the header has {len(header)}")
        state = row[cols["state"]]
        fee = _cents(row[cols["fee"]], "fee", where)
        common = {"out_trade_no": row[cols["out_trade_no"]], "provider_trade_no": row[cols["transaction_id"]],
                  "at": row[cols["time"]]}
        if not common["out_trade_no"]:
            raise BillError(f"{where}: no 商户订单号")
        if state == "REFUND" and row[cols["refund_state"]] not in ("SUCCESS", ""):
            continue  # a refund still in progress (or closed) moved no money: it shows in a later day's bill
        if state == "REFUND":
            refund = _cents(row[cols["refund"]], "refund amount", where)
            lines.append(BillLine(kind="refund", amount=abs(refund), settlement=-abs(refund), fee=-abs(fee),
                                  refund_no=row[cols["refund_no"]] or None,
                                  provider_refund_no=row[cols["refund_id"]] or None, **common))
        elif state == "SUCCESS":
            lines.append(BillLine(kind="payment", amount=_cents(row[cols["amount"]], "amount", where),
                                  settlement=_cents(row[cols["settlement"]], "settlement", where), fee=fee,
                                  refund_no=None, provider_refund_no=None, **common))
        else:  # the ALL bill holds paid orders and refunds only; anything else is not the documented format
            raise BillError(f"{where}: unknown 交易状态 {state[:20]!r} (expected SUCCESS or REFUND)")
    if not summary_seen:
        raise BillError("WeChat Pay bill: no summary (总交易单数) at the end: the file is incomplete")
    return Bill("wechat", day, tuple(lines))


def check_sha1(data: bytes, hash_type: str, hash_value: str) -> None:
    """WeChat's integrity check of a downloaded bill."""
    if hash_type.upper() != "SHA1":
        raise BillError(f"WeChat Pay bill: hash_type {hash_type[:10]!r} is not SHA1")
    if not hmac.compare_digest(hashlib.sha1(data).hexdigest(), hash_value.strip().lower()):
        raise BillError("WeChat Pay bill: the file's SHA1 differs from hash_value (truncated or altered download)")


# ---- downloading ----------------------------------------------------------------------------------------------------

def read_bounded(answer: object, what: str) -> bytes:
    data = answer.read(MAX_BILL + 1)  # type: ignore[attr-defined]
    if len(data) > MAX_BILL:
        raise BillError(f"{what}: the file is larger than {MAX_BILL >> 20} MiB")
    return data


def fetch(url: str, timeout: float, what: str) -> bytes:
    """GET a bill file (Alipay's signed download link). Only https, or http to this machine (tests)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost")):
        raise BillError(f"{what}: the download URL is not https")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return read_bounded(answer, what)
    except urllib.error.HTTPError as e:
        e.close()
        raise ProviderError(f"{what}: the download answered HTTP {e.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        raise ProviderError(f"{what}: the download failed: {getattr(e, 'reason', e)}") from None
