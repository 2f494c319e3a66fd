DROP INDEX steps_by_type;
CREATE INDEX steps_by_type ON steps (step_type, started_at DESC, step_id DESC);
CREATE INDEX steps_by_type_rate ON steps (step_type, rejection_rate);
CREATE INDEX steps_by_type_duration ON steps (step_type, duration_ms);
CREATE INDEX steps_by_type_score ON steps (step_type, decision_score);
