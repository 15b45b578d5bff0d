-- Suspensions are their own end reason; live sessions are listed page by page from the open history rows;
-- a rotated API key stays valid for a grace period.

ALTER TABLE session_history DROP CONSTRAINT session_history_end_reason_check;
ALTER TABLE session_history ADD CONSTRAINT session_history_end_reason_check
    CHECK (end_reason IN ('normal', 'timeout', 'forced', 'replaced', 'suspended', 'revoked'));

CREATE INDEX session_history_open_started ON session_history (started_at DESC, id DESC)
    WHERE ended_at IS NULL;

ALTER TABLE products
    ADD COLUMN previous_api_key text UNIQUE,
    ADD COLUMN previous_api_key_expires_at timestamptz,
    ADD CONSTRAINT products_previous_api_key_differs CHECK (previous_api_key IS DISTINCT FROM api_key);
