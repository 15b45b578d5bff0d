-- The customer portal (DESIGN §7c): the vendor's customers' accounts, the licenses attached to them, the
-- device slots they freed, their verification codes and reset tokens, and the mail sent to them.

CREATE TABLE portal_settings (
    product_id           bigint PRIMARY KEY REFERENCES products (id) ON DELETE CASCADE,
    double_opt_in        boolean NOT NULL DEFAULT false,
    device_frees_per_30d integer NOT NULL DEFAULT 3 CHECK (device_frees_per_30d BETWEEN 0 AND 1000),
    reset_delivery       text NOT NULL DEFAULT 'email' CHECK (reset_delivery IN ('email', 'api')),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE portal_accounts (
    id                    bigserial PRIMARY KEY,
    product_id            bigint NOT NULL REFERENCES products (id),
    email                 text CHECK (email IS NULL OR length(email) BETWEEN 3 AND 254),
    password_hash         text NOT NULL,
    data                  jsonb NOT NULL DEFAULT '{}',
    verified              boolean NOT NULL DEFAULT false,
    disabled              boolean NOT NULL DEFAULT false,
    credential_generation integer NOT NULL DEFAULT 1,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    last_login_at         timestamptz,
    erased_at             timestamptz,
    CHECK ((email IS NULL) = (erased_at IS NOT NULL))
);
-- One account per address and product, whatever the case; an erased account keeps no address.
CREATE UNIQUE INDEX portal_accounts_email ON portal_accounts (product_id, lower(email)) WHERE email IS NOT NULL;
CREATE INDEX portal_accounts_email_search ON portal_accounts (lower(email) text_pattern_ops);

-- A license belongs to at most one account (the primary key): the same ticket never makes two accounts.
CREATE TABLE portal_account_licenses (
    license_id  bigint PRIMARY KEY REFERENCES licenses (id) ON DELETE CASCADE,
    account_id  bigint NOT NULL REFERENCES portal_accounts (id) ON DELETE CASCADE,
    attached_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX portal_account_licenses_account ON portal_account_licenses (account_id, attached_at);

CREATE TABLE portal_device_frees (
    id         bigserial PRIMARY KEY,
    license_id bigint NOT NULL REFERENCES licenses (id) ON DELETE CASCADE,
    account_id bigint REFERENCES portal_accounts (id) ON DELETE SET NULL,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX portal_device_frees_license ON portal_device_frees (license_id, at DESC);

-- Opt-in codes and reset tokens: only their hashes are kept; each is used once.
CREATE TABLE portal_tokens (
    id          bigserial PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES portal_accounts (id) ON DELETE CASCADE,
    purpose     text NOT NULL CHECK (purpose IN ('verify', 'reset')),
    token_hash  bytea NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX portal_tokens_hash ON portal_tokens (token_hash);
CREATE INDEX portal_tokens_account ON portal_tokens (account_id, purpose) WHERE used_at IS NULL;

-- Mail goes out from here, off the request path: written in the transaction that asks for it, sent by a
-- supervised worker task with retries. Without LICSRV_SMTP_URL (licsrv dev) it stays here, shown in the UI.
CREATE TABLE mail_outbox (
    id              bigserial PRIMARY KEY,
    product_id      bigint REFERENCES products (id),
    to_addr         text NOT NULL,
    subject         text NOT NULL,
    body            text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    last_error      text NOT NULL DEFAULT ''
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL;
