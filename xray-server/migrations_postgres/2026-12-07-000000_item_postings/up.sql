-- PostgreSQL only. The item index at rest, packed the way SQLite's FTS5 packs it: the GIN index
-- cost about 38 bytes per kept item (issue 22), these posting lists about 4. Writes still add
-- their documents to `item_docs` (now the fresh tier); the server's maintainer moves them into
-- batches here off the request path (`store::item_batches`), documents stored before this
-- migration included, a round at a time: nothing is rebuilt here.
CREATE SEQUENCE item_batch_seq;
-- One row per batch: a bucket is picked by a hash's top `bits` bits; the smallest document
-- number is the base the bucket rows count from.
CREATE TABLE item_batches (
    batch    BIGINT PRIMARY KEY NOT NULL,
    bits     INTEGER NOT NULL CHECK (bits BETWEEN 0 AND 20),
    postings BIGINT NOT NULL,
    docs     BIGINT NOT NULL,
    min_doc  BIGINT NOT NULL,
    max_doc  BIGINT NOT NULL
);
-- One row per non-empty bucket of a batch, `slot = batch << 20 | bucket`: its (hash, document)
-- pairs sorted and delta-encoded (`store::postings`), about 256 to a row.
CREATE TABLE item_postings (
    slot     BIGINT PRIMARY KEY NOT NULL,
    postings BYTEA NOT NULL
);
