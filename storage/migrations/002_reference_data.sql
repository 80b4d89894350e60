-- 002: reference data (airports, airlines, aircraft, routes, cities).
--
-- Written by `flightshark import` (OurAirports, OpenFlights, admin CSV) and `flightshark seed`;
-- read by every worker into immutable in-memory indexes (storage/refdata.c). The columns of the
-- original system are kept (same names and meaning) and extended with what the public data
-- offers. docs/REFERENCE_DATA.md explains every choice. Depends on nothing but
-- gen_random_uuid() (built into PostgreSQL 13+).

-- ---------------------------------------------------------------------------------------------
-- Helper functions (IMMUTABLE, so they can back indexes and generated values)
-- ---------------------------------------------------------------------------------------------

-- Lower-case and fold Latin letters with diacritics to ASCII (ß->ss, æ->ae, ø->o, ...). The same
-- table as storage/textfold.c, so "Malaga" and "Málaga" compare equal in SQL and in C.
CREATE OR REPLACE FUNCTION fs_fold(s text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $fold$
SELECT replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(translate(lower(s), ' ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝàáâãäåçèéêëìíîïðñòóôõöøùúûüýÿĀāĂăĄąĆćĈĉĊċČčĎďĐđĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĦħĨĩĪīĬĭĮįİıĴĵĶķĸĹĺĻļĽľĿŀŁłŃńŅņŇňŉŊŋŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŦŧŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽžſƀƁƇƈƉƊƑƒƓƗƘƙƚƝƞƠơƤƥƫƬƭƮƯưƲƳƴƵƶǍǎǏǐǑǒǓǔǕǖǗǘǙǚǛǜǞǟǠǡǤǥǦǧǨǩǪǫǬǭǰǴǵǸǹǺǻȀȁȂȃȄȅȆȇȈȉȊȋȌȍȎȏȐȑȒȓȔȕȖȗȘșȚțȞȟȡȦȧȨȩȪȫȬȭȮȯȰȱȲȳȴȵȶȺȻȼȽȾɃɆɇɈɉɌɍɎɏḀḁḂḃḄḅḆḇḈḉḊḋḌḍḎḏḐḑḒḓḔḕḖḗḘḙḚḛḜḝḞḟḠḡḢḣḤḥḦḧḨḩḪḫḬḭḮḯḰḱḲḳḴḵḶḷḸḹḺḻḼḽḾḿṀṁṂṃṄṅṆṇṈṉṊṋṌṍṎṏṐṑṒṓṔṕṖṗṘṙṚṛṜṝṞṟṠṡṢṣṤṥṦṧṨṩṪṫṬṭṮṯṰṱṲṳṴṵṶṷṸṹṺṻṼṽṾṿẀẁẂẃẄẅẆẇẈẉẊẋẌẍẎẏẐẑẒẓẔẕẖẗẘẙẠạẢảẤấẦầẨẩẪẫẬậẮắẰằẲẳẴẵẶặẸẹẺẻẼẽẾếỀềỂểỄễỆệỈỉỊịỌọỎỏỐốỒồỔổỖỗỘộỚớỜờỞởỠỡỢợỤụỦủỨứỪừỬửỮữỰựỲỳỴỵỶỷỸỹ‐‑‒–—̴̵̶̷̸̡̢̧̨̛̖̗̘̙̜̝̞̟̠̣̤̥̦̩̪̫̬̭̮̯̰̱̲̳̹̺̻̼͇͈͉͍͎̀́̂̃̄̅̆̇̈̉̊̋̌̍̎̏̐̑̒̓̔̽̾̿̀́͂̓̈́͆͊͋͌̕̚ͅ͏͓͔͕͖͙͚͐͑͒͗͛ͣͤͥͦͧͨͩͪͫͬͭͮͯ͘͜͟͢͝͞͠͡', ' aaaaaaceeeeiiiidnoooooouuuuyaaaaaaceeeeiiiidnoooooouuuuyyaaaaaaccccccccddddeeeeeeeeeegggggggghhhhiiiiiiiiiijjkkkllllllllllnnnnnnnnnoooooorrrrrrssssssssttttttuuuuuuuuuuuuwwyyyzzzzzzsbbccddffgikklnnooppttttuuvyyzzaaiioouuuuuuuuuuaaaaggggkkoooojggnnaaaaaaeeeeiiiioooorrrruuuusstthhdaaeeooooooooyylntaccltbeejjrryyaabbbbbbccddddddddddeeeeeeeeeeffgghhhhhhhhhhiiiikkkkkkllllllllmmmmmmnnnnnnnnoooooooopppprrrrrrrrssssssssssttttttttuuuuuuuuuuvvvvwwwwwwwwwwxxxxyyzzzzzzhtwyaaaaaaaaaaaaaaaaaaaaaaaaeeeeeeeeeeeeeeeeiiiioooooooooooooooooooooooouuuuuuuuuuuuuuyyyyyyyy-----'), 'Æ', 'ae'), 'Þ', 'th'), 'ß', 'ss'), 'æ', 'ae'), 'þ', 'th'), 'Ĳ', 'ij'), 'ĳ', 'ij'), 'Œ', 'oe'), 'œ', 'oe'), 'Ǆ', 'dz'), 'ǅ', 'dz'), 'ǆ', 'dz'), 'Ǉ', 'lj'), 'ǈ', 'lj'), 'ǉ', 'lj'), 'Ǌ', 'nj'), 'ǋ', 'nj'), 'ǌ', 'nj'), 'Ǳ', 'dz'), 'ǲ', 'dz'), 'ǳ', 'dz'), 'ʻ', ''''), 'ʼ', ''''), 'ẞ', 'ss'), '‘', ''''), '’', '''')
$fold$;

