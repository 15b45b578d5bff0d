-- name: get_portal_settings(product_id)^
SELECT double_opt_in, device_frees_per_30d, reset_delivery FROM portal_settings WHERE product_id = $1;

-- name: upsert_portal_settings(product_id, double_opt_in, device_frees_per_30d, reset_delivery)!
INSERT INTO portal_settings (product_id, double_opt_in, device_frees_per_30d, reset_delivery)
VALUES ($1, $2, $3, $4)
ON CONFLICT (product_id) DO UPDATE
SET double_opt_in = $2, device_frees_per_30d = $3, reset_delivery = $4, updated_at = now();

-- name: insert_portal_account(product_id, email, password_hash, data, verified)^
INSERT INTO portal_accounts (product_id, email, password_hash, data, verified)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT DO NOTHING
RETURNING id, product_id, email, data, verified, disabled, credential_generation, created_at;

-- name: get_portal_account(id)^
SELECT id, product_id, email, password_hash, data, verified, disabled, credential_generation, created_at,
       last_login_at, erased_at
FROM portal_accounts WHERE id = $1;

-- name: lock_portal_account(id)^
SELECT id, product_id, email, password_hash, data, verified, disabled, credential_generation, created_at,
       last_login_at, erased_at
FROM portal_accounts WHERE id = $1 FOR UPDATE;

-- name: find_portal_account(product_id, email)^
SELECT id, product_id, email, password_hash, data, verified, disabled, credential_generation, created_at,
       last_login_at, erased_at
FROM portal_accounts WHERE product_id = $1 AND lower(email) = lower($2);

-- name: portal_email_taken(product_id, email)$
SELECT EXISTS (SELECT 1 FROM portal_accounts WHERE product_id = $1 AND lower(email) = lower($2));

-- name: set_portal_login(id, now)!
UPDATE portal_accounts SET last_login_at = $2 WHERE id = $1;

-- name: set_portal_verified(id, verified)!
UPDATE portal_accounts SET verified = $2, updated_at = now() WHERE id = $1;

-- name: set_portal_disabled(id, disabled)!
UPDATE portal_accounts SET disabled = $2, updated_at = now() WHERE id = $1;

-- name: set_portal_data(id, data)!
UPDATE portal_accounts SET data = $2, updated_at = now() WHERE id = $1;

-- name: set_portal_password(id, password_hash)$
-- A new password makes every credential file made under the old one useless.
UPDATE portal_accounts
SET password_hash = $2, credential_generation = credential_generation + 1, updated_at = now()
WHERE id = $1
RETURNING credential_generation;

-- name: erase_portal_account(id, now)!
UPDATE portal_accounts
SET email = NULL, password_hash = '', data = '{}', disabled = true, erased_at = $2,
    credential_generation = credential_generation + 1, updated_at = $2
WHERE id = $1;

-- name: search_portal_accounts(product_id, q, after_id, row_limit)
SELECT a.id, a.product_id, a.email, a.verified, a.disabled, a.created_at, a.last_login_at, a.erased_at,
       (SELECT count(*) FROM portal_account_licenses l WHERE l.account_id = a.id) AS licenses
FROM portal_accounts a
WHERE ($1::bigint IS NULL OR a.product_id = $1)
  AND ($2::text = '' OR lower(a.email) LIKE lower($2) || '%')
  AND ($3::bigint IS NULL OR a.id < $3)
ORDER BY a.id DESC
LIMIT $4;

-- name: attach_license(license_id, account_id)$
INSERT INTO portal_account_licenses (license_id, account_id) VALUES ($1, $2)
ON CONFLICT DO NOTHING
RETURNING license_id;

-- name: license_owner(license_id)$
SELECT account_id FROM portal_account_licenses WHERE license_id = $1;

-- name: detach_account_licenses(account_id)
DELETE FROM portal_account_licenses WHERE account_id = $1 RETURNING license_id;

-- name: account_licenses(account_id)
SELECT l.id, l.key, l.product_id, l.status, l.max_devices, l.max_sessions, l.features, l.expires_at,
       l.duration, l.activated_at, l.customer_name, l.notes, p.attached_at
FROM portal_account_licenses p JOIN licenses l ON l.id = p.license_id
WHERE p.account_id = $1
ORDER BY p.attached_at, l.id;

-- name: account_devices(account_id)
SELECT d.id, d.license_id, d.machine_name, d.client_version, d.first_seen_at, d.last_seen_at
FROM devices d JOIN portal_account_licenses p ON p.license_id = d.license_id
WHERE p.account_id = $1
ORDER BY d.license_id, d.id;

-- name: account_device(account_id, device_id)^
SELECT d.id, d.license_id, d.hardware_id
FROM devices d JOIN portal_account_licenses p ON p.license_id = d.license_id
WHERE p.account_id = $1 AND d.id = $2;

-- name: account_open_sessions(account_id)
SELECT s.id, s.license_id, s.hardware_id, s.client_version, s.started_at, l.product_id,
       l.key AS license_key, l.customer_name, host(s.ip) AS ip, d.id AS device_id, d.machine_name
FROM session_history s
JOIN portal_account_licenses p ON p.license_id = s.license_id
JOIN licenses l ON l.id = s.license_id
LEFT JOIN devices d ON d.license_id = s.license_id AND d.hardware_id = s.hardware_id
WHERE p.account_id = $1 AND s.ended_at IS NULL
ORDER BY s.started_at DESC
LIMIT 200;

-- name: account_open_session(account_id, session_id)^
SELECT s.id, s.license_id
FROM session_history s JOIN portal_account_licenses p ON p.license_id = s.license_id
WHERE p.account_id = $1 AND s.id = $2 AND s.ended_at IS NULL;

-- name: count_device_frees(license_id, since)$
SELECT count(*) FROM portal_device_frees WHERE license_id = $1 AND at > $2;

-- name: insert_device_free(license_id, account_id, now)!
INSERT INTO portal_device_frees (license_id, account_id, at) VALUES ($1, $2, $3);

-- name: insert_portal_token(account_id, purpose, token_hash, expires_at)!
INSERT INTO portal_tokens (account_id, purpose, token_hash, expires_at) VALUES ($1, $2, $3, $4);

-- name: retire_portal_tokens(account_id, purpose, now)!
UPDATE portal_tokens SET used_at = $3 WHERE account_id = $1 AND purpose = $2 AND used_at IS NULL;

-- name: lock_portal_token(token_hash)^
SELECT id, account_id, purpose, expires_at, used_at FROM portal_tokens WHERE token_hash = $1 FOR UPDATE;

-- name: lock_open_verify_code(account_id)^
SELECT id, token_hash, attempts, expires_at FROM portal_tokens
WHERE account_id = $1 AND purpose = 'verify' AND used_at IS NULL
ORDER BY id DESC LIMIT 1
FOR UPDATE;

-- name: count_portal_token_attempt(id)!
UPDATE portal_tokens SET attempts = attempts + 1 WHERE id = $1;

-- name: use_portal_token(id, now)!
UPDATE portal_tokens SET used_at = $2 WHERE id = $1;
