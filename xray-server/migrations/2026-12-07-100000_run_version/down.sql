DROP INDEX runs_by_pipeline_version;
DROP INDEX runs_by_version;
ALTER TABLE runs DROP COLUMN version;
