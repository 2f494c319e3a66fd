-- Going down drops the packed batches: lookups across runs then find only the documents still in
-- `item_docs` (those written since the maintainer last packed).
DROP TABLE item_postings;
DROP TABLE item_batches;
DROP SEQUENCE item_batch_seq;
