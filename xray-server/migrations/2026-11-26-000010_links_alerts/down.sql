DROP TABLE alert_events;
DROP TABLE alerts;
DROP INDEX runs_by_trace;
DROP INDEX runs_by_correlation;
ALTER TABLE runs DROP COLUMN traceparent;
ALTER TABLE runs DROP COLUMN trace_id;
ALTER TABLE runs DROP COLUMN correlation_id;
