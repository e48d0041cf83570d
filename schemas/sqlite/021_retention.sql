-- Retention: how far the thinning of meter values has gone, and the index that lets old commands be
-- found (and deleted a few hundred at a time) without reading the whole table.
CREATE TABLE retention_progress (
    name    TEXT PRIMARY KEY,  -- e.g. meter_value_sets
    last_id INTEGER NOT NULL   -- every row up to this id has been thinned
) WITHOUT ROWID;

CREATE INDEX commands_sent_at ON commands (sent_at);
