-- Stations and the charger registry (the EVCS /api/station and /api/charger families).
--
-- A station is a site an operator runs: its code is unique within its tenant (one tenant, id 1, until
-- tenants exist). The registry is the list of chargers the operator knows, each with a numeric id the
-- EVCS routes use beside its OCPP charge point id: registered before it ever connects, or adopted when
-- an unknown charger connects. Its history (transactions, orders, frames) keeps pointing at the
-- charge point id, so deleting a registry entry loses none of it.
CREATE TABLE stations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id     INTEGER NOT NULL DEFAULT 1,
    code          TEXT NOT NULL,
    name          TEXT NOT NULL,
    address       TEXT,
    city          TEXT,
    latitude      REAL CHECK (latitude BETWEEN -90 AND 90),
    longitude     REAL CHECK (longitude BETWEEN -180 AND 180),
    opening_hours TEXT,                           -- as the operator writes it, e.g. "00:00-24:00"
    enabled       INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    UNIQUE (tenant_id, code)
);

CREATE TABLE charger_registry (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,   -- the EVCS chargerId
    charge_point_id  TEXT NOT NULL UNIQUE,                -- the id in the WebSocket path
    tenant_id        INTEGER NOT NULL DEFAULT 1,
    station_id       INTEGER REFERENCES stations (id),    -- NULL: adopted, not yet placed
    name             TEXT,
    connectors       TEXT NOT NULL DEFAULT '[]',          -- JSON: [{connectorNo, type, powerKw}, ...]
    enabled          INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    operator_status  TEXT NOT NULL DEFAULT 'in_service'
                     CHECK (operator_status IN ('in_service', 'maintenance', 'retired')),
    adopted          INTEGER NOT NULL DEFAULT 0 CHECK (adopted IN (0, 1)),  -- added when it connected unregistered
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX charger_registry_station ON charger_registry (station_id);

-- The chargers already known before this version are the registry's first entries, adopted.
INSERT INTO charger_registry (charge_point_id, adopted, created_at, updated_at)
    SELECT id, 1, first_seen, first_seen FROM charge_points ORDER BY first_seen, id;
