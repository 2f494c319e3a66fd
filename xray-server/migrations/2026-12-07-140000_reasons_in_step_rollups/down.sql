-- Back to a row of `reason_rollups` per reason; the rollups are rebuilt as on the way up.
DROP TABLE step_rollups;
DELETE FROM run_rollups;
UPDATE runs SET rolled_up = FALSE WHERE rolled_up;

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

CREATE TABLE reason_rollups (
    pipeline TEXT NOT NULL,
    hour     BIGINT NOT NULL,
    step     TEXT NOT NULL,
    version  TEXT NOT NULL,
    reason   TEXT NOT NULL,
    count    BIGINT NOT NULL,
    PRIMARY KEY (pipeline, hour, step, version, reason)
);
