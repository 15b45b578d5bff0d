-- name: seed_licenses(count, product_id, prefix)$
WITH made AS (
    INSERT INTO licenses (key, product_id, customer_name, customer_email, max_devices, notes, expires_at)
    SELECT upper($3 || '-' || substr(h, 1, 5) || '-' || substr(h, 6, 5) || '-' || substr(h, 11, 5) || '-' || substr(h, 16, 5)),
           $2,
           (ARRAY['Müller', 'Schmidt', '王', '李', 'Smith', 'García'])[1 + g % 6] || ' ' || g,
           'customer' || g || '@example.com',
           1 + g % 3,
           'seeded',
           now() + make_interval(days => 30 + g % 700)
    FROM generate_series(1, $1) AS g, md5($3 || g::text) AS h
    RETURNING id
)
SELECT count(*) FROM made;

-- name: seed_history(count, prefix)$
WITH ids AS (SELECT array_agg(id) AS all_ids FROM licenses WHERE notes = 'seeded'),
made AS (
    INSERT INTO session_history (id, license_id, hardware_id, ip, client_version, started_at, last_heartbeat_at,
                                 ended_at, end_reason)
    SELECT $2 || g, ids.all_ids[1 + (g % array_length(ids.all_ids, 1))], 'hw-' || (g % 50000), '10.0.0.1',
           '2.' || (g % 5) || '.0', s, s + interval '20 minutes', s + interval '21 minutes',
           (ARRAY['normal', 'timeout', 'forced', 'replaced', 'revoked'])[1 + g % 5]
    FROM ids, generate_series(1, $1) AS g,
         LATERAL (SELECT now() - make_interval(secs => (g * 2.6)::double precision) AS s) AS t
    RETURNING 1
)
SELECT count(*) FROM made;

-- name: analyze_seeded!
ANALYZE licenses, session_history;

-- name: newest_license_id$
SELECT max(id) FROM licenses;

-- name: license_key_of(id)$
SELECT key FROM licenses WHERE id = $1;

-- name: seeded_license_ids(row_limit)
SELECT id FROM licenses WHERE notes = 'seeded' ORDER BY id LIMIT $1;
