-- The version of the pipeline's code a run ran (a release, a commit…): GET /runs?version=, and
-- the versions of each pipeline in GET /pipelines.
ALTER TABLE runs ADD COLUMN version TEXT;
CREATE INDEX runs_by_version ON runs (version, started_at DESC, run_id DESC)
    WHERE version IS NOT NULL;
CREATE INDEX runs_by_pipeline_version ON runs (pipeline, version) WHERE version IS NOT NULL;
