-- Tenants: the platform (id 1, present from the first start) and the operators and partners under it, in a
-- tree. Each tenant sees its own records and those of the tenants below it. Quotas: NULL is no limit; the
-- users, stations and chargers of a tenant's whole subtree count against it, its direct children against
-- max_children.
CREATE TABLE tenants (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    parent_id     INTEGER REFERENCES tenants (id),        -- NULL only for the platform
    code          TEXT NOT NULL UNIQUE COLLATE NOCASE,    -- what users add to their name: alice@code
    name          TEXT NOT NULL,
    type          TEXT NOT NULL CHECK (type IN ('platform', 'operator', 'partner')),
    contact_name  TEXT,
    contact_phone TEXT,
    contact_email TEXT,
    address       TEXT,
    expires_at    TEXT,                                   -- after it, its users can no longer log in
    enabled       INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    max_users     INTEGER CHECK (max_users >= 0),
    max_stations  INTEGER CHECK (max_stations >= 0),
    max_chargers  INTEGER CHECK (max_chargers >= 0),
    max_children  INTEGER CHECK (max_children >= 0),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX tenants_parent ON tenants (parent_id);

INSERT INTO tenants (id, parent_id, code, name, type, created_at, updated_at)
    VALUES (1, NULL, 'platform', 'Platform', 'platform', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
            strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));

-- Users belong to a tenant (every account so far to the platform); a name is unique within its tenant.
-- SQLite changes a UNIQUE constraint only by rebuilding the table (migrations run with foreign keys off,
-- so api_tokens keep pointing at the same ids).
CREATE TABLE users_new (
    id            INTEGER PRIMARY KEY,
    tenant_id     INTEGER NOT NULL DEFAULT 1 REFERENCES tenants (id),
    username      TEXT NOT NULL,
    password_hash TEXT NOT NULL,  -- argon2id
    role          TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    session_stamp TEXT NOT NULL DEFAULT '',
    UNIQUE (tenant_id, username)
);
INSERT INTO users_new (id, tenant_id, username, password_hash, role, created_at, updated_at, session_stamp)
    SELECT id, 1, username, password_hash, role, created_at, updated_at, session_stamp FROM users;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;

-- Stations are found by tenant through their UNIQUE (tenant_id, code); registry chargers through this.
CREATE INDEX IF NOT EXISTS charger_registry_tenant ON charger_registry (tenant_id);
