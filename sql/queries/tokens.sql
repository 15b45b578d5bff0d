-- name: insert_api_token(name, token_hash, role, created_by)$
INSERT INTO api_tokens (name, token_hash, role, created_by) VALUES ($1, $2, $3, $4)
RETURNING id;

-- name: find_api_token(token_hash)^
SELECT id, name, role FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL;

-- name: touch_api_token(id)!
UPDATE api_tokens SET last_used_at = now()
WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute');

-- name: list_api_tokens
SELECT id, name, role, created_by, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY id DESC;

-- name: revoke_api_token(id)^
UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL RETURNING id, name;
