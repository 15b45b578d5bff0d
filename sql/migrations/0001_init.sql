-- The whole domain of DESIGN §2. PostgreSQL is the system of record; live sessions live in Redis.

CREATE TABLE products (
    id                 bigserial PRIMARY KEY,
    slug               text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    api_key            text NOT NULL UNIQUE,
    heartbeat_interval integer NOT NULL DEFAULT 30 CHECK (heartbeat_interval BETWEEN 1 AND 3600),
    session_timeout    integer NOT NULL DEFAULT 60,
    current_version    text NOT NULL DEFAULT '1.0.0',
    minimum_version    text NOT NULL DEFAULT '1.0.0',
    download_url       text NOT NULL DEFAULT '',
    whats_new          text NOT NULL DEFAULT '',
    session_policy     text NOT NULL DEFAULT 'reject' CHECK (session_policy IN ('reject', 'replace')),
    max_sessions       integer NOT NULL DEFAULT 1 CHECK (max_sessions BETWEEN 1 AND 10000),
    features           jsonb NOT NULL DEFAULT '{}',
    rate_limits        jsonb NOT NULL DEFAULT '{}',
    content_key_enc    bytea,
    require_signed_requests boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (session_timeout >= 2 * heartbeat_interval)
);

INSERT INTO products (slug, name, api_key)
VALUES ('default', 'Default product',
        'lk_' || replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', ''));

CREATE TABLE card_batches (
    id            bigserial PRIMARY KEY,
    product_id    bigint NOT NULL REFERENCES products (id),
    count         integer NOT NULL CHECK (count > 0),
    duration_days integer NOT NULL CHECK (duration_days > 0),
    note          text NOT NULL DEFAULT '',
    created_by    text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE licenses (
    id             bigserial PRIMARY KEY,
    key            text NOT NULL UNIQUE,
    product_id     bigint NOT NULL REFERENCES products (id),
    customer_name  text NOT NULL DEFAULT '',
    customer_email text NOT NULL DEFAULT '',
    status         text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'revoked')),
    max_devices    integer NOT NULL DEFAULT 1 CHECK (max_devices BETWEEN 0 AND 100000),
    max_sessions   integer CHECK (max_sessions BETWEEN 1 AND 10000),
    features       jsonb NOT NULL DEFAULT '{}',
    notes          text NOT NULL DEFAULT '',
    expires_at     timestamptz,
    duration       interval,
    activated_at   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX licenses_product_id ON licenses (product_id, id);
CREATE INDEX licenses_customer_name ON licenses (lower(customer_name) text_pattern_ops);
CREATE INDEX licenses_customer_email ON licenses (lower(customer_email) text_pattern_ops);

CREATE TABLE card_keys (
    id          bigserial PRIMARY KEY,
    batch_id    bigint NOT NULL REFERENCES card_batches (id),
    code        text NOT NULL UNIQUE,
    status      text NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'redeemed', 'void')),
    license_id  bigint REFERENCES licenses (id),
    hardware_id text,
    ip          inet,
    redeemed_at timestamptz,
    voided_at   timestamptz
);
CREATE INDEX card_keys_batch_id ON card_keys (batch_id, id);
CREATE INDEX card_keys_license_id ON card_keys (license_id) WHERE license_id IS NOT NULL;

CREATE TABLE devices (
    id             bigserial PRIMARY KEY,
    license_id     bigint NOT NULL REFERENCES licenses (id) ON DELETE CASCADE,
    hardware_id    text NOT NULL,
    machine_name   text NOT NULL DEFAULT '',
    first_ip       inet,
    last_ip        inet,
    client_version text NOT NULL DEFAULT '',
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (license_id, hardware_id)
);

CREATE TABLE session_history (
    id                text PRIMARY KEY,
    license_id        bigint NOT NULL REFERENCES licenses (id) ON DELETE CASCADE,
    hardware_id       text NOT NULL,
    ip                inet,
    client_version    text NOT NULL DEFAULT '',
    started_at        timestamptz NOT NULL,
    last_heartbeat_at timestamptz,
    ended_at          timestamptz,
    end_reason        text CHECK (end_reason IN ('normal', 'timeout', 'forced', 'replaced', 'revoked'))
);
CREATE INDEX session_history_started_at ON session_history (started_at DESC, id DESC);
CREATE INDEX session_history_license ON session_history (license_id, started_at DESC);
CREATE INDEX session_history_open ON session_history (license_id) WHERE ended_at IS NULL;

CREATE TABLE admin_users (
    id            bigserial PRIMARY KEY,
    username      text NOT NULL CHECK (username ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('owner', 'operator', 'viewer')),
    disabled      boolean NOT NULL DEFAULT false,
    last_login_at timestamptz,
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX admin_users_username ON admin_users (lower(username));

CREATE TABLE api_tokens (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    token_hash   bytea NOT NULL UNIQUE,
    role         text NOT NULL CHECK (role IN ('owner', 'operator', 'viewer')),
    created_by   text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);

CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    object_type text NOT NULL,
    object_id   text NOT NULL DEFAULT '',
    before      jsonb,
    after       jsonb,
    ip          inet
);
CREATE INDEX audit_log_at ON audit_log (at DESC, id DESC);

CREATE TABLE security_events (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    kind       text NOT NULL,
    details    jsonb NOT NULL DEFAULT '{}',
    ip         inet,
    product_id bigint REFERENCES products (id)
);
CREATE INDEX security_events_at ON security_events (at DESC, id DESC);

CREATE TABLE signing_keys (
    id              text PRIMARY KEY,
    public_key      bytea NOT NULL,
    private_key_enc bytea NOT NULL,
    active          boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    retired_at      timestamptz
);
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (active) WHERE active;
