-- name: insert_license(key, product_id, customer_name, customer_email, max_devices, max_sessions, features, notes, expires_at, duration)^
INSERT INTO licenses (key, product_id, customer_name, customer_email, max_devices, max_sessions, features, notes,
                      expires_at, duration)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
RETURNING id, key, product_id, customer_name, customer_email, status, max_devices, max_sessions, features, notes,
          expires_at, duration, activated_at, created_at, updated_at;

-- name: get_product_id_by_slug(slug)$
SELECT id FROM products WHERE slug = $1;

-- name: get_license_by_key(key)^
SELECT id, key, product_id, customer_name, customer_email, status, max_devices, max_sessions, features, notes,
       expires_at, duration, activated_at, created_at, updated_at
FROM licenses WHERE key = $1;

-- name: lock_license(id)^
SELECT id, key, product_id, customer_name, customer_email, status, max_devices, max_sessions, features, notes,
       expires_at, duration, activated_at, created_at, updated_at
FROM licenses WHERE id = $1 FOR UPDATE;

-- name: start_license_clock(id, now)^
UPDATE licenses
SET activated_at = COALESCE(activated_at, $2),
    expires_at = CASE WHEN expires_at IS NULL AND duration IS NOT NULL THEN $2 + duration ELSE expires_at END,
    updated_at = now()
WHERE id = $1
RETURNING id, key, product_id, customer_name, customer_email, status, max_devices, max_sessions, features,
          notes, expires_at, duration, activated_at, created_at, updated_at;
