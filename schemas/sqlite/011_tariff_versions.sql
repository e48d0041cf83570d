-- Tariffs with history, and sessions priced on plausible times.
-- A tariff version is what a configured tariff said from a moment on (the gateway's start that
-- first read it); an order records the version in force when its session started and is priced
-- with it, whatever the configuration says later.
CREATE TABLE tariff_versions (
    id             INTEGER PRIMARY KEY,
    name           TEXT NOT NULL,
    version        INTEGER NOT NULL,              -- 1, 2, ... per name
    currency       TEXT NOT NULL,
    definition     TEXT NOT NULL,                 -- JSON: periods and service_fee, as in the config
    effective_from TEXT NOT NULL,                 -- sessions starting at or after this use it (gateway clock)
    UNIQUE (name, version)
);

ALTER TABLE orders ADD COLUMN tariff_version_id INTEGER REFERENCES tariff_versions (id);
-- started_at / stopped_at are the times the session is priced on; these say whose clock they are
-- (charger | gateway | operator) and keep what the charger sent when it was not believed.
ALTER TABLE orders ADD COLUMN start_source TEXT;
ALTER TABLE orders ADD COLUMN stop_source TEXT;
ALTER TABLE orders ADD COLUMN charger_started_at TEXT;
ALTER TABLE orders ADD COLUMN charger_stopped_at TEXT;

-- JSON for a change with more to it than a cause, e.g. an operator's correction: by, before, after, reason.
ALTER TABLE order_history ADD COLUMN detail TEXT;
