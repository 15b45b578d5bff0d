-- name: insert_admin(username, password_hash, role)$
INSERT INTO admin_users (username, password_hash, role) VALUES ($1, $2, $3)
RETURNING id;

-- name: get_admin_by_username(username)^
SELECT id, username, password_hash, role, disabled, last_login_at, password_changed_at, created_at
FROM admin_users WHERE lower(username) = lower($1);

-- name: count_admins$
SELECT count(*) FROM admin_users;

-- name: get_admin(id)^
SELECT id, username, password_hash, role, disabled, last_login_at, password_changed_at, created_at
FROM admin_users WHERE id = $1;

-- name: list_admins
SELECT id, username, role, disabled, last_login_at, created_at FROM admin_users ORDER BY username;

-- name: record_login(id)!
UPDATE admin_users SET last_login_at = now() WHERE id = $1;

-- name: set_admin_password(id, password_hash)!
UPDATE admin_users SET password_hash = $2, password_changed_at = now() WHERE id = $1;

-- name: set_admin_role(id, role, disabled)^
UPDATE admin_users SET role = $2, disabled = $3 WHERE id = $1 RETURNING id, username, role, disabled;

-- name: lock_enabled_owners
-- Taken (in id order) by every change of an admin's role or state, so two owners cannot demote each other
-- at the same moment and leave nobody able to manage admins.
SELECT id, username FROM admin_users WHERE role = 'owner' AND NOT disabled ORDER BY id FOR UPDATE;
