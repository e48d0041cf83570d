-- Billing: orders (one per charging session), their history, payments, refunds, provider
-- callbacks (stored as received, before they are processed) and reconciliation reports.
-- Money is integer minor units (fen, cents); never REAL.

-- A repeated StartTransaction (the charger missed our answer) is found by its own fields.
CREATE INDEX transactions_start ON transactions (charge_point_id, start_timestamp);

CREATE TABLE orders (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    order_no                TEXT UNIQUE,          -- ORD-YYYYMMDD-NNNNNN, set from the id on insert
    session_id              TEXT NOT NULL UNIQUE, -- "tx-<transactionId>" or the external platform's key
    transaction_id          INTEGER UNIQUE,       -- NULL until the charger starts the transaction
    remote_start_request_id TEXT,                 -- the RemoteStartTransaction an order/start sent
    charge_point_id         TEXT NOT NULL,
    connector_id            INTEGER,
    id_tag                  TEXT,
    status                  INTEGER NOT NULL DEFAULT 0
                            CHECK (status IN (0, 1, 2, 10, 11, 12, 13)),
    tariff                  TEXT NOT NULL,
    currency                TEXT NOT NULL,
    started_at              TEXT,                 -- session start (charger clock when known)
    stopped_at              TEXT,
    meter_start             INTEGER,
    meter_stop              INTEGER,
    energy_wh               INTEGER,
    energy_amount           INTEGER,              -- minor units
    service_amount          INTEGER,
    total_amount            INTEGER,
    pricing_method          TEXT,                 -- meter_values | time_proportional
    pricing_note            TEXT,
    pricing                 TEXT,                 -- JSON: the tariff lines
    paid_payment_id         INTEGER,              -- the payment the order took (a second one is refunded apart)
    paid_amount             INTEGER NOT NULL DEFAULT 0,
    refunded_amount         INTEGER NOT NULL DEFAULT 0,
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL
);
CREATE INDEX orders_cp ON orders (charge_point_id, id);
CREATE INDEX orders_status ON orders (status, id);
CREATE INDEX orders_created ON orders (created_at);
CREATE INDEX orders_remote_start ON orders (remote_start_request_id) WHERE remote_start_request_id IS NOT NULL;
CREATE INDEX orders_unclosed ON orders (transaction_id) WHERE stopped_at IS NULL;

CREATE TABLE order_history (
    id          INTEGER PRIMARY KEY,
    order_id    INTEGER NOT NULL REFERENCES orders (id),
    from_status INTEGER,                          -- NULL for the creation
    to_status   INTEGER NOT NULL,
    cause       TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX order_history_order ON order_history (order_id, id);

CREATE TABLE payments (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    trade_no          TEXT UNIQUE,                -- our out_trade_no: PAY-YYYYMMDD-NNNNNN
    order_id          INTEGER NOT NULL REFERENCES orders (id),
    channel           TEXT NOT NULL CHECK (channel IN ('manual', 'alipay', 'wechat')),
    amount            INTEGER NOT NULL,
    currency          TEXT NOT NULL,
    status            TEXT NOT NULL DEFAULT 'CREATED'
                      CHECK (status IN ('CREATED', 'PAID', 'CLOSED', 'FAILED', 'REFUNDED')),
    idempotency_key   TEXT UNIQUE,
    provider_trade_no TEXT,                       -- Alipay trade_no / WeChat transaction_id
    pay_url           TEXT,                       -- QR code content for the payer
    note              TEXT,
    created_by        TEXT,
    created_at        TEXT NOT NULL,
    paid_at           TEXT,
    updated_at        TEXT NOT NULL
);
CREATE INDEX payments_order ON payments (order_id);
CREATE INDEX payments_day ON payments (channel, created_at);

CREATE TABLE refunds (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    refund_no          TEXT UNIQUE,               -- our out_refund_no / out_request_no: REF-YYYYMMDD-NNNNNN
    payment_id         INTEGER NOT NULL REFERENCES payments (id),
    order_id           INTEGER NOT NULL REFERENCES orders (id),
    amount             INTEGER NOT NULL,
    status             TEXT NOT NULL DEFAULT 'PROCESSING'
                       CHECK (status IN ('PROCESSING', 'SUCCESS', 'ABNORMAL', 'CLOSED')),
    provider_refund_id TEXT,
    reason             TEXT,
    created_at         TEXT NOT NULL,
    settled_at         TEXT,
    updated_at         TEXT NOT NULL
);
CREATE INDEX refunds_payment ON refunds (payment_id);
CREATE INDEX refunds_created ON refunds (created_at);
CREATE INDEX refunds_processing ON refunds (created_at) WHERE status = 'PROCESSING';

CREATE TABLE payment_callbacks (
    id          INTEGER PRIMARY KEY,
    channel     TEXT NOT NULL,                    -- alipay | wechat
    kind        TEXT NOT NULL,                    -- payment | refund
    headers     TEXT NOT NULL,                    -- JSON, as received
    body        BLOB NOT NULL,                    -- the raw body, as received
    remote_addr TEXT,
    received_at TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'received'
                CHECK (status IN ('received', 'processed', 'duplicate', 'refused')),
    notify_id   TEXT,                             -- Alipay notify_id / WeChat event id, once read
    trade_no    TEXT,
    reason      TEXT,
    processed_at TEXT
);
CREATE INDEX payment_callbacks_pending ON payment_callbacks (id) WHERE status = 'received';
CREATE INDEX payment_callbacks_notify ON payment_callbacks (channel, notify_id) WHERE status = 'processed';

CREATE TABLE reconciliation_reports (
    id          INTEGER PRIMARY KEY,
    channel     TEXT NOT NULL,
    day         TEXT NOT NULL,                    -- YYYY-MM-DD in the billing time zone
    created_at  TEXT NOT NULL,
    report      TEXT NOT NULL                     -- JSON
);
CREATE INDEX reconciliation_day ON reconciliation_reports (channel, day, id);
