-- 004: price history (observed fares), its daily aggregate, and the search analytics log.
-- docs/PRICES.md describes how rows arrive (the price-ingest actor) and who reads them.

-- One observed fare. The columns of the original plus the travel date the fare is for and the
-- cabin; a duplicate (same observation time, route, carrier, travel date and cabin) is ignored
-- by the ingest (ON CONFLICT DO NOTHING), not an error. Monthly range partitions on `time`
-- (fs_price_history_ensure_partitions creates them; the ingest calls it before writing a month
-- it has not seen) keep the retention job a DROP TABLE and scans bounded to the months asked.
CREATE TABLE IF NOT EXISTS price_history (
    time             timestamptz   NOT NULL,
    origin_code      varchar(10)   NOT NULL,
    destination_code varchar(10)   NOT NULL,
    airline          varchar(100)  NOT NULL,
    departure_date   date          NOT NULL,
    cabin_class      varchar(50)   NOT NULL DEFAULT 'economy',
    price            numeric(10,2) NOT NULL CHECK (price >= 0),
    currency         varchar(3)    NOT NULL DEFAULT 'EUR',
    source           varchar(50),
    PRIMARY KEY (time, origin_code, destination_code, airline, departure_date, cabin_class)
) PARTITION BY RANGE (time);

CREATE INDEX IF NOT EXISTS idx_price_history_route ON price_history (origin_code, destination_code, time DESC);
CREATE INDEX IF NOT EXISTS idx_price_history_fare
    ON price_history (origin_code, destination_code, departure_date, airline, cabin_class, time DESC);
CREATE INDEX IF NOT EXISTS idx_price_history_time_brin ON price_history USING brin (time);

-- Creates the monthly partitions price_history_YYYY_MM covering [from_ts, to_ts]; existing
-- ones are kept. Returns how many it created.
CREATE OR REPLACE FUNCTION fs_price_history_ensure_partitions(from_ts timestamptz, to_ts timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    m date := date_trunc('month', from_ts AT TIME ZONE 'UTC')::date;
    last date := date_trunc('month', to_ts AT TIME ZONE 'UTC')::date;
    created integer := 0;
    part text;
BEGIN
    WHILE m <= last LOOP
        part := format('price_history_%s', to_char(m, 'YYYY_MM'));
        IF to_regclass(part) IS NULL THEN
            EXECUTE format('CREATE TABLE %I PARTITION OF price_history FOR VALUES FROM (%L) TO (%L)',
                           part, (m::timestamp AT TIME ZONE 'UTC'),
                           ((m + interval '1 month')::timestamp AT TIME ZONE 'UTC'));
            created := created + 1;
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN created;
END $$;

SELECT fs_price_history_ensure_partitions(now() - interval '1 month', now() + interval '2 months');

-- Daily aggregate per route and observation day (UTC), kept by the ingest in the same
-- transaction as the rows it counts; GET /flights/prices/{origin}/{destination} reads it.
-- avg = price_sum / sample_count.
CREATE TABLE IF NOT EXISTS price_daily (
    origin_code      varchar(10)    NOT NULL,
    destination_code varchar(10)    NOT NULL,
    day              date           NOT NULL,
    price_sum        numeric(14,2)  NOT NULL,
    min_price        numeric(10,2)  NOT NULL,
    max_price        numeric(10,2)  NOT NULL,
    sample_count     integer        NOT NULL,
    PRIMARY KEY (origin_code, destination_code, day)
);

-- One row per answered flight search (written in batches by the search actor). The scheduled
-- refresh of popular routes ranks routes by these rows.
CREATE TABLE IF NOT EXISTS search_logs (
    id               bigserial    PRIMARY KEY,
    searched_at      timestamptz  NOT NULL DEFAULT now(),
    origin_code      varchar(10)  NOT NULL,
    destination_code varchar(10)  NOT NULL,
    departure_date   date         NOT NULL,
    return_date      date,
    passengers       smallint     NOT NULL,
    cabin_class      varchar(20)  NOT NULL,
    direct_only      boolean      NOT NULL DEFAULT FALSE,
    strategy         varchar(20)  NOT NULL,
    result_count     integer      NOT NULL,
    cached           boolean      NOT NULL,
    response_time_ms real         NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_search_logs_time ON search_logs USING brin (searched_at);
CREATE INDEX IF NOT EXISTS idx_search_logs_route ON search_logs (origin_code, destination_code, searched_at DESC);
