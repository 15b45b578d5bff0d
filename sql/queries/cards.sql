-- name: insert_card_batch(product_id, count, duration_days, note, created_by)^
INSERT INTO card_batches (product_id, count, duration_days, note, created_by) VALUES ($1, $2, $3, $4, $5)
RETURNING id, product_id, count, duration_days, note, created_by, created_at;

-- name: get_card_batch(id)^
SELECT id, product_id, count, duration_days, note, created_by, created_at FROM card_batches WHERE id = $1;

-- name: list_card_batches(after_id, row_limit)
SELECT b.id, b.product_id, b.count, b.duration_days, b.note, b.created_by, b.created_at,
       count(*) FILTER (WHERE c.status = 'new') AS unused,
       count(*) FILTER (WHERE c.status = 'redeemed') AS redeemed,
       count(*) FILTER (WHERE c.status = 'void') AS void
FROM card_batches b
LEFT JOIN card_keys c ON c.batch_id = b.id
WHERE ($1::bigint IS NULL OR b.id < $1)
GROUP BY b.id
ORDER BY b.id DESC
LIMIT $2;

-- name: batch_cards(batch_id)
SELECT c.code, c.status, l.key AS license_key, c.hardware_id, host(c.ip) AS ip, c.redeemed_at, c.voided_at
FROM card_keys c LEFT JOIN licenses l ON l.id = c.license_id
WHERE c.batch_id = $1 ORDER BY c.id;

-- name: lock_card(code)^
SELECT c.id, c.batch_id, c.code, c.status, c.license_id, c.hardware_id, host(c.ip) AS ip, c.redeemed_at,
       b.product_id, b.duration_days
FROM card_keys c JOIN card_batches b ON b.id = c.batch_id
WHERE c.code = $1
FOR UPDATE OF c;

-- name: redeem_card(id, license_id, hardware_id, ip, now)!
UPDATE card_keys SET status = 'redeemed', license_id = $2, hardware_id = $3, ip = $4, redeemed_at = $5
WHERE id = $1;

-- name: rebind_card(id, hardware_id, ip)!
UPDATE card_keys SET hardware_id = $2, ip = $3 WHERE id = $1;

-- name: void_batch_cards(batch_id)$
WITH voided AS (
    UPDATE card_keys SET status = 'void', voided_at = now() WHERE batch_id = $1 AND status = 'new' RETURNING 1
)
SELECT count(*) FROM voided;

-- name: void_card(code)^
UPDATE card_keys SET status = 'void', voided_at = now() WHERE code = $1 AND status = 'new'
RETURNING id, batch_id, code;

-- name: recharge_license(id, days, now)^
UPDATE licenses
SET expires_at = GREATEST(COALESCE(expires_at, $3), $3) + make_interval(days => $2),
    activated_at = COALESCE(activated_at, $3),
    updated_at = now()
WHERE id = $1
RETURNING id, key, product_id, customer_name, customer_email, status, max_devices, max_sessions, features, notes,
          expires_at, duration, activated_at, created_at, updated_at;
