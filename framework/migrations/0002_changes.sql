-- The change feed (see framework/src/storage/feed.rs). PostgreSQL writes it: each committed
-- transaction takes the next number from the one row of authmount_feed (whose row lock makes
-- numbers follow commit order) and records the keys it changed in authmount_changes, so
-- every node's cache learns exactly what changed with one indexed query. SQLite keeps its
-- feed in the memory of the one server process that writes it (these tables stay empty).
CREATE TABLE IF NOT EXISTS authmount_feed (
    id      INTEGER PRIMARY KEY NOT NULL,
    head    BIGINT NOT NULL,
    trimmed BIGINT NOT NULL
);
INSERT INTO authmount_feed (id, head, trimmed) VALUES (1, 0, 0) ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS authmount_changes (
    seq  BIGINT NOT NULL,
    path TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS authmount_changes_seq ON authmount_changes (seq);
