-- name: insert_license(key, product_id, customer_name, customer_email, max_devices, max_sessions, features, notes, expires_at, duration)^
INSERT INTO licenses (key, product_id, customer_name, customer_email, max_devices, max_sessions, features, notes,
                      expires_at, duration)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
RETURNING id, key, product_id, customer_name, customer_email, status, max_devices, max_sessions, features, notes,
          expires_at, duration, activated_at, created_at, updated_at;

-- name: get_product_id_by_slug(slug)$
SELECT id FROM products WHERE slug = $1;
