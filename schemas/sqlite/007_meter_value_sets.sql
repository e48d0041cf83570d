-- Meter values, one row per MeterValues message (or StopTransaction's transactionData) instead of
-- one per sampled value: its meterValue array kept as JSON, as the charger sent it. A message of
-- five sampled values was five rows and five index entries, the largest part of the writer's work.
-- The view `meter_values` still gives one row per sampled value, the columns as before; `id` is
-- now the message's row, shared by its sampled values (they follow in the order they were sent).
CREATE TABLE meter_value_sets (
    id              INTEGER PRIMARY KEY,
    charge_point_id TEXT NOT NULL,
    connector_id    INTEGER,
    transaction_id  INTEGER,
    source          TEXT NOT NULL,  -- MeterValues or StopTransaction (transactionData)
    received_at     TEXT NOT NULL,
    meter_value     TEXT NOT NULL   -- JSON: [{"timestamp": ..., "sampledValue": [{"value": ...}, ...]}, ...]
);
CREATE INDEX meter_value_sets_tx ON meter_value_sets (transaction_id, id);

-- Each old row becomes a message of one sampled value, under its old id.
INSERT INTO meter_value_sets (id, charge_point_id, connector_id, transaction_id, source, received_at, meter_value)
SELECT id, charge_point_id, connector_id, transaction_id, source, received_at,
       json_array(json_object('timestamp', timestamp, 'sampledValue', json_array(json_object(
           'value', value, 'measurand', measurand, 'phase', phase, 'unit', unit, 'context', context,
           'location', location, 'format', format))))
FROM meter_values ORDER BY id;
DROP TABLE meter_values;

-- A field as text, as it was stored before: strings as they are, anything else (lenient mode lets
-- an object or a number through) as its JSON text, null and missing as NULL.
CREATE VIEW meter_values AS
SELECT s.id, s.charge_point_id, s.connector_id, s.transaction_id,
       CASE json_type(m.value, '$.timestamp') WHEN 'text' THEN m.value ->> '$.timestamp' WHEN 'null' THEN NULL
            ELSE m.value -> '$.timestamp' END AS timestamp,
       CASE json_type(v.value, '$.value') WHEN 'text' THEN v.value ->> '$.value' WHEN 'null' THEN NULL
            ELSE v.value -> '$.value' END AS value,
       CASE json_type(v.value, '$.measurand') WHEN 'text' THEN v.value ->> '$.measurand' WHEN 'null' THEN NULL
            ELSE v.value -> '$.measurand' END AS measurand,
       CASE json_type(v.value, '$.phase') WHEN 'text' THEN v.value ->> '$.phase' WHEN 'null' THEN NULL
            ELSE v.value -> '$.phase' END AS phase,
       CASE json_type(v.value, '$.unit') WHEN 'text' THEN v.value ->> '$.unit' WHEN 'null' THEN NULL
            ELSE v.value -> '$.unit' END AS unit,
       CASE json_type(v.value, '$.context') WHEN 'text' THEN v.value ->> '$.context' WHEN 'null' THEN NULL
            ELSE v.value -> '$.context' END AS context,
       CASE json_type(v.value, '$.location') WHEN 'text' THEN v.value ->> '$.location' WHEN 'null' THEN NULL
            ELSE v.value -> '$.location' END AS location,
       CASE json_type(v.value, '$.format') WHEN 'text' THEN v.value ->> '$.format' WHEN 'null' THEN NULL
            ELSE v.value -> '$.format' END AS format,
       s.source, s.received_at
-- What is not an object where one belongs yields no row rather than an error for every reader.
FROM meter_value_sets AS s
JOIN json_each(CASE WHEN json_valid(s.meter_value) THEN s.meter_value ELSE '[]' END) AS m
JOIN json_each(CASE m.type WHEN 'object' THEN m.value ELSE '{}' END, '$.sampledValue') AS v
WHERE v.type = 'object';
