DROP INDEX steps_by_item_doc;
ALTER TABLE steps DROP COLUMN item_doc;
