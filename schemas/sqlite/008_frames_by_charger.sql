-- The frame log by charger, in the order frames came: the console's "newest first" (ORDER BY id
-- DESC LIMIT n) reads a few entries instead of sorting all of a charger's frames, and an integer
-- key makes each entry smaller than one keyed by its time text, which is what a busy gateway
-- writes most of (each batch touches one index page per charger).
DROP INDEX IF EXISTS frames_cp_at;
CREATE INDEX frames_cp ON frames (charge_point_id, id);
