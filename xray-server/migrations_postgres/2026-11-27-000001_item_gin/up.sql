-- PostgreSQL only. One row per step that kept samples, its kept items' 32-bit hashes in an array
-- under a GIN index: GIN's pending list takes new entries as appends and merges them into the
-- index in sorted batches, instead of one random B-tree insert per kept item.
CREATE SEQUENCE item_doc_seq;
CREATE TABLE item_docs (
    doc   BIGINT PRIMARY KEY NOT NULL,
    items INTEGER[] NOT NULL
);
-- The server empties the pending list in the background every 250 ms (`store::items`), so a
-- request rarely finds it over its limit (the default 4 MB) and has to merge it itself.
CREATE INDEX item_docs_by_item ON item_docs USING gin (items) WITH (fastupdate = on);
