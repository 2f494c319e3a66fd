DROP TABLE item_docs;
DROP SEQUENCE item_doc_seq;
