-- 0004: the ordered, durable event log (store/sqlite's 0004). log_head
-- holds the last seq ever assigned (one row); a unit of work that appends
-- n entries moves it by n at the end of its transaction, holding the row
-- lock until it commits, so seq order is commit order (see the package
-- doc). data and control are opaque bytes (control NULL = none).

CREATE TABLE log_head (
	one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
	seq BIGINT NOT NULL
);
INSERT INTO log_head (seq) VALUES (0);

CREATE TABLE event_log (
	seq     BIGINT PRIMARY KEY,
	type    TEXT NOT NULL,
	rooms   TEXT[] NOT NULL,
	data    BYTEA NOT NULL,
	control BYTEA,
	at      TIMESTAMPTZ NOT NULL
);
-- Trimming by age.
CREATE INDEX event_log_by_at ON event_log (at);
