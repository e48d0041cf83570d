-- Trade life cycle and refunds as the providers have them.
--
-- A QR trade has an expiry sent to the provider; a trade whose order was cancelled, paid another
-- way or replaced by another channel's trade is closed at the provider (close_state: pending until
-- the provider confirms, closed, or failed after the bounded retries, with the last error).
ALTER TABLE payments ADD COLUMN expires_at TEXT;
ALTER TABLE payments ADD COLUMN close_state TEXT CHECK (close_state IN ('pending', 'closed', 'failed'));
ALTER TABLE payments ADD COLUMN close_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE payments ADD COLUMN close_note TEXT;
CREATE INDEX payments_closing ON payments (id) WHERE close_state = 'pending';

-- Refunds: partial and several per trade; FAILED (the provider refused the request; the operator
-- retries it with the same refund number or gives it up), CANCELLED (given up: the money stays with
-- us); source "provider" for a refund started in the merchant console, learnt from its notice.
-- SQLite cannot change a CHECK in place: the table is rebuilt.
CREATE TABLE refunds_new (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    refund_no          TEXT UNIQUE,               -- our out_refund_no / out_request_no, or the console's
    payment_id         INTEGER NOT NULL REFERENCES payments (id),
    order_id           INTEGER NOT NULL REFERENCES orders (id),
    amount             INTEGER NOT NULL CHECK (amount > 0),
    status             TEXT NOT NULL DEFAULT 'PROCESSING'
                       CHECK (status IN ('PROCESSING', 'SUCCESS', 'ABNORMAL', 'CLOSED', 'FAILED', 'CANCELLED')),
    provider_refund_id TEXT,
    reason             TEXT,
    source             TEXT NOT NULL DEFAULT 'gateway' CHECK (source IN ('gateway', 'provider')),
    note               TEXT,                      -- the last failure: what the provider said, or why it was not asked
    created_at         TEXT NOT NULL,
    settled_at         TEXT,
    updated_at         TEXT NOT NULL
);
INSERT INTO refunds_new (id, refund_no, payment_id, order_id, amount, status, provider_refund_id, reason,
                         created_at, settled_at, updated_at)
    SELECT id, refund_no, payment_id, order_id, amount, status, provider_refund_id, reason,
           created_at, settled_at, updated_at FROM refunds;
DROP TABLE refunds;
ALTER TABLE refunds_new RENAME TO refunds;
CREATE INDEX refunds_payment ON refunds (payment_id);
CREATE INDEX refunds_created ON refunds (created_at);
CREATE INDEX refunds_processing ON refunds (created_at) WHERE status = 'PROCESSING';

-- Refused callbacks are kept within a size budget, the oldest dropped first.
CREATE INDEX payment_callbacks_refused ON payment_callbacks (id) WHERE status = 'refused';
