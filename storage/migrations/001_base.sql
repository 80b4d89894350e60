-- 001_base: extensions later migrations may rely on. Nothing domain-specific here.
--
-- pgcrypto: digest(), hmac(), gen_random_bytes(), crypt(). (gen_random_uuid() itself is
-- built into PostgreSQL 13+, so UUID defaults do not depend on this extension.)
-- Both extensions are "trusted" since PostgreSQL 13: the database owner may create them
-- without superuser rights.
CREATE EXTENSION IF NOT EXISTS pgcrypto;

-- pg_trgm (postgresql-contrib) backs fuzzy name search indexes when present; later
-- migrations that use it must check pg_extension themselves, as servers without contrib
-- skip it here.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
    END IF;
END
$$;