-- Great-circle distance in km (haversine, mean Earth radius 6371.0088 km).
CREATE OR REPLACE FUNCTION fs_haversine_km(lat1 float8, lon1 float8, lat2 float8, lon2 float8)
RETURNS float8 LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
SELECT 2 * 6371.0088 * asin(least(1.0, sqrt(
    sin(radians(lat2 - lat1) / 2) ^ 2 +
    cos(radians(lat1)) * cos(radians(lat2)) * sin(radians(lon2 - lon1) / 2) ^ 2)))
$$;

-- The city shown and grouped on. OurAirports' municipality is where the airport physically is
-- ("Paris (Roissy-en-France, Val-d'Oise)", "London, Essex"); OpenFlights' city is the main city
-- served, without accents ("Malaga"). Rule: an explicit admin override wins; otherwise the
-- OpenFlights city, spelled as OurAirports spells it when both fold to the same text (so
-- "Málaga", "São Paulo", "Zürich" keep their accents); otherwise the municipality up to its first
-- "(" or ","; otherwise the airport name.
CREATE OR REPLACE FUNCTION fs_airport_city(city_override text, municipality text, served_city text, name text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT CASE
    WHEN nullif(btrim(city_override), '') IS NOT NULL THEN btrim(city_override)
    WHEN nullif(btrim(served_city), '') IS NOT NULL THEN
        CASE WHEN fs_fold(btrim(split_part(split_part(coalesce(municipality, ''), '(', 1), ',', 1)))
                  = fs_fold(btrim(served_city))
             THEN btrim(split_part(split_part(municipality, '(', 1), ',', 1))
             ELSE btrim(served_city) END
    WHEN nullif(btrim(split_part(split_part(coalesce(municipality, ''), '(', 1), ',', 1)), '') IS NOT NULL
        THEN btrim(split_part(split_part(municipality, '(', 1), ',', 1))
    ELSE name
END
$$;

-- Whether an airport is "major" (listed first in search, shown by /airports/popular/):
-- an admin override wins; an airport known to OurAirports is major when its type is
-- large_airport; an airport only OpenFlights knows is major when at least 150 routes touch it
-- (the busiest medium airports of the 2014 route set sit just below that); an airport neither
-- source knows (seed, admin CSV) keeps the value it was given.
CREATE OR REPLACE FUNCTION fs_airport_is_major(override boolean, ourairports_id integer, openflights_id integer,
                                               airport_type text, route_count integer, current boolean)
RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
SELECT CASE
    WHEN override IS NOT NULL THEN override
    WHEN ourairports_id IS NOT NULL THEN airport_type = 'large_airport'
    WHEN openflights_id IS NULL THEN coalesce(current, false)
    ELSE coalesce(route_count, 0) >= 150
END
$$;

-- ---------------------------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------------------------

-- Only airports with an IATA code are stored: they are what travellers search for and what
-- routes name. OurAirports rows without one (heliports, strips, closed fields) are skipped by the
-- importer. Keyed on iata_code (unique in both sources); the source ids make re-imports update
-- the same row and let routes join OpenFlights airports by id.
CREATE TABLE IF NOT EXISTS airports (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    iata_code         varchar(3) NOT NULL UNIQUE CHECK (iata_code ~ '^[A-Z0-9]{3}$'),
    icao_code         varchar(4) CHECK (icao_code ~ '^[A-Z0-9]{4}$'),
    name              varchar(255) NOT NULL CHECK (btrim(name) <> ''),
    city              varchar(255) NOT NULL CHECK (btrim(city) <> ''),
    country           varchar(255) NOT NULL CHECK (btrim(country) <> ''),
    country_code      varchar(2) NOT NULL CHECK (country_code ~ '^[A-Z]{2}$'),
    region            varchar(16) CHECK (region ~ '^[A-Z]{2}-[A-Z0-9-]{1,10}$'),
    municipality      varchar(255),
    served_city       varchar(255),
    city_override     varchar(255),
    latitude          double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude         double precision CHECK (longitude BETWEEN -180 AND 180),
    timezone          varchar(64),
    timezone_inferred boolean NOT NULL DEFAULT FALSE,
    altitude_ft       integer CHECK (altitude_ft BETWEEN -2000 AND 30000),
    airport_type      varchar(50) NOT NULL DEFAULT 'airport',
    scheduled_service boolean,
    is_active         boolean NOT NULL DEFAULT TRUE,
    is_major          boolean NOT NULL DEFAULT FALSE,
    is_major_override boolean,
    route_count       integer NOT NULL DEFAULT 0,
    openflights_id    integer UNIQUE,
    ourairports_id    integer UNIQUE,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((latitude IS NULL) = (longitude IS NULL))
);
CREATE INDEX IF NOT EXISTS idx_airports_icao ON airports (icao_code);
CREATE INDEX IF NOT EXISTS idx_airports_city ON airports (city);
CREATE INDEX IF NOT EXISTS idx_airports_city_fold ON airports (fs_fold(city) text_pattern_ops);
CREATE INDEX IF NOT EXISTS idx_airports_name_fold ON airports (fs_fold(name) text_pattern_ops);
CREATE INDEX IF NOT EXISTS idx_airports_country ON airports (country_code);
CREATE INDEX IF NOT EXISTS idx_airports_active_major ON airports (is_active, is_major DESC, city);

-- Airline IATA codes are not unique in the real world (codes are reused after an airline
-- ceases, and OpenFlights lists 19 duplicated codes even among active airlines), so airlines are
-- keyed on a surrogate id and iata_code is an ordinary indexed column. The "primary" airline for
-- a code is the active one with the most routes (then the lowest OpenFlights id); see
-- docs/REFERENCE_DATA.md. Airlines created by the seed or the admin CSV (no OpenFlights id) are
-- unique per code, so those imports can upsert by code.
CREATE TABLE IF NOT EXISTS airlines (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    iata_code           varchar(2) CHECK (iata_code ~ '^[A-Z0-9]{2}$'),
    icao_code           varchar(3) CHECK (icao_code ~ '^[A-Z]{3}$'),
    name                varchar(255) NOT NULL CHECK (btrim(name) <> ''),
    full_name           varchar(255),
    alias               varchar(255),
    callsign            varchar(255),
    country             varchar(255),
    country_code        varchar(2) CHECK (country_code ~ '^[A-Z]{2}$'),
    logo_url            text,
    primary_color       varchar(7) CHECK (primary_color ~ '^#[0-9A-Fa-f]{6}$'),
    airline_type        varchar(50) NOT NULL DEFAULT 'scheduled',
    alliance            varchar(50),
    website             varchar(255),
    phone               varchar(50),
    hub_airports        text[],
    fleet_size          integer CHECK (fleet_size >= 0),
    is_active           boolean NOT NULL DEFAULT TRUE,
    is_low_cost         boolean NOT NULL DEFAULT FALSE,
    rating              double precision CHECK (rating BETWEEN 0 AND 10),
    on_time_performance double precision CHECK (on_time_performance BETWEEN 0 AND 100),
    route_count         integer NOT NULL DEFAULT 0,
    openflights_id      integer UNIQUE,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS idx_airlines_iata ON airlines (iata_code);
CREATE INDEX IF NOT EXISTS idx_airlines_icao ON airlines (icao_code);
CREATE UNIQUE INDEX IF NOT EXISTS uq_airlines_local_iata ON airlines (iata_code) WHERE openflights_id IS NULL;

-- The primary airline for a code (2-letter IATA, or 3-letter ICAO): active first, then the one
-- with the most routes, then one created locally (seed, admin CSV), then the lowest OpenFlights
-- id. Every lookup by airline code (API, importers) uses this order.
CREATE OR REPLACE FUNCTION fs_airline_primary(code text) RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS $$
SELECT id FROM airlines
WHERE iata_code = upper(code) OR (length(code) = 3 AND icao_code = upper(code))
ORDER BY is_active DESC, route_count DESC, openflights_id NULLS FIRST
LIMIT 1
$$;

CREATE TABLE IF NOT EXISTS aircraft (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    iata_code        varchar(3) NOT NULL UNIQUE CHECK (iata_code ~ '^[A-Z0-9]{3}$'),
    icao_code        varchar(4) CHECK (icao_code ~ '^[A-Z0-9]{2,4}$'),
    name             varchar(255) NOT NULL CHECK (btrim(name) <> ''),
    manufacturer     varchar(100),
    model            varchar(100),
    typical_seats    integer CHECK (typical_seats > 0),
    range_km         integer CHECK (range_km > 0),
    cruise_speed_kmh integer CHECK (cruise_speed_kmh > 0),
    aircraft_type    varchar(50) NOT NULL DEFAULT 'narrow_body',
    is_active        boolean NOT NULL DEFAULT TRUE,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- One row per (origin, destination, airline code as filed). Routes reference airports by IATA
-- code (ON UPDATE CASCADE follows a re-coded airport) and airlines by surrogate id where the
-- source names one; airline_code keeps the code the route was filed under (2-letter IATA or
-- 3-letter ICAO), which is what /airlines/{code}/routes and flight search use.
CREATE TABLE IF NOT EXISTS routes (
    id                       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    origin_code              varchar(3) NOT NULL REFERENCES airports (iata_code) ON UPDATE CASCADE,
    destination_code         varchar(3) NOT NULL REFERENCES airports (iata_code) ON UPDATE CASCADE,
    airline_code             varchar(3) CHECK (airline_code ~ '^[A-Z0-9]{2,3}$'),
    airline_id               uuid REFERENCES airlines (id) ON DELETE SET NULL,
    is_direct                boolean NOT NULL DEFAULT TRUE,
    stops                    integer NOT NULL DEFAULT 0 CHECK (stops BETWEEN 0 AND 4),
    codeshare                boolean NOT NULL DEFAULT FALSE,
    equipment                text[] NOT NULL DEFAULT '{}',
    typical_duration_minutes integer CHECK (typical_duration_minutes > 0),
    distance_km              integer CHECK (distance_km >= 0),
    flights_per_week         integer CHECK (flights_per_week >= 0),
    operates_days            integer[],
    typical_price_low        double precision CHECK (typical_price_low >= 0),
    typical_price_high       double precision CHECK (typical_price_high >= 0),
    is_active                boolean NOT NULL DEFAULT TRUE,
    seasonal                 boolean NOT NULL DEFAULT FALSE,
    season_start             integer CHECK (season_start BETWEEN 1 AND 12),
    season_end               integer CHECK (season_end BETWEEN 1 AND 12),
    source                   varchar(20) NOT NULL DEFAULT 'admin',
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    CHECK (origin_code <> destination_code)
);
CREATE UNIQUE INDEX IF NOT EXISTS uq_routes_key ON routes (origin_code, destination_code, (coalesce(airline_code, '')));
CREATE INDEX IF NOT EXISTS idx_routes_origin ON routes (origin_code);
CREATE INDEX IF NOT EXISTS idx_routes_dest ON routes (destination_code);
CREATE INDEX IF NOT EXISTS idx_routes_airline ON routes (airline_code);
CREATE INDEX IF NOT EXISTS idx_routes_airline_id ON routes (airline_id);

-- Derived from airports (one row per city and country with at least one active airport);
-- refreshed by fs_refresh_reference_derived() after every import.
CREATE TABLE IF NOT EXISTS cities (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name              varchar(255) NOT NULL,
    country           varchar(255) NOT NULL,
    country_code      varchar(2) NOT NULL CHECK (country_code ~ '^[A-Z]{2}$'),
    latitude          double precision,
    longitude         double precision,
    timezone          varchar(64),
    main_airport_code varchar(3),
    all_airport_codes text,
    population        integer,
    is_capital        boolean NOT NULL DEFAULT FALSE,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (name, country_code)
);

-- ---------------------------------------------------------------------------------------------
-- Derived values, recomputed at the end of every import transaction
-- ---------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION fs_refresh_reference_derived() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE airports a SET route_count = coalesce(c.n, 0)
    FROM airports a2
    LEFT JOIN (SELECT code, count(*)::int AS n FROM (
                   SELECT origin_code AS code FROM routes WHERE is_active
                   UNION ALL SELECT destination_code FROM routes WHERE is_active) r
               GROUP BY code) c ON c.code = a2.iata_code
    WHERE a.id = a2.id AND a.route_count IS DISTINCT FROM coalesce(c.n, 0);

    UPDATE airlines l SET route_count = coalesce(c.n, 0)
    FROM airlines l2
    LEFT JOIN (SELECT airline_id, count(*)::int AS n FROM routes WHERE is_active AND airline_id IS NOT NULL
               GROUP BY airline_id) c ON c.airline_id = l2.id
    WHERE l.id = l2.id AND l.route_count IS DISTINCT FROM coalesce(c.n, 0);

    UPDATE airports SET
        city = fs_airport_city(city_override, municipality, served_city, name),
        is_major = fs_airport_is_major(is_major_override, ourairports_id, openflights_id, airport_type, route_count, is_major),
        updated_at = now()
    WHERE city IS DISTINCT FROM fs_airport_city(city_override, municipality, served_city, name)
       OR is_major IS DISTINCT FROM fs_airport_is_major(is_major_override, ourairports_id, openflights_id,
                                                       airport_type, route_count, is_major);

    -- Airports no source gives a zone (OurAirports has none; OpenFlights lacks some) take the zone
    -- of the nearest airport in the same country that has one, flagged as inferred; a source
    -- that names a zone later replaces it.
    UPDATE airports a SET timezone = n.timezone, timezone_inferred = true
    FROM (SELECT x.id, (SELECT b.timezone FROM airports b
                        WHERE b.country_code = x.country_code AND b.timezone IS NOT NULL AND NOT b.timezone_inferred
                          AND b.latitude IS NOT NULL
                        ORDER BY (b.latitude - x.latitude) ^ 2
                                 + ((b.longitude - x.longitude) * cos(radians(x.latitude))) ^ 2
                        LIMIT 1) AS timezone
          FROM airports x WHERE x.timezone IS NULL AND x.latitude IS NOT NULL) n
    WHERE a.id = n.id AND n.timezone IS NOT NULL;

    UPDATE routes r SET distance_km = round(fs_haversine_km(o.latitude, o.longitude, d.latitude, d.longitude))::int
    FROM airports o, airports d
    WHERE o.iata_code = r.origin_code AND d.iata_code = r.destination_code
      AND r.distance_km IS DISTINCT FROM round(fs_haversine_km(o.latitude, o.longitude, d.latitude, d.longitude))::int
      AND (r.source <> 'admin' OR r.distance_km IS NULL);

    DELETE FROM cities c WHERE NOT EXISTS (
        SELECT 1 FROM airports a WHERE a.is_active AND a.city = c.name AND a.country_code = c.country_code);
    INSERT INTO cities (name, country, country_code, latitude, longitude, timezone, main_airport_code, all_airport_codes)
    SELECT DISTINCT ON (a.city, a.country_code) a.city, a.country, a.country_code, a.latitude, a.longitude,
           a.timezone, a.iata_code,
           (SELECT string_agg(b.iata_code, ',' ORDER BY b.is_major DESC, b.route_count DESC, b.iata_code)
              FROM airports b WHERE b.is_active AND b.city = a.city AND b.country_code = a.country_code)
    FROM airports a WHERE a.is_active
    ORDER BY a.city, a.country_code, a.is_major DESC, a.route_count DESC, a.iata_code
    ON CONFLICT (name, country_code) DO UPDATE SET
        country = EXCLUDED.country, latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude,
        timezone = EXCLUDED.timezone, main_airport_code = EXCLUDED.main_airport_code,
        all_airport_codes = EXCLUDED.all_airport_codes
    WHERE (cities.country, cities.latitude, cities.longitude, cities.timezone, cities.main_airport_code,
           cities.all_airport_codes)
          IS DISTINCT FROM (EXCLUDED.country, EXCLUDED.latitude, EXCLUDED.longitude, EXCLUDED.timezone,
                            EXCLUDED.main_airport_code, EXCLUDED.all_airport_codes);
END
$$;
