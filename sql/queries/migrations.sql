-- name: create_migrations_table!
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: lock_migrations(lock_id)!
SELECT pg_advisory_lock($1);

-- name: unlock_migrations(lock_id)!
SELECT pg_advisory_unlock($1);

-- name: applied_migrations
SELECT version, checksum FROM schema_migrations ORDER BY version;

-- name: record_migration(version, checksum)!
INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2);
