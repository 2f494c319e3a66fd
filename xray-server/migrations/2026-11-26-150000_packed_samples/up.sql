-- Kept samples, packed: instead of one `samples` row per kept item event (~330 bytes with its
-- three index entries), each (step, outcome, reason) keeps its samples as one compressed blob
-- beside its exact count. Rows already in `samples` stay there and are still read.
ALTER TABLE step_reasons ADD COLUMN samples BYTEA;

-- A 32-bit hash of the step id, so the item index below can name a step in 4 bytes.
ALTER TABLE steps ADD COLUMN step_key BIGINT;
CREATE INDEX steps_by_key ON steps (step_key);

-- Item lookups across runs: one integer per kept sample, hash(item_id) << 32 | hash(step_id).
-- A lookup reads the range of one item's hash and then checks the steps' samples themselves, so
-- hash collisions cost a little extra reading, never a wrong answer.
CREATE TABLE item_index (
    entry BIGINT PRIMARY KEY NOT NULL
);
