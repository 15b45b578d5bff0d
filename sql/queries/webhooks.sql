-- name: webhook_emit(type, data)$
-- The outbox write (the function of migration 0009): nothing when no enabled endpoint subscribes.
SELECT webhook_emit($1, $2::jsonb);

-- name: subscribed_event_types
SELECT DISTINCT unnest(events) AS type FROM webhook_endpoints WHERE enabled;

-- name: insert_webhook_endpoint(url, events, description, secret)^
WITH created AS (
    INSERT INTO webhook_endpoints (url, events, description, secret)
    VALUES ($1, $2, $3, $4)
    RETURNING *
)
SELECT created.*, pg_notify('licsrv_webhook_endpoints', '') IS NULL AS notified FROM created;

-- name: list_webhook_endpoints
SELECT e.*,
       (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.status = 'pending') AS pending,
       (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.status = 'failed') AS failed
FROM webhook_endpoints e
ORDER BY e.id;

-- name: get_webhook_endpoint(id)^
SELECT * FROM webhook_endpoints WHERE id = $1;

-- name: update_webhook_endpoint(id, url, events, description, enabled)^
-- Enabling an endpoint clears why it was disabled and its failure streak.
WITH changed AS (
    UPDATE webhook_endpoints
    SET url = $2, events = $3, description = $4, enabled = $5,
        disabled_reason = CASE WHEN $5 THEN '' ELSE disabled_reason END,
        failing_since = CASE WHEN $5 AND NOT enabled THEN NULL ELSE failing_since END,
        updated_at = now()
    WHERE id = $1
    RETURNING *
)
SELECT changed.*, pg_notify('licsrv_webhook_endpoints', '') IS NULL AS notified FROM changed;

-- name: rotate_webhook_secret(id, secret, overlap_seconds)^
-- The old secret keeps signing (beside the new one) for the overlap, so receivers can switch without a gap.
UPDATE webhook_endpoints
SET previous_secret = secret,
    previous_secret_expires_at = now() + make_interval(secs => $3),
    secret = $2,
    updated_at = now()
WHERE id = $1
RETURNING *;

-- name: delete_webhook_endpoint(id)^
WITH deleted AS (DELETE FROM webhook_endpoints WHERE id = $1 RETURNING id)
SELECT id, pg_notify('licsrv_webhook_endpoints', '') IS NULL AS notified FROM deleted;

-- name: insert_test_event(endpoint_id, id, data)$
-- A test event for one endpoint, whatever it subscribes to.
WITH event AS (
    INSERT INTO webhook_events (id, type, data) VALUES ($2, 'webhook.test', $3::jsonb) RETURNING id
), delivery AS (
    INSERT INTO webhook_deliveries (event_id, endpoint_id) SELECT id, $1 FROM event RETURNING id
)
SELECT delivery.id FROM delivery, (SELECT pg_notify('licsrv_webhooks', '')) AS n;

-- name: claim_due_deliveries(row_limit)
-- Locked until the claiming transaction ends: another worker skips them, a worker that dies releases them.
SELECT d.id, d.event_id, d.endpoint_id, d.attempts, d.retry_from,
       e.url, e.secret, e.previous_secret, e.previous_secret_expires_at,
       ev.type, ev.data, ev.created_at AS event_created_at
FROM webhook_deliveries d
JOIN webhook_endpoints e ON e.id = d.endpoint_id
JOIN webhook_events ev ON ev.id = d.event_id
WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND e.enabled
ORDER BY d.next_attempt_at
LIMIT $1
FOR UPDATE OF d SKIP LOCKED;

-- name: insert_webhook_attempts(delivery_id, status_code, ok, latency_ms, error, response_excerpt)*!
INSERT INTO webhook_attempts (delivery_id, status_code, ok, latency_ms, error, response_excerpt)
VALUES ($1, $2, $3, $4, $5, $6);

-- name: finish_deliveries(ids, statuses, next_attempt_ats)!
-- `delivered` and `failed` are final; `pending` is retried at its next_attempt_at.
UPDATE webhook_deliveries AS d
SET status = t.status,
    attempts = d.attempts + 1,
    next_attempt_at = COALESCE(t.next_attempt_at, d.next_attempt_at),
    finished_at = CASE WHEN t.status = 'pending' THEN NULL ELSE now() END
FROM unnest($1::bigint[], $2::text[], $3::timestamptz[]) AS t (id, status, next_attempt_at)
WHERE d.id = t.id;

