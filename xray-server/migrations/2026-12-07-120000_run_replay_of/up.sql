-- The run or step a run replays (GET /runs?replay_of=; the web UI links the two).
ALTER TABLE runs ADD COLUMN replay_of TEXT;
CREATE INDEX runs_by_replay_of ON runs (replay_of, started_at DESC, run_id DESC)
    WHERE replay_of IS NOT NULL;
