-- Charger test runs: the gateway ran charge-point test cases against one charger. The whole run is kept as
-- its canonical JSON (docs/api.md, "Charger tests"), written again after every case; the columns beside it
-- are what lists and comparisons filter and sort by.
CREATE TABLE charger_test_runs (
    id TEXT PRIMARY KEY,
    charge_point_id TEXT NOT NULL,
    plan TEXT NOT NULL,
    state TEXT NOT NULL,              -- running, finished, stopped
    firmware TEXT,                    -- as the charger reported it: what a comparison is about
    started_at TEXT NOT NULL,
    finished_at TEXT,
    summary TEXT NOT NULL,            -- JSON: the count of cases per verdict
    document TEXT NOT NULL            -- JSON: the run, as GET /api/charger-tests/{runId} answers it
);
CREATE INDEX charger_test_runs_charger ON charger_test_runs (charge_point_id, started_at);
CREATE INDEX charger_test_runs_started ON charger_test_runs (started_at);
