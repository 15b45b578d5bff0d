-- Erasing one license's personal data (DESIGN §2 "Personal data"): every statement is about one license and
-- runs in the erasure's one transaction. IP columns become NULL, text fields ''; rows keep their shape.

-- name: erase_license_fields(id, now)^
UPDATE licenses
SET customer_name = '', customer_email = '', notes = '', personal_data_erased_at = $2, updated_at = $2
WHERE id = $1
RETURNING id, key, product_id, status;

-- name: erase_license_devices(license_id)$
WITH erased AS (
    UPDATE devices SET machine_name = '', first_ip = NULL, last_ip = NULL
    WHERE license_id = $1 AND (machine_name <> '' OR first_ip IS NOT NULL OR last_ip IS NOT NULL)
    RETURNING 1
)
SELECT count(*) FROM erased;

-- name: erase_license_history_ips(license_id)$
WITH erased AS (
    UPDATE session_history SET ip = NULL WHERE license_id = $1 AND ip IS NOT NULL RETURNING 1
)
SELECT count(*) FROM erased;

-- name: erase_license_card_ips(license_id)$
WITH erased AS (
    UPDATE card_keys SET ip = NULL WHERE license_id = $1 AND ip IS NOT NULL RETURNING 1
)
SELECT count(*) FROM erased;

-- name: license_card_codes(license_id)
SELECT code FROM card_keys WHERE license_id = $1;

-- name: license_security_events(product_id, card_marks, emails, account_id)
-- The events about this license: refused redemptions of its cards (recorded with the code's first six
-- characters), failed portal sign-ins with its addresses, and what its portal account was refused.
SELECT id, details, host(ip) AS ip
FROM security_events
WHERE (kind = 'card_bound_elsewhere' AND product_id = $1 AND details ->> 'card' = ANY ($2::text[]))
   OR (lower(details ->> 'email') = ANY ($3::text[]))
   OR ($4::bigint IS NOT NULL AND details ->> 'account_id' = $4::bigint::text)
ORDER BY id;

-- name: scrub_security_event(id, details)!
UPDATE security_events SET details = $2, ip = NULL WHERE id = $1;

-- name: license_audit_rows(license_id, card_codes, account_id)
-- The audit rows about this license, its cards, its sessions and its portal account.
SELECT id, actor, before, after, host(ip) AS ip
FROM audit_log
WHERE (object_type = 'license' AND object_id = $1::bigint::text)
   OR (object_type = 'card' AND object_id = ANY ($2::text[]))
   OR (before ->> 'license_id' = $1::bigint::text OR after ->> 'license_id' = $1::bigint::text)
   OR ($3::bigint IS NOT NULL AND object_type = 'portal_account' AND object_id = $3::bigint::text)
   OR ($3::bigint IS NOT NULL AND actor = 'customer:' || $3::bigint::text)
ORDER BY id;

-- name: scrub_audit_row(id, before, after, blank_ip)!
UPDATE audit_log
SET before = $2, after = $3, ip = CASE WHEN $4::boolean THEN NULL ELSE ip END
WHERE id = $1;

-- name: license_webhook_events(license_id, account_id)
-- Events still in the outbox (kept 30 days) that name this license or its portal account.
SELECT id, data
FROM webhook_events
WHERE data ->> 'license_id' = $1::bigint::text
   OR ($2::bigint IS NOT NULL AND data ->> 'account_id' = $2::bigint::text);

-- name: scrub_webhook_event(id, data)!
UPDATE webhook_events SET data = $2 WHERE id = $1;

-- name: license_account(license_id)^
-- The portal account this license is attached to, locked, and how many licenses it holds.
SELECT a.id, a.product_id, a.email, a.erased_at,
       (SELECT count(*) FROM portal_account_licenses o WHERE o.account_id = a.id) AS licenses
FROM portal_account_licenses p JOIN portal_accounts a ON a.id = p.account_id
WHERE p.license_id = $1
FOR UPDATE OF a;

-- name: detach_license(license_id)!
DELETE FROM portal_account_licenses WHERE license_id = $1;

-- name: count_mail_to(to_addr)$
SELECT count(*) FROM mail_outbox WHERE lower(to_addr) = lower($1);
