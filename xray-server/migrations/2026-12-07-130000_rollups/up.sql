-- Rollups for GET /pipelines/{p}/stats and /compare, kept at ingest time (store/rollups.rs):
-- a finished run adds its figures to its pipeline's rows of its start hour and version, and
-- takes them back when it is deleted or changes. Hours are the µs of the hour's start (UTC);
-- a run without a version is under ''.

-- Whether the run's figures are in the rollups (exactly the finished runs are).
ALTER TABLE runs ADD COLUMN rolled_up BOOLEAN NOT NULL DEFAULT FALSE;
-- Finished runs not rolled up yet: those stored before this migration (rolled up at start-up).
CREATE INDEX runs_to_roll_up ON runs (run_id) WHERE rolled_up = FALSE AND status <> 'running';

-- Per pipeline, hour and version: the runs that started in that hour, and their first and last
-- start (µs).
CREATE TABLE run_rollups (
    pipeline     TEXT NOT NULL,
    hour         BIGINT NOT NULL,
    version      TEXT NOT NULL,
    runs         BIGINT NOT NULL,
    failed       BIGINT NOT NULL,
    first_run_at BIGINT NOT NULL,
    last_run_at  BIGINT NOT NULL,
    PRIMARY KEY (pipeline, hour, version)
);

-- Per pipeline, hour, step name and version: the steps of that name in the runs above.
-- `durations` is a log histogram of the steps' durations (store/histogram.rs).
CREATE TABLE step_rollups (
    pipeline     TEXT NOT NULL,
    hour         BIGINT NOT NULL,
    step         TEXT NOT NULL,
    version      TEXT NOT NULL,
    step_type    TEXT NOT NULL,
    steps        BIGINT NOT NULL,
    runs         BIGINT NOT NULL,
    failed       BIGINT NOT NULL,
    input_count  BIGINT NOT NULL,
    output_count BIGINT NOT NULL,
    rejected_in  BIGINT NOT NULL,
    position_sum BIGINT NOT NULL,
    score_sum    DOUBLE PRECISION NOT NULL,
    score_count  BIGINT NOT NULL,
    durations    BYTEA NOT NULL,
    PRIMARY KEY (pipeline, hour, step, version)
);

-- Per pipeline, hour, step name, version and rejection reason: its exact count.
CREATE TABLE reason_rollups (
    pipeline TEXT NOT NULL,
    hour     BIGINT NOT NULL,
    step     TEXT NOT NULL,
    version  TEXT NOT NULL,
    reason   TEXT NOT NULL,
    count    BIGINT NOT NULL,
    PRIMARY KEY (pipeline, hour, step, version, reason)
);
