DROP INDEX runs_by_replay_of;
ALTER TABLE runs DROP COLUMN replay_of;
