-- What each charger id looks like: its confusable skeleton (id_key in gateway/chargepoint/handshake.py),
-- so that a new charger whose id looks like a known one (CP1, Cyrillic СР1, cp1) is found by one lookup
-- and refused. Rows from before this migration are keyed by the gateway when it first needs them.
ALTER TABLE charge_points ADD COLUMN id_key TEXT;
CREATE INDEX charge_points_by_id_key ON charge_points (id_key);
