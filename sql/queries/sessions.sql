-- name: record_session_start(id, license_id, hardware_id, ip, client_version, started_at, machine_name, event)^
-- One statement: the session's history row, its device marked seen, and (when `event` is not null) its
-- session.started event in the webhook outbox. Nothing is recorded (`recorded` false) when the device is
-- gone: a removal committed while this start was under way (the UPDATE waited for its row lock, then found
-- no row), and ended no session because this one was not recorded yet.
WITH seen AS (
    UPDATE devices
    SET machine_name = CASE WHEN $7 = '' THEN machine_name ELSE $7 END,
        last_ip = COALESCE($4, last_ip),
        client_version = CASE WHEN $5 = '' THEN client_version ELSE $5 END,
        last_seen_at = $6
    WHERE license_id = $2 AND hardware_id = $3
    RETURNING id
), started AS (
    INSERT INTO session_history (id, license_id, hardware_id, ip, client_version, started_at, last_heartbeat_at)
    SELECT $1, $2, $3, $4, $5, $6, $6 FROM seen
    RETURNING id
)
SELECT count(*) = 1 AS recorded,
       count(CASE WHEN $8::jsonb IS NOT NULL THEN webhook_emit('session.started', $8::jsonb) END) AS events
FROM started;

-- name: close_session_history(id, ended_at, end_reason, event)^
-- Only the statement that closes the row writes the webhook event `event` (when not null): exactly once.
WITH closed AS (
    UPDATE session_history
    SET ended_at = $2, end_reason = $3, last_heartbeat_at = GREATEST(last_heartbeat_at, LEAST($2, now()))
    WHERE id = $1 AND ended_at IS NULL
    RETURNING id, license_id, hardware_id, ended_at, end_reason
)
SELECT id, license_id,
       CASE WHEN $4::text IS NOT NULL THEN webhook_emit($4, jsonb_build_object(
           'session_id', id, 'license_id', license_id, 'hardware_id', hardware_id,
           'end_reason', end_reason, 'ended_at', ended_at)) END AS event_id
FROM closed;

-- name: close_timed_out_sessions(ids, ended_ats, timeout_seconds, emit)
-- The rows this statement closes, each with its session.timed_out event when `emit`: however many workers
-- and listings close the same session, one of them closes it and only that one writes the event.
WITH closed AS (
    UPDATE session_history AS h
    SET ended_at = t.ended_at,
        end_reason = 'timeout',
        last_heartbeat_at = GREATEST(h.started_at, t.ended_at - make_interval(secs => $3))
    FROM unnest($1::text[], $2::timestamptz[]) AS t (id, ended_at)
    WHERE h.id = t.id AND h.ended_at IS NULL
    RETURNING h.id, h.license_id, h.hardware_id, h.ended_at
)
SELECT id, license_id,
       CASE WHEN $4::boolean THEN webhook_emit('session.timed_out', jsonb_build_object(
           'session_id', id, 'license_id', license_id, 'hardware_id', hardware_id,
           'end_reason', 'timeout', 'ended_at', ended_at)) END AS event_id
FROM closed;

-- name: close_license_sessions(license_id, ended_at, end_reason, emit)*
WITH closed AS (
    UPDATE session_history
    SET ended_at = $2, end_reason = $3
    WHERE license_id = $1 AND ended_at IS NULL
    RETURNING id, license_id, hardware_id, ended_at, end_reason
)
SELECT id,
       CASE WHEN $4::boolean THEN webhook_emit('session.terminated', jsonb_build_object(
           'session_id', id, 'license_id', license_id, 'hardware_id', hardware_id,
           'end_reason', end_reason, 'ended_at', ended_at)) END AS event_id
FROM closed;

-- name: get_session_history(id)^
SELECT id, license_id, hardware_id, ip, client_version, started_at, last_heartbeat_at, ended_at, end_reason
FROM session_history WHERE id = $1;

-- name: query_history(license_id, since, until, end_reason, before_started, before_id, row_limit, product_id)
SELECT h.id, h.license_id, l.key AS license_key, l.customer_name, l.product_id, h.hardware_id,
       host(h.ip) AS ip, h.client_version, h.started_at, h.last_heartbeat_at, h.ended_at, h.end_reason
FROM session_history h
JOIN licenses l ON l.id = h.license_id
WHERE ($1::bigint IS NULL OR h.license_id = $1)
  AND ($8::bigint IS NULL OR l.product_id = $8)
  AND h.started_at >= $2
  AND ($3::timestamptz IS NULL OR h.started_at < $3)
  AND ($4::text IS NULL OR h.end_reason = $4)
  AND ($5::timestamptz IS NULL OR (h.started_at, h.id) < ($5, $6))
ORDER BY h.started_at DESC, h.id DESC
LIMIT $7;

-- name: get_license_product_id(id)$
SELECT product_id FROM licenses WHERE id = $1;

-- name: open_sessions_of_device(license_id, hardware_id)
SELECT id FROM session_history WHERE license_id = $1 AND hardware_id = $2 AND ended_at IS NULL;

-- name: open_sessions_page(license_id, product_id, before_started, before_id, row_limit)
-- Newest first, a page at a time (the partial index on open rows keeps this cheap at a million).
SELECT h.id, h.license_id, h.hardware_id, host(h.ip) AS ip, h.client_version, h.started_at,
       l.key AS license_key, l.customer_name, l.product_id
FROM session_history h
JOIN licenses l ON l.id = h.license_id
WHERE h.ended_at IS NULL
  AND ($1::bigint IS NULL OR h.license_id = $1)
  AND ($2::bigint IS NULL OR l.product_id = $2)
  AND ($3::timestamptz IS NULL OR (h.started_at, h.id) < ($3, $4))
ORDER BY h.started_at DESC, h.id DESC
LIMIT $5;

-- name: count_open_sessions(cap)$
SELECT count(*) FROM (SELECT 1 FROM session_history WHERE ended_at IS NULL LIMIT $1) AS open_rows;

-- name: count_open_sessions_of_product(product_id, cap)$
SELECT count(*) FROM (
    SELECT 1 FROM session_history h JOIN licenses l ON l.id = h.license_id
    WHERE h.ended_at IS NULL AND l.product_id = $1
    LIMIT $2
) AS open_rows;

-- name: estimate_open_sessions$
-- The planner's count of open rows (kept by autovacuum): for a badge beyond the exact count's cap.
SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE relname = 'session_history_open';
