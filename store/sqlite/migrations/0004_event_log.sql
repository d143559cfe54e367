-- 0004: the ordered, durable event log. log_head holds the last seq ever
-- assigned (one row); a unit of work that appends n entries moves it by n
-- under SQLite's single writer and inserts its entries with those seqs, so
-- seq order is commit order. rooms is a JSON array of strings; data and
-- control are opaque bytes (control NULL = none); at is microseconds.

CREATE TABLE log_head (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	seq INTEGER NOT NULL
);
INSERT INTO log_head (id, seq) VALUES (1, 0);

CREATE TABLE event_log (
	seq     INTEGER PRIMARY KEY,
	type    TEXT NOT NULL,
	rooms   TEXT NOT NULL,
	data    BLOB NOT NULL,
	control BLOB,
	at      INTEGER NOT NULL
);
-- Trimming by age.
CREATE INDEX event_log_by_at ON event_log (at);
