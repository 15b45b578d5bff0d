-- name: insert_card_batch(product_id, count, duration_days, note, created_by, plan_id, max_devices, max_sessions, features)^
INSERT INTO card_batches (product_id, count, duration_days, note, created_by, plan_id, max_devices, max_sessions,
                          features)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
RETURNING id, product_id, count, duration_days, note, created_by, created_at, plan_id, max_devices, max_sessions,
          features;

-- name: get_card_batch(id)^
SELECT b.id, b.product_id, p.name AS product_name, b.count, b.duration_days, b.note, b.created_by, b.created_at,
       b.plan_id, pl.name AS plan_name, b.max_devices, b.max_sessions, b.features
FROM card_batches b
JOIN products p ON p.id = b.product_id
LEFT JOIN plans pl ON pl.id = b.plan_id
WHERE b.id = $1;

-- name: card_batch_product(id)^
SELECT id, archived_at FROM products WHERE id = $1;

-- name: card_batch_plan(id)^
SELECT id, product_id, name, max_devices, max_sessions, duration_days, features, archived_at FROM plans WHERE id = $1;

-- name: card_batch_open_plans(product_id)
SELECT pl.id, pl.product_id, p.name AS product_name, pl.name, pl.max_devices, pl.max_sessions, pl.duration_days,
       pl.features
FROM plans pl JOIN products p ON p.id = pl.product_id
WHERE pl.archived_at IS NULL AND p.archived_at IS NULL AND ($1::bigint IS NULL OR pl.product_id = $1)
ORDER BY p.name, pl.name
LIMIT 500;

-- name: list_card_batches(after_id, row_limit, product_id)
SELECT b.id, b.product_id, p.name AS product_name, b.count, b.duration_days, b.note, b.created_by, b.created_at,
       b.plan_id, pl.name AS plan_name, b.max_devices, b.max_sessions, b.features,
       count(*) FILTER (WHERE c.status = 'new') AS "new",
       count(*) FILTER (WHERE c.status = 'redeemed') AS redeemed,
       count(*) FILTER (WHERE c.status = 'void') AS void
FROM card_batches b
JOIN products p ON p.id = b.product_id
LEFT JOIN plans pl ON pl.id = b.plan_id
LEFT JOIN card_keys c ON c.batch_id = b.id
WHERE ($1::bigint IS NULL OR b.id < $1) AND ($3::bigint IS NULL OR b.product_id = $3)
GROUP BY b.id, p.name, pl.name
ORDER BY b.id DESC
LIMIT $2;

-- name: batch_cards(batch_id)
SELECT c.code, c.status, l.key AS license_key, c.recharged, c.hardware_id, host(c.ip) AS ip, c.redeemed_at,
       c.voided_at
FROM card_keys c LEFT JOIN licenses l ON l.id = c.license_id
WHERE c.batch_id = $1 ORDER BY c.id;

-- name: batch_cards_page(batch_id, after_id, row_limit)
SELECT c.id, c.code, c.status, c.license_id, l.key AS license_key, c.recharged, c.hardware_id, host(c.ip) AS ip,
       c.redeemed_at, c.voided_at
FROM card_keys c LEFT JOIN licenses l ON l.id = c.license_id
WHERE c.batch_id = $1 AND ($2::bigint IS NULL OR c.id > $2)
ORDER BY c.id
LIMIT $3;

-- name: find_card(code)^
SELECT c.id, c.code, c.status, c.hardware_id, host(c.ip) AS ip, c.redeemed_at, c.voided_at, c.recharged,
       c.license_id, l.key AS license_key,
       b.id AS batch_id, b.note AS batch_note, b.product_id, p.name AS product_name, p.slug AS product_slug,
       b.plan_id, pl.name AS plan_name, b.duration_days, b.max_devices, b.max_sessions, b.features,
       b.created_by, b.created_at
FROM card_keys c
JOIN card_batches b ON b.id = c.batch_id
JOIN products p ON p.id = b.product_id
LEFT JOIN plans pl ON pl.id = b.plan_id
LEFT JOIN licenses l ON l.id = c.license_id
WHERE c.code = $1;

-- name: lock_card(code)^
SELECT c.id, c.batch_id, c.code, c.status, c.license_id, c.hardware_id, host(c.ip) AS ip, c.redeemed_at,
       b.product_id, b.duration_days, b.plan_id, b.max_devices, b.max_sessions, b.features
FROM card_keys c JOIN card_batches b ON b.id = c.batch_id
WHERE c.code = $1
FOR UPDATE OF c;

-- name: insert_card_license(key, product_id, plan_id, max_devices, max_sessions, features, notes, duration)^
INSERT INTO licenses (key, product_id, plan_id, max_devices, max_sessions, features, notes, duration)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING id, key, product_id, customer_name, customer_email, status, max_devices, max_sessions, features, notes,
          expires_at, duration, activated_at, created_at, updated_at;

-- name: redeem_card(id, license_id, hardware_id, ip, now, recharged)!
UPDATE card_keys SET status = 'redeemed', license_id = $2, hardware_id = $3, ip = $4, redeemed_at = $5,
                     recharged = $6
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
-- A perpetual card ($2 NULL) makes the license perpetual; a perpetual license stays perpetual; a license whose
-- clock has not started yet gets its own duration and the card's days from now.
UPDATE licenses
SET expires_at = CASE
        WHEN $2::integer IS NULL OR (expires_at IS NULL AND duration IS NULL) THEN NULL
        ELSE GREATEST(COALESCE(expires_at, $3::timestamptz + duration), $3) + make_interval(days => $2)
    END,
    duration = CASE WHEN $2::integer IS NULL THEN NULL ELSE duration END,
    activated_at = COALESCE(activated_at, $3),
    updated_at = now()
WHERE id = $1
RETURNING id, key, product_id, customer_name, customer_email, status, max_devices, max_sessions, features, notes,
          expires_at, duration, activated_at, created_at, updated_at;
