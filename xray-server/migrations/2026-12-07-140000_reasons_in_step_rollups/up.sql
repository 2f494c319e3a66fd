-- A step rollup's rejection counts by reason move into its row of `step_rollups` (column
-- `reasons`, store/reason_counts.rs), instead of a row of `reason_rollups` per reason: a write
-- reads and writes back the step rows anyway. The rollups are derived data, so they are rebuilt
-- rather than converted: emptied, every run marked not rolled up, and the maintainer rolls the
-- finished runs up again (store/maintenance.rs, as for a database from before the rollups).
DROP TABLE reason_rollups;
DROP TABLE step_rollups;
DELETE FROM run_rollups;
UPDATE runs SET rolled_up = FALSE WHERE rolled_up;

-- Per pipeline, hour, step name and version: the steps of that name in the runs of
-- `run_rollups`. `durations` is a log histogram of the steps' durations (store/histogram.rs),
-- `reasons` their exact rejection counts by reason (store/reason_counts.rs).
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
    reasons      BYTEA NOT NULL,
    PRIMARY KEY (pipeline, hour, step, version)
);
