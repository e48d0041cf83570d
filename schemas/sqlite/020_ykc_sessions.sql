-- Charging sessions of YKC (云快充) piles: the 32-digit serial the platform issues for each session, the
-- transaction it is, and the pile's transaction record (0x3B) once it arrives, with its stop reason.
CREATE TABLE ykc_sessions (
    serial            TEXT PRIMARY KEY,
    charge_point_id   TEXT NOT NULL,
    gun               INTEGER NOT NULL,
    id_tag            TEXT,
    transaction_id    INTEGER,
    created_at        TEXT NOT NULL,
    stop_reason       INTEGER,
    stop_reason_text  TEXT,
    record            TEXT,
    recorded_at       TEXT
);
CREATE INDEX ykc_sessions_transaction ON ykc_sessions (transaction_id);
CREATE INDEX ykc_sessions_gun ON ykc_sessions (charge_point_id, gun, created_at);
