-- name: insert_audit(actor, action, object_type, object_id, before, after, ip)!
INSERT INTO audit_log (actor, action, object_type, object_id, before, after, ip)
VALUES ($1, $2, $3, $4, $5, $6, $7);

-- name: insert_security_event(kind, details, ip, product_id)!
INSERT INTO security_events (kind, details, ip, product_id) VALUES ($1, $2, $3, $4);

-- name: list_audit(after_id, row_limit)
SELECT id, at, actor, action, object_type, object_id, before, after, host(ip) AS ip
FROM audit_log WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2;

-- name: list_security_events(kind, after_id, row_limit)
SELECT id, at, kind, details, host(ip) AS ip, product_id
FROM security_events
WHERE ($1::text IS NULL OR kind = $1) AND ($2::bigint IS NULL OR id < $2)
ORDER BY id DESC LIMIT $3;
