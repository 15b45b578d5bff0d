-- name: list_products
SELECT id, slug, name, api_key, heartbeat_interval, session_timeout, current_version, minimum_version,
       download_url, whats_new, session_policy, max_sessions, features, rate_limits, content_key_enc,
       require_signed_requests, created_at, updated_at
FROM products
ORDER BY id;

-- name: get_product(id)^
SELECT id, slug, name, api_key, heartbeat_interval, session_timeout, current_version, minimum_version,
       download_url, whats_new, session_policy, max_sessions, features, rate_limits, content_key_enc,
       require_signed_requests, created_at, updated_at
FROM products
WHERE id = $1;

-- name: lock_product(id)^
SELECT id, slug, name, api_key, heartbeat_interval, session_timeout, current_version, minimum_version,
       download_url, whats_new, session_policy, max_sessions, features, rate_limits, content_key_enc,
       require_signed_requests, created_at, updated_at
FROM products
WHERE id = $1
FOR UPDATE;

-- name: set_product_api_key(id, api_key)^
UPDATE products SET api_key = $2, updated_at = now() WHERE id = $1
RETURNING id;

-- name: notify_products_changed!
SELECT pg_notify('licsrv_products', '');
