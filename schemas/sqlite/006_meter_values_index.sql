-- Meter values are read by transaction only; the index by charger served no query and, its
-- entries scattered over every charger's pages, was the largest part of the cost of each insert.
DROP INDEX IF EXISTS meter_values_cp;
