-- Charger test runs (SQLite's 025): the gateway ran charge-point test cases against one charger. The whole run
-- is kept as its canonical JSON (docs/api.md, "Charger tests"), written again after every case; the columns
-- beside it are what lists and comparisons filter and sort by.
CREATE TABLE charger_test_runs (
    id TEXT COLLATE "C" PRIMARY KEY,
    charge_point_id TEXT COLLATE "C" NOT NULL,
    plan TEXT COLLATE "C" NOT NULL,
    state TEXT COLLATE "C" NOT NULL,              -- running, finished, stopped
    firmware TEXT COLLATE "C",                    -- as the charger reported it: what a comparison is about
    started_at TEXT COLLATE "C" NOT NULL,
    finished_at TEXT COLLATE "C",
    summary TEXT COLLATE "C" NOT NULL,            -- JSON: the count of cases per verdict
    document TEXT COLLATE "C" NOT NULL            -- JSON: the run, as GET /api/charger-tests/{runId} answers it
);
CREATE INDEX charger_test_runs_charger ON charger_test_runs (charge_point_id, started_at);
CREATE INDEX charger_test_runs_started ON charger_test_runs (started_at);
