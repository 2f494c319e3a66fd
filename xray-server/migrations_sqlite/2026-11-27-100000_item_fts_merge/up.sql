-- Merge FTS5 segments 16 at a time instead of 4: each item hash is rewritten about half as often
-- as the index grows (merging was a third of the item index's cost on the write path), at the
-- price of up to 15 segments a level to read in a lookup (still well under a millisecond at 1M
-- steps, `scale` bench).
INSERT INTO item_fts (item_fts, rank) VALUES ('automerge', 16);
