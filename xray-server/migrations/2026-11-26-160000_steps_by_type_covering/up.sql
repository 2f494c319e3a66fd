-- GET /steps?step_type=...&rejection_rate_gt=... (or duration_gt, score_gt): the range indexes
-- made SQLite fetch every step in the range and sort them all by time, a cost that grew with the
-- data (27 ms at 100,000 steps, ~300 ms at 1,000,000). Instead, walk one type's steps newest first
-- and test the range on the index entry itself, stopping at the page size: the range columns ride
-- along in the index, so rejected entries cost no table read.
DROP INDEX steps_by_type_rate;
DROP INDEX steps_by_type_duration;
DROP INDEX steps_by_type_score;
DROP INDEX steps_by_type;
CREATE INDEX steps_by_type ON steps (step_type, started_at DESC, step_id DESC, rejection_rate, duration_ms, decision_score);
