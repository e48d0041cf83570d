-- Core records: chargers, connectors, id tags, transactions, meter values,
-- the frame log, protocol violations and charger notifications.
-- Gateway times are UTC text (2025-08-14T01:23:00.731Z); charger times are kept as sent.

CREATE TABLE charge_points (
    id                       TEXT PRIMARY KEY,
    registration_status      TEXT  -- NULL until the first BootNotification is decided
                             CHECK (registration_status IN ('Accepted', 'Pending', 'Rejected')),
    vendor                   TEXT,
    model                    TEXT,
    serial_number            TEXT,
    charge_box_serial_number TEXT,
    firmware_version         TEXT,
    iccid                    TEXT,
    imsi                     TEXT,
    meter_type               TEXT,
    meter_serial_number      TEXT,
    extra                    TEXT,  -- JSON: BootNotification fields beyond 1.6, e.g. customData
    online                   INTEGER NOT NULL DEFAULT 0,
    first_seen               TEXT NOT NULL,
    last_seen                TEXT,
    booted_at                TEXT,
    connected_at             TEXT,
    disconnected_at          TEXT,
    disconnect_reason        TEXT,
    remote_address           TEXT,
    subprotocol              TEXT
);

CREATE TABLE connectors (
    charge_point_id   TEXT NOT NULL,
    connector_id      INTEGER NOT NULL,  -- 0 is the charge point as a whole
    status            TEXT NOT NULL,
    error_code        TEXT,
    info              TEXT,
    vendor_id         TEXT,
    vendor_error_code TEXT,
    timestamp         TEXT,
    updated_at        TEXT NOT NULL,
    PRIMARY KEY (charge_point_id, connector_id)
) WITHOUT ROWID;

CREATE TABLE status_notifications (
    id                INTEGER PRIMARY KEY,
    charge_point_id   TEXT NOT NULL,
    connector_id      INTEGER NOT NULL,
    status            TEXT NOT NULL,
    error_code        TEXT,
    info              TEXT,
    vendor_id         TEXT,
    vendor_error_code TEXT,
    timestamp         TEXT,
    received_at       TEXT NOT NULL
);
CREATE INDEX status_notifications_cp ON status_notifications (charge_point_id, connector_id, id);

CREATE TABLE id_tags (
    id_tag        TEXT PRIMARY KEY,
    status        TEXT NOT NULL DEFAULT 'Accepted'
                  CHECK (status IN ('Accepted', 'Blocked', 'Expired', 'Invalid', 'ConcurrentTx')),
    expiry_date   TEXT,
    parent_id_tag TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

-- AUTOINCREMENT: a transaction id is never handed out twice, even after deletes.
CREATE TABLE transactions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    charge_point_id TEXT NOT NULL,
    connector_id    INTEGER,
    id_tag          TEXT,
    id_tag_status   TEXT,     -- what StartTransaction was answered
    meter_start     INTEGER,
    start_timestamp TEXT,     -- charger clock
    reservation_id  INTEGER,
    started_at      TEXT,     -- gateway clock; NULL when the start was never seen
    meter_stop      INTEGER,
    stop_timestamp  TEXT,
    stop_reason     TEXT,
    stop_id_tag     TEXT,
    stopped_at      TEXT,
    energy_wh       INTEGER   -- meter_stop - meter_start, when both are known
);
CREATE INDEX transactions_cp ON transactions (charge_point_id, id);
CREATE INDEX transactions_open ON transactions (charge_point_id, connector_id) WHERE stopped_at IS NULL;

CREATE TABLE meter_values (
    id              INTEGER PRIMARY KEY,
    charge_point_id TEXT NOT NULL,
    connector_id    INTEGER,
    transaction_id  INTEGER,
    timestamp       TEXT NOT NULL,
    value           TEXT NOT NULL,
    measurand       TEXT,
    phase           TEXT,
    unit            TEXT,
    context         TEXT,
    location        TEXT,
    format          TEXT,
    source          TEXT NOT NULL,  -- MeterValues or StopTransaction (transactionData)
    received_at     TEXT NOT NULL
);
CREATE INDEX meter_values_tx ON meter_values (transaction_id, id);
CREATE INDEX meter_values_cp ON meter_values (charge_point_id, id);

CREATE TABLE frames (
    id              INTEGER PRIMARY KEY,
    at              TEXT NOT NULL,
    charge_point_id TEXT NOT NULL,
    direction       TEXT NOT NULL CHECK (direction IN ('in', 'out', 'event')),
    message_type    INTEGER,
    unique_id       TEXT,
    action          TEXT,
    body            TEXT
);
CREATE INDEX frames_cp_at ON frames (charge_point_id, at);
CREATE INDEX frames_at ON frames (at);

CREATE TABLE violations (
    charge_point_id TEXT NOT NULL,
    action          TEXT NOT NULL,
    kind            TEXT NOT NULL,  -- request or response
    code            TEXT NOT NULL,
    path            TEXT NOT NULL,
    message         TEXT NOT NULL,
    example         TEXT,
    count           INTEGER NOT NULL DEFAULT 1,
    first_seen      TEXT NOT NULL,
    last_seen       TEXT NOT NULL,
    PRIMARY KEY (charge_point_id, action, kind, code, path)
) WITHOUT ROWID;

-- Status reports and requests of the firmware, diagnostics, security and data-transfer kind.
CREATE TABLE notifications (
    id              INTEGER PRIMARY KEY,
    charge_point_id TEXT NOT NULL,
    action          TEXT NOT NULL,
    status          TEXT,      -- status, event type or answer given
    request_id      INTEGER,
    timestamp       TEXT,      -- charger clock, when it sent one
    payload         TEXT NOT NULL,
    received_at     TEXT NOT NULL
);
CREATE INDEX notifications_cp ON notifications (charge_point_id, action, id);
