DROP TABLE item_doc_seq;
DROP TABLE item_fts;
