-- Alerts and the gateway's own log (the /api/monitoring family).
--
-- An alert is raised by a rule (config.toml [alerts]) about a subject: a charger, a connector, a
-- transaction, a payment channel, the disk, the writer process. At most one alert per rule and subject is
-- open (open or acknowledged) at a time. charge_point_id names the charger an alert is about (its tenant
-- sees it); an alert about no charger is the platform's.
CREATE TABLE alerts (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    rule            TEXT NOT NULL,
    subject         TEXT NOT NULL,
    charge_point_id TEXT,
    severity        TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    status          TEXT NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
    message         TEXT NOT NULL,
    value           REAL,                 -- the figure that crossed the threshold
    threshold       REAL,
    auto_resolve    INTEGER NOT NULL CHECK (auto_resolve IN (0, 1)),
    raised_at       TEXT NOT NULL,
    cleared_at      TEXT,                 -- the condition ended (an alert that waits for a person stays open)
    acknowledged_at TEXT,
    acknowledged_by TEXT,
    resolved_at     TEXT,
    resolved_by     TEXT,                 -- a user name, or NULL when it resolved itself
    updated_at      TEXT NOT NULL
);
CREATE UNIQUE INDEX alerts_one_open ON alerts (rule, subject) WHERE status != 'resolved';
CREATE INDEX alerts_raised ON alerts (raised_at, id);
CREATE INDEX alerts_cp ON alerts (charge_point_id, id);
CREATE INDEX alerts_counted ON alerts (status, severity, rule, raised_at, charge_point_id);  -- statistics

CREATE TABLE alert_history (
    id       INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    at       TEXT NOT NULL,
    event    TEXT NOT NULL CHECK (event IN ('raised', 'cleared', 'returned', 'acknowledged', 'resolved')),
    by       TEXT,                        -- a user name; NULL: the gateway
    note     TEXT
);
CREATE INDEX alert_history_alert ON alert_history (alert_id, id);

-- The gateway's own structured log (already redacted), written in batches, pruned by age and count.
CREATE TABLE log_lines (
    id              INTEGER PRIMARY KEY,
    at              TEXT NOT NULL,
    level           TEXT NOT NULL,
    logger          TEXT,
    event           TEXT NOT NULL,
    charge_point_id TEXT,
    fields          TEXT NOT NULL        -- JSON: the line's other keys
);
CREATE INDEX log_lines_at ON log_lines (at);
CREATE INDEX log_lines_cp ON log_lines (charge_point_id, id) WHERE charge_point_id IS NOT NULL;
-- Text search of the kept log: any three characters or more of the event or its fields, in any case
-- (trigrams), without reading every line; shorter texts are searched line by line.
CREATE VIRTUAL TABLE log_lines_text USING fts5(event, fields, content = 'log_lines', content_rowid = 'id',
                                                tokenize = 'trigram');
CREATE TRIGGER log_lines_text_added AFTER INSERT ON log_lines BEGIN
    INSERT INTO log_lines_text (rowid, event, fields) VALUES (new.id, new.event, new.fields);
END;
CREATE TRIGGER log_lines_text_deleted AFTER DELETE ON log_lines BEGIN
    INSERT INTO log_lines_text (log_lines_text, rowid, event, fields) VALUES ('delete', old.id, old.event, old.fields);
END;

-- Today's figures (metrics/business, /metrics) read the sessions and orders that stopped in a day.
CREATE INDEX IF NOT EXISTS transactions_stopped_at ON transactions (stopped_at);
CREATE INDEX IF NOT EXISTS orders_stopped_at ON orders (stopped_at);
