-- Links to other systems: the caller's correlation id and the W3C trace the run belongs to.
ALTER TABLE runs ADD COLUMN correlation_id TEXT;
ALTER TABLE runs ADD COLUMN trace_id TEXT;
ALTER TABLE runs ADD COLUMN traceparent TEXT;
-- GET /runs?correlation_id= and ?trace_id=, newest first.
CREATE INDEX runs_by_correlation ON runs (correlation_id, started_at DESC, run_id DESC)
    WHERE correlation_id IS NOT NULL;
CREATE INDEX runs_by_trace ON runs (trace_id, started_at DESC, run_id DESC)
    WHERE trace_id IS NOT NULL;

-- Alert rules: from the config file (source 'config') or POST /alerts (source 'api').
CREATE TABLE alerts (
    alert_id    TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    rule        TEXT NOT NULL,
    webhook_url TEXT NOT NULL,
    source      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    -- For conditions over a window: the firing in progress (NULL when the condition is false).
    firing_key  TEXT
);

-- Firings: one row per rule and window, so a window is notified once whichever server sees it.
-- Delivery state lives here too: any server may claim a due firing ('pending' with
-- next_attempt_at passed, or 'sending' whose claim lapsed because its server died) and POST it.
CREATE TABLE alert_events (
    alert_id        TEXT NOT NULL,
    window_key      TEXT NOT NULL,
    fired_at        BIGINT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    last_error      TEXT,
    delivered_at    BIGINT,
    next_attempt_at BIGINT NOT NULL,
    claimed_until   BIGINT,
    PRIMARY KEY (alert_id, window_key)
);
CREATE INDEX alert_events_by_time ON alert_events (alert_id, fired_at DESC);
CREATE INDEX alert_events_due ON alert_events (next_attempt_at)
    WHERE status = 'pending' OR status = 'sending';
