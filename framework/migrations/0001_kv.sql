-- One key space for every storage backend (SQLite and PostgreSQL run this same file):
-- a path such as `core/mounts` or `auth/<uuid>/role/demo`, and its value as bytes (JSON).
CREATE TABLE IF NOT EXISTS authmount_kv (
    path  TEXT PRIMARY KEY NOT NULL,
    value BYTEA NOT NULL
);
