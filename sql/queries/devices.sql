-- name: get_device(license_id, hardware_id)^
SELECT id, license_id, hardware_id, machine_name, host(first_ip) AS first_ip, host(last_ip) AS last_ip,
       client_version, first_seen_at, last_seen_at
FROM devices WHERE license_id = $1 AND hardware_id = $2;

-- name: count_devices(license_id)$
SELECT count(*) FROM devices WHERE license_id = $1;

-- name: insert_device(license_id, hardware_id, machine_name, ip, client_version, now)$
INSERT INTO devices (license_id, hardware_id, machine_name, first_ip, last_ip, client_version, first_seen_at,
                     last_seen_at)
VALUES ($1, $2, $3, $4, $4, $5, $6, $6)
RETURNING id;

-- name: touch_device(id, machine_name, ip, client_version, now)!
UPDATE devices
SET machine_name = CASE WHEN $2 = '' THEN machine_name ELSE $2 END,
    last_ip = COALESCE($3, last_ip),
    client_version = CASE WHEN $4 = '' THEN client_version ELSE $4 END,
    last_seen_at = $5
WHERE id = $1;

-- name: list_devices(license_id)
SELECT id, license_id, hardware_id, machine_name, host(first_ip) AS first_ip, host(last_ip) AS last_ip,
       client_version, first_seen_at, last_seen_at
FROM devices WHERE license_id = $1 ORDER BY id;

-- name: delete_device(license_id, id)^
DELETE FROM devices WHERE license_id = $1 AND id = $2 RETURNING id, hardware_id;

-- name: delete_device_by_hardware(license_id, hardware_id)^
DELETE FROM devices WHERE license_id = $1 AND hardware_id = $2 RETURNING id, hardware_id;

-- name: delete_all_devices(license_id)
DELETE FROM devices WHERE license_id = $1 RETURNING id, hardware_id;

-- name: rebind_device(license_id, old_hardware_id, new_hardware_id, ip, now)!
UPDATE devices SET hardware_id = $3, last_ip = COALESCE($4, last_ip), last_seen_at = $5
WHERE license_id = $1 AND hardware_id = $2;
