-- The row-per-heartbeat baseline of `licsrv bench` (the older server's design): one UPDATE per heartbeat.
-- These run only in the benchmark's own database, never in the application's.

-- name: bench_create_sessions_table!
CREATE TABLE IF NOT EXISTS sessions (
    token          text PRIMARY KEY,
    last_heartbeat timestamptz NOT NULL DEFAULT now()
);

-- name: bench_insert_session(token)*!
INSERT INTO sessions (token) VALUES ($1) ON CONFLICT (token) DO NOTHING;

-- name: bench_touch_session(token)$
UPDATE sessions SET last_heartbeat = now() WHERE token = $1 RETURNING 1;
