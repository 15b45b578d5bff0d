-- name: insert_plan(product_id, name, max_devices, max_sessions, duration_days, features)^
INSERT INTO plans (product_id, name, max_devices, max_sessions, duration_days, features)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id, product_id, name, max_devices, max_sessions, duration_days, features, archived_at, created_at,
          updated_at;

-- name: get_plan(id)^
SELECT id, product_id, name, max_devices, max_sessions, duration_days, features, archived_at, created_at, updated_at
FROM plans WHERE id = $1;

-- name: lock_plan(id)^
SELECT id, product_id, name, max_devices, max_sessions, duration_days, features, archived_at, created_at, updated_at
FROM plans WHERE id = $1 FOR UPDATE;

-- name: list_plans(product_id, include_archived)
-- A product's plans (all products' when product_id is NULL), the offered ones first.
SELECT p.id, p.product_id, p.name, p.max_devices, p.max_sessions, p.duration_days, p.features, p.archived_at,
       p.created_at, p.updated_at, pr.slug AS product_slug, pr.name AS product_name
FROM plans p
JOIN products pr ON pr.id = p.product_id
WHERE ($1::bigint IS NULL OR p.product_id = $1)
  AND ($2::boolean OR p.archived_at IS NULL)
ORDER BY p.archived_at IS NOT NULL, p.product_id, lower(p.name), p.id
LIMIT 1000;

-- name: plan_name_taken(product_id, name, except_id)$
-- The names of a product's offered plans are unique, whatever their case.
SELECT EXISTS (
    SELECT 1 FROM plans
    WHERE product_id = $1 AND lower(name) = lower($2) AND archived_at IS NULL
      AND ($3::bigint IS NULL OR id <> $3)
);

-- name: update_plan(id, name, max_devices, max_sessions, duration_days, features)^
UPDATE plans
SET name = $2, max_devices = $3, max_sessions = $4, duration_days = $5, features = $6, updated_at = now()
WHERE id = $1
RETURNING id, product_id, name, max_devices, max_sessions, duration_days, features, archived_at, created_at,
          updated_at;

-- name: archive_plan(id)^
UPDATE plans SET archived_at = COALESCE(archived_at, now()), updated_at = now()
WHERE id = $1
RETURNING id, product_id, name, max_devices, max_sessions, duration_days, features, archived_at, created_at,
          updated_at;
