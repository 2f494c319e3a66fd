DROP TABLE reason_rollups;
DROP TABLE step_rollups;
DROP TABLE run_rollups;
DROP INDEX runs_to_roll_up;
ALTER TABLE runs DROP COLUMN rolled_up;
