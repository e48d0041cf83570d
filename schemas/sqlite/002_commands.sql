-- What the gateway sent to chargers, and what it remembers of the answers.

CREATE TABLE commands (
    id                INTEGER PRIMARY KEY,
    request_id        TEXT NOT NULL UNIQUE,  -- the OCPP unique id of the CALL
    charge_point_id   TEXT NOT NULL,
    action            TEXT NOT NULL,
    payload           TEXT NOT NULL,
    outcome           TEXT NOT NULL DEFAULT 'pending'
                      CHECK (outcome IN ('pending', 'answered', 'call_error', 'timeout', 'not_connected', 'abandoned')),
    result            TEXT,   -- the charger's payload (JSON)
    error_code        TEXT,
    error_description TEXT,
    error_details     TEXT,   -- JSON
    sent_at           TEXT NOT NULL,
    finished_at       TEXT,
    latency_ms        REAL
);
CREATE INDEX commands_cp ON commands (charge_point_id, id);
CREATE INDEX commands_action ON commands (action, id);

-- The charger's configuration as its last GetConfiguration answer, with accepted changes applied.
CREATE TABLE configuration (
    charge_point_id TEXT NOT NULL,
    key             TEXT NOT NULL,
    value           TEXT,
    readonly        INTEGER,
    updated_at      TEXT NOT NULL,
    PRIMARY KEY (charge_point_id, key)
) WITHOUT ROWID;

CREATE TABLE local_lists (
    id              INTEGER PRIMARY KEY,
    charge_point_id TEXT NOT NULL,
    list_version    INTEGER NOT NULL,
    update_type     TEXT NOT NULL,
    entries         TEXT NOT NULL,  -- JSON localAuthorizationList as sent
    status          TEXT,           -- Accepted / Failed / NotSupported / VersionMismatch, or the outcome
    request_id      TEXT NOT NULL,
    sent_at         TEXT NOT NULL
);
CREATE INDEX local_lists_cp ON local_lists (charge_point_id, id);

-- AUTOINCREMENT: a reservation id handed out by the gateway is never reused.
CREATE TABLE reservations (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    charge_point_id TEXT NOT NULL,
    connector_id    INTEGER NOT NULL,
    id_tag          TEXT NOT NULL,
    parent_id_tag   TEXT,
    expiry_date     TEXT NOT NULL,
    status          TEXT NOT NULL,  -- Requested, then the charger's answer; Cancelled; Used
    transaction_id  INTEGER,
    request_id      TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX reservations_cp ON reservations (charge_point_id, id);

CREATE TABLE charging_profiles (
    id                  INTEGER PRIMARY KEY,
    charge_point_id     TEXT NOT NULL,
    connector_id        INTEGER NOT NULL,
    profile_id          INTEGER NOT NULL,
    stack_level         INTEGER,
    purpose             TEXT,
    profile             TEXT NOT NULL,  -- JSON csChargingProfiles as sent
    status              TEXT,           -- the charger's answer, or the outcome
    request_id          TEXT NOT NULL,
    sent_at             TEXT NOT NULL,
    cleared_at          TEXT
);
CREATE INDEX charging_profiles_cp ON charging_profiles (charge_point_id, connector_id, id);

-- The RemoteStartTransaction that caused a transaction, when one did.
ALTER TABLE transactions ADD COLUMN remote_start_request_id TEXT;
