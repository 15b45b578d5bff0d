-- name: list_signing_keys
SELECT id, public_key, private_key_enc, active, created_at, retired_at
FROM signing_keys
WHERE retired_at IS NULL OR retired_at > now() - interval '365 days'
ORDER BY active DESC, created_at DESC;

-- name: count_active_signing_keys$
SELECT count(*) FROM signing_keys WHERE active;

-- name: retire_active_signing_key!
UPDATE signing_keys SET active = false, retired_at = now() WHERE active;

-- name: insert_signing_key(id, public_key, private_key_enc, active)!
INSERT INTO signing_keys (id, public_key, private_key_enc, active) VALUES ($1, $2, $3, $4);

-- A key added as the next one (published, not signing, never retired) becomes the signer.
-- name: activate_next_signing_key(id)$
UPDATE signing_keys SET active = true WHERE id = $1 AND NOT active AND retired_at IS NULL RETURNING id;
