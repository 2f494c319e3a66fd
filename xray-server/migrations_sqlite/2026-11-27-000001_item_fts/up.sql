-- SQLite only. One document per step that kept samples (rowid = steps.item_doc), its text the
-- kept items' 32-bit hashes as tokens `k0123abcd`. FTS5 writes each transaction's documents as a
-- new segment and merges segments in the background of later writes (a log-structured index), so
-- an insert costs a few sequential pages instead of one random page per item. `detail=none`:
-- only which documents hold a token is kept; `contentless_delete=1`: retention can delete by rowid.
CREATE VIRTUAL TABLE item_fts USING fts5(
    items,
    content = '',
    contentless_delete = 1,
    detail = none,
    tokenize = 'ascii'
);

-- Document numbers: a counter that only goes up, so a number is never handed out twice (FTS5
-- would merge a reused number's old and new documents without complaint).
CREATE TABLE item_doc_seq (
    id   INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    last BIGINT NOT NULL
);
INSERT INTO item_doc_seq (id, last) VALUES (1, 0);