-- name: record_endpoint_health(ok_ids, failed_ids)!
-- A success ends an endpoint's failure streak, a failure starts one (shown to the owner). Rows are locked in
-- id order, so workers recording outcomes for the same endpoints never deadlock.
UPDATE webhook_endpoints AS e
SET failing_since = CASE WHEN e.id = ANY ($1::bigint[]) THEN NULL ELSE COALESCE(e.failing_since, now()) END
FROM (
    SELECT id FROM webhook_endpoints WHERE id = ANY ($1::bigint[] || $2::bigint[]) ORDER BY id FOR UPDATE
) AS locked
WHERE e.id = locked.id;

-- name: disable_exhausted_endpoints(endpoint_ids, retry_froms, reason)
-- A delivery that used up its whole retry window while its endpoint answered nothing successfully since the
-- window began: the endpoint has been failing for the whole window and is disabled, saying why.
UPDATE webhook_endpoints AS e
SET enabled = false, disabled_reason = $3, updated_at = now()
FROM unnest($1::bigint[], $2::timestamptz[]) AS t (endpoint_id, retry_from)
WHERE e.id = t.endpoint_id AND e.enabled
  AND NOT EXISTS (
      SELECT 1 FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
      WHERE d.endpoint_id = e.id AND a.ok AND a.attempted_at >= t.retry_from
  )
RETURNING e.id;

-- name: notify_webhook_endpoints!
SELECT pg_notify('licsrv_webhook_endpoints', '');

-- name: list_webhook_attempts(endpoint_id, row_limit)
SELECT a.id, a.delivery_id, d.event_id, ev.type, d.status AS delivery_status, a.attempted_at, a.status_code,
       a.ok, a.latency_ms, a.error, a.response_excerpt
FROM webhook_attempts a
JOIN webhook_deliveries d ON d.id = a.delivery_id
JOIN webhook_events ev ON ev.id = d.event_id
WHERE d.endpoint_id = $1
ORDER BY a.id DESC
LIMIT $2;

-- name: list_webhook_deliveries(endpoint_id, row_limit)
SELECT d.id, d.event_id, ev.type, d.status, d.attempts, d.next_attempt_at, d.created_at, d.finished_at
FROM webhook_deliveries d
JOIN webhook_events ev ON ev.id = d.event_id
WHERE d.endpoint_id = $1
ORDER BY d.id DESC
LIMIT $2;

-- name: resend_delivery(endpoint_id, delivery_id)$
-- Sent again as soon as a worker is free, with a fresh retry window (same event id: receivers deduplicate).
WITH again AS (
    UPDATE webhook_deliveries
    SET status = 'pending', next_attempt_at = now(), retry_from = now(), finished_at = NULL
    WHERE id = $2 AND endpoint_id = $1
    RETURNING id
)
SELECT again.id FROM again, (SELECT pg_notify('licsrv_webhooks', '')) AS n;

-- name: take_webhook_leadership$
-- One worker at a time scans for expired licenses and prunes old rows (released at the transaction's end).
SELECT pg_try_advisory_xact_lock(hashtext('licsrv.webhooks.leader'));

-- name: licenses_expired_since_scan(now, row_limit)
SELECT l.id, l.key, l.product_id, l.status, l.customer_name, l.customer_email, l.max_devices,
       l.max_sessions, l.expires_at
FROM licenses l, webhook_scan_state s
WHERE s.name = 'license.expired' AND l.expires_at > s.scanned_to AND l.expires_at <= $1
ORDER BY l.expires_at
LIMIT $2;

-- name: set_expiry_scanned_to(scanned_to)!
UPDATE webhook_scan_state SET scanned_to = $1 WHERE name = 'license.expired';

-- name: prune_webhook_attempts(before, row_limit)$
WITH old AS (
    DELETE FROM webhook_attempts WHERE id IN (
        SELECT id FROM webhook_attempts WHERE attempted_at < $1 ORDER BY attempted_at LIMIT $2
    ) RETURNING 1
)
SELECT count(*) FROM old;

-- name: prune_webhook_events(before, row_limit)$
-- Events whose deliveries are all finished, older than the retention (their deliveries go with them).
WITH old AS (
    DELETE FROM webhook_events WHERE id IN (
        SELECT ev.id FROM webhook_events ev
        WHERE ev.created_at < $1
          AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = ev.id AND d.status = 'pending')
        ORDER BY ev.created_at LIMIT $2
    ) RETURNING 1
)
SELECT count(*) FROM old;
