-- Licenses made with a given key, and the bulk import of licenses from an older system
-- (services/license_import.py): each statement takes a whole chunk of rows as arrays, one round trip per chunk.

-- name: license_key_exists(key)$
SELECT EXISTS (SELECT 1 FROM licenses WHERE key = $1);

-- name: import_subscribed_event_types
SELECT DISTINCT unnest(events) AS type FROM webhook_endpoints WHERE enabled;

-- name: import_products
SELECT id, slug, archived_at FROM products ORDER BY id;

-- name: import_plans
SELECT id, product_id, name, max_devices, max_sessions, duration_days, features, archived_at
FROM plans ORDER BY id;

-- name: import_read_licenses(keys)
-- The licenses a chunk names, with the hardware ids they already hold (unlocked: most lines of a re-run
-- change nothing, and locking would write every row; the lines that change are read again, locked).
SELECT l.id, l.key, l.product_id, l.plan_id, l.customer_name, l.customer_email, l.status, l.max_devices,
       l.max_sessions, l.features, l.notes, l.expires_at, l.duration, l.activated_at,
       ARRAY(SELECT d.hardware_id FROM devices d WHERE d.license_id = l.id ORDER BY d.id) AS hardware_ids
FROM licenses l
WHERE l.key = ANY ($1::text[]);

-- name: import_lock_licenses(keys)
-- The licenses a chunk changes, locked until the chunk commits, with the hardware ids they already hold.
SELECT l.id, l.key, l.product_id, l.plan_id, l.customer_name, l.customer_email, l.status, l.max_devices,
       l.max_sessions, l.features, l.notes, l.expires_at, l.duration, l.activated_at,
       ARRAY(SELECT d.hardware_id FROM devices d WHERE d.license_id = l.id ORDER BY d.id) AS hardware_ids
FROM licenses l
WHERE l.key = ANY ($1::text[])
ORDER BY l.id
FOR NO KEY UPDATE OF l;

-- name: import_insert_licenses(keys, product_ids, plan_ids, names, emails, max_devices, max_sessions, features, notes, statuses, expires_at, duration_days, emit)
WITH made AS (
    INSERT INTO licenses (key, product_id, plan_id, customer_name, customer_email, max_devices, max_sessions,
                          features, notes, status, expires_at, duration)
    SELECT u.key, u.product_id, u.plan_id, u.name, u.email, u.max_devices, u.max_sessions, u.features::jsonb,
           u.notes, u.status, u.expires_at, make_interval(days => u.duration_days)
    FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::int[], $7::int[],
                $8::text[], $9::text[], $10::text[], $11::timestamptz[], $12::int[])
         AS u(key, product_id, plan_id, name, email, max_devices, max_sessions, features, notes, status,
              expires_at, duration_days)
    RETURNING id, key, product_id, status, customer_name, customer_email, max_devices, max_sessions, expires_at
)
SELECT id, key,
       CASE WHEN $13::boolean THEN webhook_emit('license.created', jsonb_build_object(
           'license_id', id, 'license_key', key, 'product_id', product_id, 'status', status,
           'customer_name', customer_name, 'customer_email', customer_email, 'max_devices', max_devices,
           'max_sessions', max_sessions, 'expires_at', expires_at)) END AS event_id
FROM made;

-- name: import_update_licenses(ids, plan_ids, names, emails, max_devices, max_sessions, features, notes, statuses, expires_at, duration_days, emit)
WITH changed AS (
    UPDATE licenses l
    SET plan_id = u.plan_id, customer_name = u.name, customer_email = u.email, max_devices = u.max_devices,
        max_sessions = u.max_sessions, features = u.features::jsonb, notes = u.notes, status = u.status,
        expires_at = u.expires_at, duration = make_interval(days => u.duration_days), updated_at = now()
    FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::int[], $6::int[], $7::text[],
                $8::text[], $9::text[], $10::timestamptz[], $11::int[])
         AS u(id, plan_id, name, email, max_devices, max_sessions, features, notes, status, expires_at,
              duration_days)
    WHERE l.id = u.id
    RETURNING l.id, l.key, l.product_id, l.status, l.customer_name, l.customer_email, l.max_devices,
              l.max_sessions, l.expires_at
)
SELECT id,
       CASE WHEN $12::boolean THEN webhook_emit('license.updated', jsonb_build_object(
           'license_id', id, 'license_key', key, 'product_id', product_id, 'status', status,
           'customer_name', customer_name, 'customer_email', customer_email, 'max_devices', max_devices,
           'max_sessions', max_sessions, 'expires_at', expires_at, 'changed', jsonb_build_array('import')))
       END AS event_id
FROM changed;

-- name: import_insert_devices(license_ids, hardware_ids, now)!
-- Devices the older system had activated: they hold their slots from now on, as if activated here.
INSERT INTO devices (license_id, hardware_id, first_seen_at, last_seen_at)
SELECT u.license_id, u.hardware_id, $3, $3
FROM unnest($1::bigint[], $2::text[]) AS u(license_id, hardware_id)
ON CONFLICT (license_id, hardware_id) DO NOTHING;
