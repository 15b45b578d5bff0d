-- name: list_products
SELECT id, slug, name, api_key, heartbeat_interval, session_timeout, current_version, minimum_version,
       download_url, whats_new, session_policy, max_sessions, features, rate_limits, content_key_enc,
       require_signed_requests, previous_api_key, previous_api_key_expires_at, offline_renewal_days,
       archived_at, created_at, updated_at
FROM products
ORDER BY id;

-- name: get_product(id)^
SELECT id, slug, name, api_key, heartbeat_interval, session_timeout, current_version, minimum_version,
       download_url, whats_new, session_policy, max_sessions, features, rate_limits, content_key_enc,
       require_signed_requests, previous_api_key, previous_api_key_expires_at, offline_renewal_days,
       archived_at, created_at, updated_at
FROM products
WHERE id = $1;

-- name: lock_product(id)^
SELECT id, slug, name, api_key, heartbeat_interval, session_timeout, current_version, minimum_version,
       download_url, whats_new, session_policy, max_sessions, features, rate_limits, content_key_enc,
       require_signed_requests, previous_api_key, previous_api_key_expires_at, offline_renewal_days,
       archived_at, created_at, updated_at
FROM products
WHERE id = $1
FOR UPDATE;

-- name: set_product_api_key(id, api_key, previous_api_key, previous_api_key_expires_at)^
-- The previous key keeps working until it expires (NULL: refused at once).
UPDATE products
SET api_key = $2, previous_api_key = $3, previous_api_key_expires_at = $4, updated_at = now()
WHERE id = $1
RETURNING id;

-- name: retire_previous_api_key(id)!
UPDATE products SET previous_api_key = NULL, previous_api_key_expires_at = NULL, updated_at = now()
WHERE id = $1;

-- name: notify_products_changed!
SELECT pg_notify('licsrv_products', '');

-- name: update_product(id, current_version, minimum_version, download_url, whats_new, session_policy, max_sessions, heartbeat_interval, session_timeout, features, rate_limits, require_signed_requests, offline_renewal_days, name)!
UPDATE products
SET current_version = $2, minimum_version = $3, download_url = $4, whats_new = $5, session_policy = $6,
    max_sessions = $7, heartbeat_interval = $8, session_timeout = $9, features = $10, rate_limits = $11,
    require_signed_requests = $12, offline_renewal_days = $13, name = $14, updated_at = now()
WHERE id = $1;

-- name: set_product_content_key(id, content_key_enc)!
UPDATE products SET content_key_enc = $2, updated_at = now() WHERE id = $1;

-- name: insert_product(slug, name, api_key, current_version, minimum_version, download_url, whats_new, session_policy, max_sessions, heartbeat_interval, session_timeout, features, rate_limits, require_signed_requests, offline_renewal_days)$
INSERT INTO products (slug, name, api_key, current_version, minimum_version, download_url, whats_new,
                      session_policy, max_sessions, heartbeat_interval, session_timeout, features, rate_limits,
                      require_signed_requests, offline_renewal_days)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
RETURNING id;

-- name: product_slug_taken(slug)$
SELECT EXISTS (SELECT 1 FROM products WHERE slug = $1);

-- name: api_key_taken(api_key)$
-- A client key names one product: neither a current key nor one still in its grace period.
SELECT EXISTS (SELECT 1 FROM products WHERE api_key = $1 OR previous_api_key = $1);

-- name: set_product_archived(id, archived)!
UPDATE products
SET archived_at = CASE WHEN $2::boolean THEN COALESCE(archived_at, now()) END, updated_at = now()
WHERE id = $1;

-- name: get_product_archived_at(id)^
SELECT archived_at FROM products WHERE id = $1;
