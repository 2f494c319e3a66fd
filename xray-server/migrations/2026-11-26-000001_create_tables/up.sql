-- One SQL file for both backends: only types and syntax that SQLite and PostgreSQL share.
-- Times are microseconds since the Unix epoch (BIGINT); JSON is stored as TEXT.

CREATE TABLE runs (
    run_id      TEXT PRIMARY KEY NOT NULL,
    pipeline    TEXT NOT NULL,
    status      TEXT NOT NULL,
    input       TEXT,
    output      TEXT,
    error       TEXT,
    metadata    TEXT,
    started_at  BIGINT NOT NULL,
    ended_at    BIGINT,
    duration_ms DOUBLE PRECISION
);
-- GET /runs, newest first, keyset-paged on (started_at, run_id), with any of pipeline/status.
CREATE INDEX runs_by_time ON runs (started_at DESC, run_id DESC);
CREATE INDEX runs_by_pipeline ON runs (pipeline, started_at DESC, run_id DESC);
CREATE INDEX runs_by_status ON runs (status, started_at DESC, run_id DESC);
CREATE INDEX runs_by_pipeline_status ON runs (pipeline, status, started_at DESC, run_id DESC);

CREATE TABLE steps (
    step_id           TEXT PRIMARY KEY NOT NULL,
    run_id            TEXT NOT NULL,
    pipeline          TEXT NOT NULL,
    position          INTEGER NOT NULL,
    name              TEXT NOT NULL,
    step_type         TEXT NOT NULL,
    capture           TEXT NOT NULL,
    input_count       BIGINT,
    output_count      BIGINT,
    rejected_count    BIGINT NOT NULL,
    accepted_count    BIGINT NOT NULL,
    rejection_rate    DOUBLE PRECISION,
    started_at        BIGINT NOT NULL,
    ended_at          BIGINT,
    duration_ms       DOUBLE PRECISION,
    input             TEXT,
    output            TEXT,
    decision          TEXT,
    decision_selected TEXT,
    decision_score    DOUBLE PRECISION,
    error             TEXT,
    attributes        TEXT
);
-- GET /runs/{id}: the run's steps in order.
CREATE INDEX steps_by_run ON steps (run_id, position);
-- GET /steps: newest first, keyset-paged on (started_at, step_id), narrowed by type, name, pipeline.
CREATE INDEX steps_by_time ON steps (started_at DESC, step_id DESC);
CREATE INDEX steps_by_type ON steps (step_type, started_at DESC, step_id DESC);
CREATE INDEX steps_by_name ON steps (name, started_at DESC, step_id DESC);
CREATE INDEX steps_by_pipeline_type ON steps (pipeline, step_type, started_at DESC, step_id DESC);
-- GET /steps range filters within a step type.
CREATE INDEX steps_by_type_rate ON steps (step_type, rejection_rate);
CREATE INDEX steps_by_type_duration ON steps (step_type, duration_ms);
CREATE INDEX steps_by_type_score ON steps (step_type, decision_score);
-- Item fate across runs: the steps that selected an item.
CREATE INDEX steps_by_selected ON steps (decision_selected) WHERE decision_selected IS NOT NULL;

-- Exact counts per step, outcome ('rejected' / 'accepted') and reason ('' for acceptances).
CREATE TABLE step_reasons (
    step_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason  TEXT NOT NULL,
    count   BIGINT NOT NULL,
    PRIMARY KEY (step_id, outcome, reason)
);

-- Kept item events: samples (or everything, at capture=full).
CREATE TABLE samples (
    step_id TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason  TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    run_id  TEXT NOT NULL,
    item_id TEXT NOT NULL,
    details TEXT,
    PRIMARY KEY (step_id, outcome, reason, seq)
);
-- Item fate in one run, and across runs.
CREATE INDEX samples_by_run_item ON samples (run_id, item_id);
CREATE INDEX samples_by_item ON samples (item_id);
