-- The catalogue of DESIGN §2: archived products, plans (license templates), licenses and card batches made
-- from a plan, perpetual and multi-device cards, imported license keys, erased personal data, and the hourly
-- peak of live sessions that the dashboard charts draw.

ALTER TABLE products
    ADD COLUMN archived_at timestamptz;

CREATE TABLE plans (
    id            bigserial PRIMARY KEY,
    product_id    bigint NOT NULL REFERENCES products (id),
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    max_devices   integer NOT NULL DEFAULT 1 CHECK (max_devices BETWEEN 0 AND 100000),
    max_sessions  integer CHECK (max_sessions BETWEEN 1 AND 10000),
    duration_days integer CHECK (duration_days BETWEEN 1 AND 36500),
    features      jsonb NOT NULL DEFAULT '{}',
    archived_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX plans_product_name ON plans (product_id, lower(name)) WHERE archived_at IS NULL;
CREATE INDEX plans_product_id ON plans (product_id, id);

-- An imported license keeps the key it had at the vendor's older system: 8 to 100 printable ASCII characters.
ALTER TABLE licenses
    ADD COLUMN plan_id bigint REFERENCES plans (id),
    ADD COLUMN personal_data_erased_at timestamptz,
    ADD CONSTRAINT licenses_key_shape CHECK (key ~ '^[!-~]{8,100}$');
CREATE INDEX licenses_plan_id ON licenses (plan_id) WHERE plan_id IS NOT NULL;
CREATE INDEX licenses_created_at ON licenses (created_at);

-- A batch copies its plan's values when it is made; duration_days NULL is a perpetual card (永久卡).
ALTER TABLE card_batches
    ADD COLUMN plan_id bigint REFERENCES plans (id),
    ADD COLUMN max_devices integer NOT NULL DEFAULT 1 CHECK (max_devices BETWEEN 1 AND 100000),
    ADD COLUMN max_sessions integer CHECK (max_sessions BETWEEN 1 AND 10000),
    ADD COLUMN features jsonb NOT NULL DEFAULT '{}',
    ALTER COLUMN duration_days DROP NOT NULL;
CREATE INDEX card_keys_redeemed_at ON card_keys (redeemed_at) WHERE redeemed_at IS NOT NULL;
CREATE INDEX devices_first_seen_at ON devices (first_seen_at);

-- Which card made or last recharged a license is on the card (license_id); a recharge is recorded too, so a
-- card found by its code names the license it extended.
ALTER TABLE card_keys
    ADD COLUMN recharged boolean NOT NULL DEFAULT false;

-- The dashboard's concurrency charts: the peak count of live sessions seen in each hour, per product, written
-- by a sampler (the greatest of the samples wins). 24 h and 30 days are 24 and 720 rows per product.
CREATE TABLE usage_hourly (
    product_id    bigint NOT NULL REFERENCES products (id),
    hour          timestamptz NOT NULL,
    peak_sessions integer NOT NULL CHECK (peak_sessions >= 0),
    PRIMARY KEY (product_id, hour)
);
