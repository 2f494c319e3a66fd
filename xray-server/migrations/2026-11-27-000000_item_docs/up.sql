-- Item lookups across runs, second form: instead of one `item_index` row per kept sample (whose
-- inserts land at random places in one big B-tree, so each write touched thousands of pages), a
-- step that keeps samples gets one document listing its kept items' hashes in the backend's own
-- inverted index, built for exactly this (SQLite: FTS5, `migrations_sqlite`; PostgreSQL: GIN,
-- `migrations_postgres`). `item_doc` is that document's number; entries already in `item_index`
-- stay there and are still read.
ALTER TABLE steps ADD COLUMN item_doc BIGINT;
-- Unique: a number names one step's document (NULLs, steps without one, do not collide).
CREATE UNIQUE INDEX steps_by_item_doc ON steps (item_doc);
