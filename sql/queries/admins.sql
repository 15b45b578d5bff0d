-- name: insert_admin(username, password_hash, role)$
INSERT INTO admin_users (username, password_hash, role) VALUES ($1, $2, $3)
RETURNING id;

-- name: get_admin_by_username(username)^
SELECT id, username, password_hash, role, disabled, last_login_at, password_changed_at, created_at
FROM admin_users WHERE lower(username) = lower($1);

-- name: count_admins$
SELECT count(*) FROM admin_users;
