-- The audit log: one row per HTTP request that changed something (or tried to), and per read of a tenant's
-- data by a user of a tenant above it. Append-only: no route updates or deletes a row; only the retention
-- (audit.retention_days) deletes the oldest ones.
CREATE TABLE audit_log (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    at              TEXT NOT NULL,                    -- when the answer was given (ISO 8601, UTC)
    kind            TEXT NOT NULL CHECK (kind IN ('change', 'read')),
    username        TEXT NOT NULL,                    -- the account; 'anonymous', or the payment provider
    user_tenant_id  INTEGER,                          -- the account's tenant; NULL: not authenticated
    tenant_id       INTEGER NOT NULL DEFAULT 1,       -- the tenant acted in (the caller's scope)
    address         TEXT,                             -- the client's address (behind trusted proxies: theirs)
    method          TEXT NOT NULL,
    route           TEXT NOT NULL,                    -- the route's rule: /api/station/{station_id}
    action          TEXT NOT NULL,                    -- the route's short name: station.update
    target          TEXT NOT NULL DEFAULT '{}',       -- JSON object: the route's parameters
    summary         TEXT NOT NULL DEFAULT '{}',       -- JSON object: query and body, every secret removed
    status          INTEGER NOT NULL,                 -- the HTTP status answered
    error           TEXT                              -- the error code answered, if any
);

CREATE INDEX audit_log_tenant_at ON audit_log (tenant_id, at);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
