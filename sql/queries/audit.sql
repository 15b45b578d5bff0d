-- name: insert_audit(actor, action, object_type, object_id, before, after, ip)!
INSERT INTO audit_log (actor, action, object_type, object_id, before, after, ip)
VALUES ($1, $2, $3, $4, $5, $6, $7);

-- name: insert_security_event(kind, details, ip, product_id)!
INSERT INTO security_events (kind, details, ip, product_id) VALUES ($1, $2, $3, $4);
