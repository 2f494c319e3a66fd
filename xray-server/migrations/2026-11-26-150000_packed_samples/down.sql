DROP TABLE item_index;
DROP INDEX steps_by_key;
ALTER TABLE steps DROP COLUMN step_key;
ALTER TABLE step_reasons DROP COLUMN samples;
