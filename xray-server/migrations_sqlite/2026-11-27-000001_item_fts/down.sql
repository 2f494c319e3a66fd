DROP TABLE item_fts;
