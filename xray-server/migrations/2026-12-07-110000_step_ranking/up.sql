-- A rank step's ranking (JSON: count, cutoff, scores at the cut, kept items by position) and its
-- close-call margin (the last item in's score minus the first item out's): GET /steps?margin_lt=.
ALTER TABLE steps ADD COLUMN ranking TEXT;
ALTER TABLE steps ADD COLUMN rank_margin DOUBLE PRECISION;
CREATE INDEX steps_by_type_margin ON steps (step_type, rank_margin) WHERE rank_margin IS NOT NULL;
