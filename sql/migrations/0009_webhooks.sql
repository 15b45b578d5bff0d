-- Webhooks (DESIGN §7d): endpoints, a transactional outbox of events, one delivery per event and endpoint,
-- and every attempt kept for 30 days.

CREATE TABLE webhook_endpoints (
    id                          bigserial PRIMARY KEY,
    url                         text NOT NULL CHECK (length(url) BETWEEN 8 AND 2000),
    events                      text[] NOT NULL CHECK (cardinality(events) > 0),
    description                 text NOT NULL DEFAULT '',
    secret                      text NOT NULL,
    previous_secret             text,
    previous_secret_expires_at  timestamptz,
    enabled                     boolean NOT NULL DEFAULT true,
    disabled_reason             text NOT NULL DEFAULT '',
    failing_since               timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_events (
    id          text PRIMARY KEY,
    type        text NOT NULL,
    data        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_events_created_at ON webhook_events (created_at);

CREATE TABLE webhook_deliveries (
    id               bigserial PRIMARY KEY,
    event_id         text NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    endpoint_id      bigint NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    status           text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    retry_from       timestamptz NOT NULL DEFAULT now(),
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    UNIQUE (event_id, endpoint_id)
);
-- The workers' claim: due pending deliveries, oldest first, without scanning finished ones.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, id DESC);

CREATE TABLE webhook_attempts (
    id                bigserial PRIMARY KEY,
    delivery_id       bigint NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at      timestamptz NOT NULL DEFAULT now(),
    status_code       integer,
    ok                boolean NOT NULL,
    latency_ms        integer NOT NULL,
    error             text NOT NULL DEFAULT '',
    response_excerpt  text NOT NULL DEFAULT ''
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id DESC);
CREATE INDEX webhook_attempts_at ON webhook_attempts (attempted_at);

-- One row: how far the leader's scan for expired licenses has come.
CREATE TABLE webhook_scan_state (
    name        text PRIMARY KEY,
    scanned_to  timestamptz NOT NULL
);
INSERT INTO webhook_scan_state (name, scanned_to) VALUES ('license.expired', now());

CREATE INDEX licenses_expires_at ON licenses (expires_at) WHERE expires_at IS NOT NULL;

-- The outbox write: the event and one delivery per enabled endpoint subscribed to its type, in the caller's
-- transaction; nothing at all when no endpoint subscribes. The NOTIFY wakes the workers at commit.
CREATE FUNCTION webhook_emit(p_type text, p_data jsonb) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    event_id text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled AND p_type = ANY (events)) THEN
        RETURN NULL;
    END IF;
    event_id := 'evt_' || replace(gen_random_uuid()::text, '-', '');
    INSERT INTO webhook_events (id, type, data) VALUES (event_id, p_type, p_data);
    INSERT INTO webhook_deliveries (event_id, endpoint_id)
    SELECT event_id, e.id
    FROM webhook_endpoints e WHERE e.enabled AND p_type = ANY (e.events);
    PERFORM pg_notify('licsrv_webhooks', '');
    RETURN event_id;
END;
$$;
