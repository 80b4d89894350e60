-- 006: price alerts and the notifications outbox (docs/ALERTS.md).

-- The original's price_alerts (id, user_id, origin_code, destination_code, target_price,
-- is_active, last_notified_at, created_at) plus an optional travel-date range and cabin, the
-- currency of the target and updated_at. Codes are stored upper-case.
CREATE TABLE IF NOT EXISTS price_alerts (
    id               uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id          uuid          NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    origin_code      varchar(10)   NOT NULL CHECK (origin_code = upper(origin_code)),
    destination_code varchar(10)   NOT NULL CHECK (destination_code = upper(destination_code)),
    target_price     numeric(10,2) NOT NULL CHECK (target_price > 0),
    currency         varchar(3)    NOT NULL DEFAULT 'EUR',
    cabin_class      varchar(20)   CHECK (cabin_class IN ('economy', 'premium_economy', 'business', 'first')),
    date_from        date,         -- travel dates the alert watches; NULL = any
    date_to          date          CHECK (date_to IS NULL OR date_from IS NULL OR date_to >= date_from),
    is_active        boolean       NOT NULL DEFAULT TRUE,
    last_notified_at timestamptz,
    created_at       timestamptz   NOT NULL DEFAULT now(),
    updated_at       timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_price_alerts_user ON price_alerts (user_id, created_at DESC);
CREATE INDEX IF NOT EXISTS idx_price_alerts_route ON price_alerts (origin_code, destination_code) WHERE is_active;

-- The outbox: one row per notification to deliver, written in the same transaction that sets
-- the alert's last_notified_at. idempotency_key makes a redelivered observation (the stream is
-- at-least-once) produce no second row. Delivery state per row: pending -> sent, or failed
-- attempts with backoff until dead (dead letter) after the configured number of attempts.
CREATE TABLE IF NOT EXISTS notifications (
    id               uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id          uuid          NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    alert_id         uuid          REFERENCES price_alerts (id) ON DELETE SET NULL,
    kind             varchar(32)   NOT NULL DEFAULT 'price_alert',
    title            text          NOT NULL,
    body             text          NOT NULL,
    payload          jsonb         NOT NULL DEFAULT '{}'::jsonb,
    idempotency_key  varchar(200)  NOT NULL UNIQUE,
    status           varchar(16)   NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sent', 'dead', 'none')),
    attempts         integer       NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz   NOT NULL DEFAULT now(),
    last_error       text,
    created_at       timestamptz   NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    read_at          timestamptz
);
CREATE INDEX IF NOT EXISTS idx_notifications_user ON notifications (user_id, created_at DESC);
CREATE INDEX IF NOT EXISTS idx_notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';

-- One row per channel attempt of a notification (email, sms, webhook), for the dead-letter
-- view and for idempotent retries per channel.
CREATE TABLE IF NOT EXISTS notification_deliveries (
    notification_id  uuid          NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    channel          varchar(16)   NOT NULL CHECK (channel IN ('email', 'sms', 'webhook')),
    status           varchar(16)   NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'dead')),
    attempts         integer       NOT NULL DEFAULT 0,
    last_error       text,
    updated_at       timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (notification_id, channel)
);

-- Creates an alert for p_user unless that user already holds p_limit alerts (active or paused);
-- returns the new row, or no row when the limit is reached. The user's row is locked first and
-- the count runs in a statement of its own (a fresh snapshot under READ COMMITTED), so two
-- concurrent creates cannot both pass the check.
CREATE OR REPLACE FUNCTION fs_price_alert_create(p_user uuid, p_origin text, p_destination text,
                                                 p_target numeric, p_currency text, p_cabin text,
                                                 p_from date, p_to date, p_limit integer)
RETURNS SETOF price_alerts LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM users WHERE id = p_user FOR UPDATE;
    IF (SELECT count(*) FROM price_alerts WHERE user_id = p_user) >= p_limit THEN
        RETURN;
    END IF;
    RETURN QUERY
        INSERT INTO price_alerts (user_id, origin_code, destination_code, target_price, currency,
                                  cabin_class, date_from, date_to)
        VALUES (p_user, p_origin, p_destination, p_target, p_currency, p_cabin, p_from, p_to)
        RETURNING *;
END $$;
