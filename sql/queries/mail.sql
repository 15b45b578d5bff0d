-- name: queue_mail(product_id, to_addr, subject, body)$
INSERT INTO mail_outbox (product_id, to_addr, subject, body) VALUES ($1, $2, $3, $4) RETURNING id;

-- name: claim_due_mail(now, row_limit)
-- Several workers share the outbox: each takes rows no other holds, and pushes them back while it sends.
UPDATE mail_outbox SET next_attempt_at = $1 + interval '5 minutes', attempts = attempts + 1
WHERE id IN (
    SELECT id FROM mail_outbox WHERE sent_at IS NULL AND next_attempt_at <= $1 AND attempts < 20
    ORDER BY next_attempt_at, id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
RETURNING id, product_id, to_addr, subject, body, attempts;

-- name: mark_mail_sent(id, now)!
UPDATE mail_outbox SET sent_at = $2, last_error = '' WHERE id = $1;

-- name: mark_mail_failed(id, next_attempt_at, error)!
UPDATE mail_outbox SET next_attempt_at = $2, last_error = $3 WHERE id = $1;

-- name: list_mail(after_id, row_limit)
SELECT m.id, m.product_id, m.to_addr, m.subject, m.body, m.created_at, m.attempts, m.sent_at, m.last_error
FROM mail_outbox m
WHERE ($1::bigint IS NULL OR m.id < $1)
ORDER BY m.id DESC
LIMIT $2;

-- name: erase_mail_to(to_addr)!
-- An erased customer's mail: what was not sent yet never goes out; what was sent keeps only its subject.
WITH unsent AS (DELETE FROM mail_outbox WHERE lower(to_addr) = lower($1) AND sent_at IS NULL)
UPDATE mail_outbox SET to_addr = '', body = '' WHERE lower(to_addr) = lower($1) AND sent_at IS NOT NULL;
