-- 003: accounts — users, and the server-side state of refresh tokens (docs/ACCOUNTS.md).

-- The columns of the original (api/app/models/user.py) plus is_active and is_admin. E-mails are
-- stored in their normal form (trimmed, lower-case), which the CHECK enforces, so the unique
-- constraint is a case-insensitive one and lookups need no lower() call.
CREATE TABLE IF NOT EXISTS users (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email             varchar(255) NOT NULL UNIQUE
                      CHECK (email = lower(btrim(email)) AND position('@' IN email) > 1),
    password_hash     varchar(255) NOT NULL,
    full_name         varchar(255),
    home_city         varchar(100),
    home_airport_code varchar(10),
    preferences       jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(preferences) = 'object'),
    is_active         boolean NOT NULL DEFAULT TRUE,
    is_admin          boolean NOT NULL DEFAULT FALSE,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- A session: the chain of refresh tokens that descends from one login. Every token of a
-- family (and every access token issued with it, through the `fam` claim) dies when the
-- family is revoked: by logout, or when a refresh token is presented a second time (reuse
-- means it was stolen, or the client is confused; either way the whole chain is ended).
-- expires_at is the latest expiry of anything issued in the family, after which the row is
-- only history and may be pruned.
CREATE TABLE IF NOT EXISTS refresh_token_families (
    id             uuid PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    revoked_reason varchar(32) CHECK (revoked_reason IN ('logout', 'reuse'))
);
CREATE INDEX IF NOT EXISTS idx_refresh_token_families_user ON refresh_token_families (user_id, expires_at);

-- One row per refresh token issued (jti claim). A token is usable once: used_at is set by the
-- refresh that consumes it, in the same statement that inserts its successor.
CREATE TABLE IF NOT EXISTS refresh_tokens (
    jti        uuid PRIMARY KEY,
    family_id  uuid NOT NULL REFERENCES refresh_token_families (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    issued_at  timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    revoked_at timestamptz
);
CREATE INDEX IF NOT EXISTS idx_refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX IF NOT EXISTS idx_refresh_tokens_user ON refresh_tokens (user_id);
