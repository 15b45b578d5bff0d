-- name: insert_license(key, product_id, customer_name, customer_email, max_devices, max_sessions, features, notes, expires_at, duration, plan_id)^
INSERT INTO licenses (key, product_id, customer_name, customer_email, max_devices, max_sessions, features, notes,
                      expires_at, duration, plan_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
RETURNING id, key, product_id, customer_name, customer_email, status, max_devices, max_sessions, features, notes,
          expires_at, duration, activated_at, created_at, updated_at, plan_id;

-- name: get_product_id_by_slug(slug)$
SELECT id FROM products WHERE slug = $1;

-- name: get_license_by_key(key)^
-- The key as given (an imported key keeps its case), else upper-cased (a generated key typed in lower case).
SELECT id, key, product_id, customer_name, customer_email, status, max_devices, max_sessions, features, notes,
       expires_at, duration, activated_at, created_at, updated_at
FROM licenses WHERE key IN ($1, upper($1))
ORDER BY key = $1 DESC
LIMIT 1;

-- name: get_license_for_start(key, hardware_id)^
-- A session start's one read: the license and whether this hardware already holds one of its slots.
SELECT l.id, l.key, l.product_id, l.status, l.max_devices, l.max_sessions, l.expires_at, l.activated_at,
       EXISTS (SELECT 1 FROM devices d WHERE d.license_id = l.id AND d.hardware_id = $2) AS device_known
FROM licenses l WHERE l.key IN ($1, upper($1))
ORDER BY l.key = $1 DESC
LIMIT 1;

-- name: lock_license(id)^
-- NO KEY UPDATE: serialises changes of one license without blocking the FOR KEY SHARE lock that inserting a
-- row which references it (a session's history, a device) takes; FOR UPDATE would, and a session start that
-- marks its device seen while inserting its history would deadlock against a concurrent activation.
SELECT id, key, product_id, customer_name, customer_email, status, max_devices, max_sessions, features, notes,
       expires_at, duration, activated_at, created_at, updated_at
FROM licenses WHERE id = $1 FOR NO KEY UPDATE;

-- name: start_license_clock(id, now)^
UPDATE licenses
SET activated_at = COALESCE(activated_at, $2),
    expires_at = CASE WHEN expires_at IS NULL AND duration IS NOT NULL THEN $2 + duration ELSE expires_at END,
    updated_at = now()
WHERE id = $1
RETURNING id, key, product_id, customer_name, customer_email, status, max_devices, max_sessions, features,
          notes, expires_at, duration, activated_at, created_at, updated_at;

-- name: get_license(id)^
SELECT id, key, product_id, customer_name, customer_email, status, max_devices, max_sessions, features, notes,
       expires_at, duration, activated_at, created_at, updated_at, plan_id, personal_data_erased_at
FROM licenses WHERE id = $1;

-- name: set_license_status(id, status)^
UPDATE licenses SET status = $2, updated_at = now() WHERE id = $1
RETURNING id, key, product_id, customer_name, customer_email, status, max_devices, max_sessions, features, notes,
          expires_at, duration, activated_at, created_at, updated_at;

-- name: extend_license(id, days, now)^
UPDATE licenses
SET expires_at = CASE
        WHEN expires_at IS NOT NULL THEN GREATEST(expires_at, $3) + make_interval(days => $2)
        WHEN duration IS NOT NULL AND activated_at IS NULL THEN NULL
        ELSE expires_at END,
    duration = CASE WHEN expires_at IS NULL AND duration IS NOT NULL AND activated_at IS NULL
                    THEN duration + make_interval(days => $2) ELSE duration END,
    updated_at = now()
WHERE id = $1
RETURNING id, key, product_id, customer_name, customer_email, status, max_devices, max_sessions, features, notes,
          expires_at, duration, activated_at, created_at, updated_at;

-- name: update_license(id, customer_name, customer_email, max_devices, max_sessions, features, notes, expires_at)^
UPDATE licenses
SET customer_name = $2, customer_email = $3, max_devices = $4, max_sessions = $5, features = $6, notes = $7,
    expires_at = $8, updated_at = now()
WHERE id = $1
RETURNING id, key, product_id, customer_name, customer_email, status, max_devices, max_sessions, features, notes,
          expires_at, duration, activated_at, created_at, updated_at;

-- name: list_licenses(product_id, after_id, row_limit)
SELECT l.id, l.key, l.product_id, l.customer_name, l.customer_email, l.status, l.max_devices, l.max_sessions,
       l.features, l.notes, l.expires_at, l.duration, l.activated_at, l.created_at, l.updated_at, l.plan_id,
       (SELECT count(*) FROM devices d WHERE d.license_id = l.id) AS devices_used
FROM licenses l
WHERE ($1::bigint IS NULL OR l.product_id = $1)
  AND ($2::bigint IS NULL OR l.id < $2)
ORDER BY l.id DESC
LIMIT $3;

-- name: plan_for_these_values!
-- For the rest of the transaction, statements are planned for the values they are given. A search's LIKE
-- pattern decides whether the trigram indexes can answer it (three characters or more): the generic plan a
-- prepared statement switches to after five runs knows no pattern and reads the whole table (170 ms at
-- 100 000 licenses).
SET LOCAL plan_cache_mode = force_custom_plan;

-- name: search_recent_licenses(key, pattern, product_id, after_id, window_size, row_limit)
-- A search among the `window_size` newest licenses below the cursor, walking the primary key backwards: what
-- most searches need (a common name or domain matches often, so its first page is near). If fewer than
-- row_limit match, `search_older_licenses` goes on below the window (`search_window`).
SELECT w.*, (SELECT count(*) FROM devices d WHERE d.license_id = w.id) AS devices_used
FROM (
    SELECT l.id, l.key, l.product_id, l.customer_name, l.customer_email, l.status, l.max_devices,
           l.max_sessions, l.features, l.notes, l.expires_at, l.duration, l.activated_at, l.created_at,
           l.updated_at, l.plan_id
    FROM licenses l
    WHERE ($3::bigint IS NULL OR l.product_id = $3)
      AND ($4::bigint IS NULL OR l.id < $4)
    ORDER BY l.id DESC
    LIMIT $5
) w
WHERE w.key IN ($1, upper($1)) OR lower(w.customer_name) LIKE $2 OR lower(w.customer_email) LIKE $2
ORDER BY w.id DESC
LIMIT $6;

-- name: search_window(product_id, after_id, window_size)^
-- The licenses `search_recent_licenses` walked: how many, and the lowest id among them.
SELECT count(*) AS walked, min(id) AS floor_id
FROM (
    SELECT l.id FROM licenses l
    WHERE ($1::bigint IS NULL OR l.product_id = $1)
      AND ($2::bigint IS NULL OR l.id < $2)
    ORDER BY l.id DESC
    LIMIT $3
) w;

-- name: search_older_licenses(key, pattern, product_id, before_id, row_limit)
-- The rest of a search below the walked window: the trigram indexes of 0002 find the matches, however few
-- and wherever they are, and only those are sorted (`l.id + 0` keeps the planner from walking the primary
-- key again: a rare name whose licenses are old would make it read most of the table).
SELECT l.id, l.key, l.product_id, l.customer_name, l.customer_email, l.status, l.max_devices, l.max_sessions,
       l.features, l.notes, l.expires_at, l.duration, l.activated_at, l.created_at, l.updated_at, l.plan_id,
       (SELECT count(*) FROM devices d WHERE d.license_id = l.id) AS devices_used
FROM licenses l
WHERE (l.key IN ($1, upper($1)) OR lower(l.customer_name) LIKE $2 OR lower(l.customer_email) LIKE $2)
  AND ($3::bigint IS NULL OR l.product_id = $3)
  AND l.id < $4
ORDER BY l.id + 0 DESC
LIMIT $5;
