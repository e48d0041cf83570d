-- The providers' daily trade bills as read, line by line: reconciliation compares them with our
-- payments and refunds, and a payment completed near midnight is looked for in the neighbouring day's bill.
-- Money is integer minor units (fen).

CREATE TABLE provider_bills (
    id          INTEGER PRIMARY KEY,
    channel     TEXT NOT NULL CHECK (channel IN ('alipay', 'wechat')),
    day         TEXT NOT NULL,                    -- YYYY-MM-DD, the provider's (Beijing) day
    fetched_at  TEXT NOT NULL,
    totals      TEXT NOT NULL,                    -- JSON: counts, amounts, fees, settlement
    UNIQUE (channel, day)
);

CREATE TABLE provider_bill_lines (
    id                 INTEGER PRIMARY KEY,
    bill_id            INTEGER NOT NULL REFERENCES provider_bills (id) ON DELETE CASCADE,
    kind               TEXT NOT NULL CHECK (kind IN ('payment', 'refund')),
    out_trade_no       TEXT NOT NULL,
    provider_trade_no  TEXT NOT NULL,
    amount             INTEGER NOT NULL,
    settlement         INTEGER NOT NULL,
    fee                INTEGER NOT NULL,
    refund_no          TEXT,
    provider_refund_no TEXT,
    at                 TEXT NOT NULL
);
CREATE INDEX provider_bill_lines_bill ON provider_bill_lines (bill_id);

-- WeChat Pay platform certificates downloaded from /v3/certificates (billing.wechat.fetch_certificates),
-- so a restart trusts what was trusted before and WeChat Pay is not asked at every start.
CREATE TABLE wechat_platform_certs (
    serial      TEXT PRIMARY KEY,
    pem         TEXT NOT NULL,
    effective   TEXT NOT NULL,                    -- as WeChat Pay writes it (ISO 8601 with offset)
    expires     TEXT NOT NULL,
    fetched_at  TEXT NOT NULL
);
