-- `licsrv retention` (docs/personal-data.md): IP addresses older than the retention period become NULL, at
-- most `batch` rows per statement, each statement its own short transaction. Each answers how many rows it
-- blanked; the caller repeats it until a statement blanks fewer than `batch`.

-- name: blank_old_history_ips(before, batch)$
-- A session's address goes when the session ended before the cutoff (or started before it and never closed).
WITH picked AS (
    SELECT id FROM session_history
    WHERE ip IS NOT NULL AND started_at < $1 AND (ended_at IS NULL OR ended_at < $1)
    ORDER BY started_at
    LIMIT $2
), done AS (
    UPDATE session_history s SET ip = NULL FROM picked WHERE s.id = picked.id RETURNING 1
)
SELECT count(*) FROM done;

-- name: device_id_bounds^
SELECT min(id) AS low, max(id) AS high FROM devices;

-- name: blank_old_device_ips(before, from_id, to_id)$
-- Devices not seen since the cutoff lose both addresses; walked by id range (see migration 0016).
WITH done AS (
    UPDATE devices SET first_ip = NULL, last_ip = NULL
    WHERE id >= $2 AND id < $3 AND last_seen_at < $1 AND (first_ip IS NOT NULL OR last_ip IS NOT NULL)
    RETURNING 1
)
SELECT count(*) FROM done;

-- name: blank_old_card_ips(before, batch)$
WITH picked AS (
    SELECT id FROM card_keys WHERE ip IS NOT NULL AND redeemed_at < $1 ORDER BY redeemed_at LIMIT $2
), done AS (
    UPDATE card_keys c SET ip = NULL FROM picked WHERE c.id = picked.id RETURNING 1
)
SELECT count(*) FROM done;

-- name: blank_old_security_event_ips(before, batch)$
-- The address recorded inside the details (a refused card redemption's) goes with the column's.
WITH picked AS (
    SELECT id FROM security_events WHERE ip IS NOT NULL AND at < $1 ORDER BY at LIMIT $2
), done AS (
    UPDATE security_events e
    SET ip = NULL,
        details = CASE WHEN jsonb_typeof(e.details -> 'ip') = 'string'
                       THEN jsonb_set(e.details, '{ip}', '""') ELSE e.details END
    FROM picked WHERE e.id = picked.id
    RETURNING 1
)
SELECT count(*) FROM done;

-- name: blank_old_audit_ips(before, batch)$
WITH picked AS (
    SELECT id FROM audit_log WHERE ip IS NOT NULL AND at < $1 ORDER BY at LIMIT $2
), done AS (
    UPDATE audit_log a SET ip = NULL FROM picked WHERE a.id = picked.id RETURNING 1
)
SELECT count(*) FROM done;
