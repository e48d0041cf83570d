-- Records of several tenants side by side.
--
-- An id tag belongs to a tenant: two operators may each hand out a card with the same id, so a tag is
-- unique within its tenant, not across the gateway. A tag is valid on the chargers of its own tenant and of
-- the tenants below it; the tags known before this version are the platform's (tenant 1), valid everywhere,
-- as they were. SQLite cannot change a primary key in place: the table is rebuilt.
CREATE TABLE id_tags_new (
    tenant_id     INTEGER NOT NULL DEFAULT 1,
    id_tag        TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'Accepted'
                  CHECK (status IN ('Accepted', 'Blocked', 'Expired', 'Invalid', 'ConcurrentTx')),
    expiry_date   TEXT,
    parent_id_tag TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, id_tag)
);
INSERT INTO id_tags_new (tenant_id, id_tag, status, expiry_date, parent_id_tag, created_at, updated_at)
    SELECT 1, id_tag, status, expiry_date, parent_id_tag, created_at, updated_at FROM id_tags;
DROP TABLE id_tags;
ALTER TABLE id_tags_new RENAME TO id_tags;
CREATE INDEX id_tags_by_tag ON id_tags (id_tag);

-- Every record named by a charge point id (transactions, meter values, frames, commands, orders, ...)
-- belongs to its charger's tenant, the registry's: a tenant's reads select its chargers by this index.
CREATE INDEX charger_registry_tenant_chargers ON charger_registry (tenant_id, charge_point_id);
