DROP INDEX steps_by_type_margin;
ALTER TABLE steps DROP COLUMN rank_margin;
ALTER TABLE steps DROP COLUMN ranking;
