INSERT INTO item_fts (item_fts, rank) VALUES ('automerge', 4);
