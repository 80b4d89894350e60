/* `flightshark import openflights DIR` (see import.h): airports.dat, airlines.dat, planes.dat
 * and routes.dat, each in its own transaction, in that order (routes need the other two).
 *
 * OpenFlights dialect: no header, \N is NULL, apostrophes may be escaped as \', routes.dat uses
 * CRLF. Airports are matched to existing rows by IATA code, then by ICAO code, and lend them
 * their IANA time zone, the city they serve and their OpenFlights id (which routes join on);
 * airports OurAirports does not know are inserted. Routes resolve their endpoints by OpenFlights
 * airport id first (the route codes are 2014-era: IST there means today's ISL), by code only
 * when the id is \N or unknown. */
#include "storage/import_priv.h"

#include "runtime/alloc.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const fsi_countries_t *countries;
} of_ctx_t;

/* A field trimmed and with \' unescaped, or NULL for \N and the placeholders airlines.dat uses
 * for "no value". */
static char *value(fs_csv_record_t *rec, size_t i)
{
    if (i >= rec->nfields || fs_csv_field_null(rec, i))
        return NULL;
    char *s = rec->fields[i];
    size_t n = fsi_trim(s, fs_csv_unescape_backslash(s, rec->lens[i]));
    if (n == 0 || strcmp(s, "-") == 0 || strcmp(s, "N/A") == 0 || strcmp(s, "\\N") == 0)
        return NULL;
    return s;
}

static bool shape_ok(fsi_job_t *j, const fs_csv_record_t *rec, size_t want)
{
    if (!rec->malformed && rec->nfields == want)
        return true;
    fsi_reject_shape(j, rec->line, "%s (expected %zu fields, found %zu)",
                     rec->malformed ? rec->malformed : "wrong number of fields", want, rec->nfields);
    return false;
}

static bool code_ok(const char *s, size_t min, size_t max, bool letters)
{
    return s && fsi_is_code(s, strlen(s), min, max, letters);
}

static void col_opt_long(fsi_job_t *j, const char *s)
{
    long v;
    if (s && fsi_parse_long(s, &v))
        fsi_col_long(j, v);
    else
        fsi_col(j, NULL);
}

/* ------------------------------------------------------------------------------------------
 * airports.dat
 * ---------------------------------------------------------------------------------------- */

/* Backward-compatible zone names still used by airports.dat, and their current names. */
static const char *const tz_aliases[][2] = {
    {"Asia/Calcutta", "Asia/Kolkata"}, {"Asia/Rangoon", "Asia/Yangon"}, {"Asia/Katmandu", "Asia/Kathmandu"},
    {"Europe/Kiev", "Europe/Kyiv"}, {"America/Cordoba", "America/Argentina/Cordoba"},
    {"Asia/Saigon", "Asia/Ho_Chi_Minh"}, {"America/Buenos_Aires", "America/Argentina/Buenos_Aires"},
    {"America/Godthab", "America/Nuuk"}, {"Asia/Dacca", "Asia/Dhaka"}, {"Asia/Ulan_Bator", "Asia/Ulaanbaatar"},
    {"Asia/Thimbu", "Asia/Thimphu"}, {"America/Catamarca", "America/Argentina/Catamarca"},
    {"America/Jujuy", "America/Argentina/Jujuy"}, {"America/Mendoza", "America/Argentina/Mendoza"},
    {"Pacific/Truk", "Pacific/Chuuk"}, {"Pacific/Ponape", "Pacific/Pohnpei"}, {"Atlantic/Faeroe", "Atlantic/Faroe"},
    {"Asia/Macao", "Asia/Macau"}, {"America/Indianapolis", "America/Indiana/Indianapolis"},
    {"America/Louisville", "America/Kentucky/Louisville"}, {"Asia/Chongqing", "Asia/Shanghai"},
    {"Asia/Harbin", "Asia/Shanghai"}, {"Asia/Kashgar", "Asia/Urumqi"}, {"Pacific/Enderbury", "Pacific/Kanton"},
    {"Europe/Uzhgorod", "Europe/Kyiv"}, {"Europe/Zaporozhye", "Europe/Kyiv"},
    {"America/Santa_Isabel", "America/Tijuana"}, {"Africa/Asmera", "Africa/Asmara"},
    {"Asia/Ujung_Pandang", "Asia/Makassar"}, {"America/Fort_Wayne", "America/Indiana/Indianapolis"},
    {"America/Knox_IN", "America/Indiana/Knox"}, {"Asia/Tel_Aviv", "Asia/Jerusalem"},
    {"America/Montreal", "America/Toronto"}, {"Asia/Istanbul", "Europe/Istanbul"},
};

static const char *canonical_tz(const char *tz)
{
    if (!tz || !strchr(tz, '/'))
        return NULL; /* "\N", "U" and offsets are not zone names */
    for (size_t i = 0; i < sizeof tz_aliases / sizeof tz_aliases[0]; i++)
        if (strcmp(tz, tz_aliases[i][0]) == 0)
            return tz_aliases[i][1];
    return tz;
}

static const char AP_STAGE[] =
    "CREATE TEMP TABLE stage_ofa (line int, of_id int, iata text, icao text, name text, city text, country text, "
    "country_code text, latitude float8, longitude float8, altitude int, tz text) ON COMMIT DROP";
static const char AP_COPY[] = "COPY stage_ofa FROM STDIN";

static int airport_row(fsi_job_t *j, fs_csv_record_t *rec, void *vctx)
{
    of_ctx_t *ctx = vctx;
    if (!shape_ok(j, rec, 14))
        return 0;
    long id;
    double lat, lon;
    char *name = value(rec, 1), *city = value(rec, 2), *country = value(rec, 3);
    char *iata = value(rec, 4), *icao = value(rec, 5);
    if (!value(rec, 0) || !fsi_parse_long(rec->fields[0], &id) || id <= 0 || id > 2147483647L)
        return fsi_reject(j, rec->line, "bad airport id '%s'", rec->fields[0]), 0;
    if (iata && !code_ok(iata, 3, 3, false))
        iata = NULL; /* airports-extended.dat holds a few non-IATA values ("%u0", Cyrillic) */
    if (icao && !code_ok(icao, 4, 4, false))
        icao = NULL;
    if (!iata && !icao) {
        j->res->skipped++;
        return 0;
    }
    const char *label = iata ? iata : icao;
    if (!name)
        return fsi_reject(j, rec->line, "%s: missing name", label), 0;
    if (!value(rec, 6) || !fsi_parse_double(rec->fields[6], &lat) || lat < -90 || lat > 90 || !value(rec, 7) ||
        !fsi_parse_double(rec->fields[7], &lon) || lon < -180 || lon > 180)
        return fsi_reject(j, rec->line, "%s: bad coordinates", label), 0;
    long alt = 0;
    char *alt_s = value(rec, 8);
    bool has_alt = alt_s && fsi_parse_long(alt_s, &alt) && alt >= -2000 && alt <= 30000;
    fsi_col_long(j, rec->line);
    fsi_col_long(j, id);
    fsi_col(j, iata);
    fsi_col(j, icao);
    fsi_col(j, name);
    fsi_col(j, city);
    fsi_col(j, country);
    fsi_col(j, fsi_country_code(ctx->countries, country));
    fsi_col_double(j, lat);
    fsi_col_double(j, lon);
    if (has_alt)
        fsi_col_long(j, alt);
    else
        fsi_col(j, NULL);
    fsi_col(j, canonical_tz(value(rec, 11)));
    return fsi_row_end(j);
}

/* Each staged row is matched to at most one airport (IATA first, then ICAO); an airport gets at
 * most one OpenFlights row (the IATA match, then the earliest line). */
static const char AP_CAND[] =
    "CREATE TEMP TABLE ofa_cand ON COMMIT DROP AS "
    "SELECT s.*, coalesce(a1.id, a2.id) AS target, a1.id IS NOT NULL AS by_iata FROM stage_ofa s"
    " LEFT JOIN airports a1 ON a1.iata_code = s.iata"
    " LEFT JOIN LATERAL (SELECT a.id FROM airports a WHERE s.icao IS NOT NULL AND a.icao_code = s.icao"
    "                    ORDER BY a.is_active DESC, a.iata_code LIMIT 1) a2 ON a1.id IS NULL";
static const char AP_MATCH[] =
    "CREATE TEMP TABLE ofa_match ON COMMIT DROP AS SELECT DISTINCT ON (target) * FROM ofa_cand "
    "WHERE target IS NOT NULL ORDER BY target, by_iata DESC, line";

static const char AP_DUPES[] =
    "SELECT c.line, format('%s matches the same airport as line %s', coalesce(c.iata, c.icao), m.line) "
    "FROM ofa_cand c JOIN ofa_match m ON m.target = c.target AND m.line <> c.line ORDER BY c.line";

static const char AP_UNLINK[] =
    "UPDATE airports a SET openflights_id = NULL FROM stage_ofa s WHERE a.openflights_id = s.of_id "
    "AND NOT EXISTS (SELECT 1 FROM ofa_match m WHERE m.target = a.id AND m.of_id = s.of_id)";

/* Airports that no source but OpenFlights knows take its name, country and position too. */
static const char AP_UPDATE[] =
    "WITH up AS (UPDATE airports a SET openflights_id = m.of_id, timezone = coalesce(m.tz, a.timezone),"
    "  timezone_inferred = a.timezone_inferred AND m.tz IS NULL,"
    "  served_city = m.city, icao_code = coalesce(a.icao_code, m.icao),"
    "  altitude_ft = coalesce(a.altitude_ft, m.altitude),"
    "  name = CASE WHEN a.ourairports_id IS NULL THEN m.name ELSE a.name END,"
    "  latitude = CASE WHEN a.ourairports_id IS NULL THEN m.latitude ELSE a.latitude END,"
    "  longitude = CASE WHEN a.ourairports_id IS NULL THEN m.longitude ELSE a.longitude END,"
    "  updated_at = now()"
    " FROM ofa_match m WHERE a.id = m.target AND (a.openflights_id, a.timezone, a.timezone_inferred, a.served_city,"
    "  a.icao_code, a.altitude_ft, a.name, a.latitude, a.longitude) IS DISTINCT FROM (m.of_id,"
    "  coalesce(m.tz, a.timezone), a.timezone_inferred AND m.tz IS NULL,"
    "  m.city, coalesce(a.icao_code, m.icao), coalesce(a.altitude_ft, m.altitude),"
    "  CASE WHEN a.ourairports_id IS NULL THEN m.name ELSE a.name END,"
    "  CASE WHEN a.ourairports_id IS NULL THEN m.latitude ELSE a.latitude END,"
    "  CASE WHEN a.ourairports_id IS NULL THEN m.longitude ELSE a.longitude END) RETURNING 1)"
    "SELECT 0, count(*) FROM up";

static const char AP_NOCOUNTRY[] =
    "SELECT line, format('%s: unknown country ''%s''', iata, coalesce(country, '')) FROM stage_ofa s "
    "WHERE s.iata IS NOT NULL AND s.country_code IS NULL AND NOT EXISTS (SELECT 1 FROM ofa_cand c"
    " WHERE c.line = s.line AND c.target IS NOT NULL) "
    "ORDER BY line";

static const char AP_INSERT[] =
    "WITH ins AS (INSERT INTO airports (iata_code, icao_code, name, city, country, country_code, served_city,"
    "  latitude, longitude, altitude_ft, timezone, openflights_id)"
    " SELECT s.iata, s.icao, s.name, coalesce(s.city, s.name), coalesce(s.country, s.country_code), s.country_code,"
    "  s.city, s.latitude, s.longitude, s.altitude, s.tz, s.of_id FROM stage_ofa s"
    " WHERE s.iata IS NOT NULL AND s.country_code IS NOT NULL"
    "  AND NOT EXISTS (SELECT 1 FROM ofa_cand c WHERE c.line = s.line AND c.target IS NOT NULL) RETURNING 1)"
    "SELECT count(*), 0 FROM ins";

/* Rows with only an ICAO code that matches no airport have nothing to attach to. */
static const char AP_ORPHANS[] = "SELECT count(*) FROM ofa_cand WHERE iata IS NULL AND target IS NULL";

static int airport_merge(fsi_job_t *j, void *ctx)
{
    long matched, orphans;
    if (fsi_exec(j, AP_CAND) < 0 || fsi_exec(j, AP_MATCH) < 0 || fsi_reject_query(j, AP_DUPES) < 0 || fsi_exec(j, AP_UNLINK) < 0 ||
        fsi_count_upsert(j, AP_UPDATE) != 0 || fsi_reject_query(j, AP_NOCOUNTRY) < 0 ||
        fsi_count_upsert(j, AP_INSERT) != 0)
        return -1;
    if ((matched = fsi_scalar(j, "SELECT count(*) FROM ofa_match")) < 0 || (orphans = fsi_scalar(j, AP_ORPHANS)) < 0)
        return -1;
    j->res->skipped += orphans;
    j->res->unchanged = matched - j->res->updated;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * airlines.dat
 * ---------------------------------------------------------------------------------------- */

static const char AL_STAGE[] =
    "CREATE TEMP TABLE stage_ofl (line int, of_id int, name text, alias text, iata text, icao text, callsign text, "
    "country text, country_code text, active boolean) ON COMMIT DROP";
static const char AL_COPY[] = "COPY stage_ofl FROM STDIN";

static int airline_row(fsi_job_t *j, fs_csv_record_t *rec, void *vctx)
{
    of_ctx_t *ctx = vctx;
    if (!shape_ok(j, rec, 8))
        return 0;
    long id;
    if (!value(rec, 0) || !fsi_parse_long(rec->fields[0], &id) || id > 2147483647L)
        return fsi_reject(j, rec->line, "bad airline id '%s'", rec->fields[0]), 0;
    if (id <= 0) { /* -1,"Unknown" is a sentinel */
        j->res->skipped++;
        return 0;
    }
    char *name = value(rec, 1), *iata = value(rec, 3), *icao = value(rec, 4), *active = value(rec, 7);
    char *country = value(rec, 6);
    if (!name)
        return fsi_reject(j, rec->line, "airline %ld: missing name", id), 0;
    if (iata && !code_ok(iata, 2, 2, false))
        return fsi_reject(j, rec->line, "%s: bad IATA code '%s' (want 2 capital letters or digits)", name, iata), 0;
    bool is_active;
    if (!active || !fsi_parse_bool(active, &is_active))
        return fsi_reject(j, rec->line, "%s: bad active flag '%s'", name, active ? active : ""), 0;
    fsi_col_long(j, rec->line);
    fsi_col_long(j, id);
    fsi_col(j, name);
    fsi_col(j, value(rec, 2));
    fsi_col(j, iata);
    fsi_col(j, code_ok(icao, 3, 3, true) ? icao : NULL);
    fsi_col(j, value(rec, 5));
    fsi_col(j, country);
    fsi_col(j, fsi_country_code(ctx->countries, country));
    fsi_col_bool(j, is_active);
    return fsi_row_end(j);
}

/* A seed or admin airline with the same IATA and ICAO codes becomes the OpenFlights row. */
static const char AL_ADOPT[] =
    "UPDATE airlines a SET openflights_id = s.of_id FROM (SELECT DISTINCT ON (iata, icao) * FROM stage_ofl"
    " WHERE iata IS NOT NULL AND icao IS NOT NULL ORDER BY iata, icao, active DESC, of_id) s "
    "WHERE a.openflights_id IS NULL AND a.iata_code = s.iata AND a.icao_code = s.icao "
    "AND NOT EXISTS (SELECT 1 FROM airlines b WHERE b.openflights_id = s.of_id)";

/* is_low_cost and logo_url are set on insert only (an admin may have corrected them). The
 * low-cost list is the original system's heuristic. */
static const char AL_UPSERT[] =
    "WITH up AS (INSERT INTO airlines AS a (openflights_id, name, alias, iata_code, icao_code, callsign, country,"
    "  country_code, is_active, is_low_cost, logo_url)"
    " SELECT of_id, name, alias, iata, icao, callsign, country, country_code, active,"
    "  name ~* '(ryan|easy|wizz|spirit|frontier|allegiant|vueling|pegasus|jet2|wow|norwegian)',"
    "  CASE WHEN iata IS NOT NULL THEN 'https://pics.avs.io/100/100/' || iata || '.png' END FROM stage_ofl"
    " ON CONFLICT (openflights_id) DO UPDATE SET name = EXCLUDED.name, alias = EXCLUDED.alias,"
    "  iata_code = EXCLUDED.iata_code, icao_code = EXCLUDED.icao_code, callsign = EXCLUDED.callsign,"
    "  country = EXCLUDED.country, country_code = EXCLUDED.country_code, is_active = EXCLUDED.is_active,"
    "  updated_at = now()"
    " WHERE (a.name, a.alias, a.iata_code, a.icao_code, a.callsign, a.country, a.country_code, a.is_active)"
    "  IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.alias, EXCLUDED.iata_code, EXCLUDED.icao_code, EXCLUDED.callsign,"
    "  EXCLUDED.country, EXCLUDED.country_code, EXCLUDED.is_active)"
    " RETURNING (xmax = 0) AS inserted)"
    "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up";

static int airline_merge(fsi_job_t *j, void *ctx)
{
    if (fsi_exec(j, AL_ADOPT) < 0 || fsi_count_upsert(j, AL_UPSERT) != 0)
        return -1;
    fs_import_result_t *r = j->res;
    r->unchanged = r->rows - r->skipped - r->rejected - r->inserted - r->updated;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * planes.dat
 * ---------------------------------------------------------------------------------------- */

static const char PL_STAGE[] =
    "CREATE TEMP TABLE stage_ofp (line int, name text, iata text, icao text, manufacturer text) ON COMMIT DROP";
static const char PL_COPY[] = "COPY stage_ofp FROM STDIN";

static int plane_row(fsi_job_t *j, fs_csv_record_t *rec, void *ctx)
{
    if (!shape_ok(j, rec, 3))
        return 0;
    char *name = value(rec, 0), *iata = value(rec, 1), *icao = value(rec, 2);
    if (!iata) { /* aircraft are keyed on their IATA type code */
        j->res->skipped++;
        return 0;
    }
    if (!code_ok(iata, 3, 3, false))
        return fsi_reject(j, rec->line, "bad IATA type code '%s'", iata), 0;
    if (!name)
        return fsi_reject(j, rec->line, "%s: missing name", iata), 0;
    fsi_col_long(j, rec->line);
    fsi_col(j, name);
    fsi_col(j, iata);
    fsi_col(j, code_ok(icao, 2, 4, false) ? icao : NULL);
    fsi_col_n(j, name, strcspn(name, " "));
    return fsi_row_end(j);
}

/* Several aircraft share an IATA type code (CNJ names 8 Cessna Citations): the first wins. */
static const char PL_DUPES[] =
    "SELECT s.line, format('duplicate IATA type code %s (kept line %s)', s.iata, f.line) FROM stage_ofp s "
    "JOIN (SELECT iata, min(line) AS line FROM stage_ofp GROUP BY iata) f ON f.iata = s.iata AND f.line <> s.line "
    "ORDER BY s.line";

static const char PL_UPSERT[] =
    "WITH up AS (INSERT INTO aircraft AS a (iata_code, icao_code, name, manufacturer)"
    " SELECT DISTINCT ON (iata) iata, icao, name, manufacturer FROM stage_ofp ORDER BY iata, line"
    " ON CONFLICT (iata_code) DO UPDATE SET name = EXCLUDED.name, icao_code = coalesce(EXCLUDED.icao_code, a.icao_code),"
    "  manufacturer = coalesce(a.manufacturer, EXCLUDED.manufacturer), updated_at = now()"
    " WHERE (a.name, a.icao_code, a.manufacturer) IS DISTINCT FROM"
    "  (EXCLUDED.name, coalesce(EXCLUDED.icao_code, a.icao_code), coalesce(a.manufacturer, EXCLUDED.manufacturer))"
    " RETURNING (xmax = 0) AS inserted)"
    "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up";

static int plane_merge(fsi_job_t *j, void *ctx)
{
    if (fsi_reject_query(j, PL_DUPES) < 0 || fsi_count_upsert(j, PL_UPSERT) != 0)
        return -1;
    fs_import_result_t *r = j->res;
    r->unchanged = r->rows - r->skipped - r->rejected - r->inserted - r->updated;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * routes.dat
 * ---------------------------------------------------------------------------------------- */

static const char RT_STAGE[] =
    "CREATE TEMP TABLE stage_ofr (line int, airline text, airline_of_id int, src text, src_of_id int, dst text, "
    "dst_of_id int, codeshare boolean, stops int, equipment text[]) ON COMMIT DROP";
static const char RT_COPY[] = "COPY stage_ofr FROM STDIN";

/* Equipment as a PostgreSQL array literal of aircraft codes; stray spaces and odd tokens go. */
static void col_equipment(fsi_job_t *j, char *s)
{
    char buf[512];
    size_t o = 0;
    buf[o++] = '{';
    for (char *save = NULL, *tok = s ? strtok_r(s, " ", &save) : NULL; tok; tok = strtok_r(NULL, " ", &save)) {
        size_t n = strlen(tok);
        if (!fsi_is_code(tok, n, 2, 4, false) || o + n + 3 > sizeof buf)
            continue;
        if (o > 1)
            buf[o++] = ',';
        memcpy(buf + o, tok, n);
        o += n;
    }
    buf[o++] = '}';
    fsi_col_n(j, buf, o);
}

static int route_row(fsi_job_t *j, fs_csv_record_t *rec, void *ctx)
{
    if (!shape_ok(j, rec, 9))
        return 0;
    char *airline = value(rec, 0), *src = value(rec, 2), *dst = value(rec, 4), *cs = value(rec, 6);
    long stops;
    if (!code_ok(airline, 2, 3, false))
        return fsi_reject(j, rec->line, "bad airline code '%s'", airline ? airline : ""), 0;
    if (!code_ok(src, 3, 3, false) || !code_ok(dst, 3, 3, false))
        return fsi_reject(j, rec->line, "bad airport code '%s' or '%s'", src ? src : "", dst ? dst : ""), 0;
    if (cs && strcmp(cs, "Y") != 0)
        return fsi_reject(j, rec->line, "bad codeshare flag '%s' (want Y or empty)", cs), 0;
    if (!value(rec, 7) || !fsi_parse_long(rec->fields[7], &stops) || stops < 0 || stops > 4)
        return fsi_reject(j, rec->line, "bad stops '%s'", rec->fields[7]), 0;
    fsi_col_long(j, rec->line);
    fsi_col(j, airline);
    col_opt_long(j, value(rec, 1));
    fsi_col(j, src);
    col_opt_long(j, value(rec, 3));
    fsi_col(j, dst);
    col_opt_long(j, value(rec, 5));
    fsi_col_bool(j, cs != NULL);
    fsi_col_long(j, stops);
    col_equipment(j, value(rec, 8));
    return fsi_row_end(j);
}

/* Endpoint: the airport holding the OpenFlights id; by code only when the id is \N or unknown.
 * Airline: by OpenFlights id, else the primary airline with that code. */
static const char RT_RESOLVE[] =
    "CREATE TEMP TABLE ofr_res ON COMMIT DROP AS SELECT s.*,"
    " coalesce((SELECT iata_code FROM airports WHERE openflights_id = s.src_of_id),"
    "          (SELECT iata_code FROM airports WHERE iata_code = s.src)) AS origin,"
    " coalesce((SELECT iata_code FROM airports WHERE openflights_id = s.dst_of_id),"
    "          (SELECT iata_code FROM airports WHERE iata_code = s.dst)) AS dest,"
    " coalesce((SELECT id FROM airlines WHERE openflights_id = s.airline_of_id),"
    "          fs_airline_primary(s.airline)) AS airline_id "
    "FROM stage_ofr s";

static const char RT_UNRESOLVED[] =
    "SELECT line, CASE WHEN origin IS NULL AND dest IS NULL THEN format('unknown airports %s and %s', src, dst)"
    " WHEN origin IS NULL THEN format('unknown origin airport %s (OpenFlights id %s)', src, coalesce(src_of_id::text, '\\N'))"
    " WHEN dest IS NULL THEN format('unknown destination airport %s (OpenFlights id %s)', dst, coalesce(dst_of_id::text, '\\N'))"
    " ELSE format('origin and destination are the same airport (%s)', origin) END "
    "FROM ofr_res WHERE origin IS NULL OR dest IS NULL OR origin = dest ORDER BY line";

static const char RT_OK[] =
    "CREATE TEMP TABLE ofr_ok ON COMMIT DROP AS SELECT DISTINCT ON (origin, dest, airline) * FROM ofr_res "
    "WHERE origin IS NOT NULL AND dest IS NOT NULL AND origin <> dest ORDER BY origin, dest, airline, line";

static const char RT_DUPES[] =
    "SELECT r.line, format('duplicate of line %s (%s-%s %s)', o.line, r.origin, r.dest, r.airline) FROM ofr_res r "
    "JOIN ofr_ok o ON o.origin = r.origin AND o.dest = r.dest AND o.airline = r.airline AND o.line <> r.line "
    "ORDER BY r.line";

static const char RT_UPSERT[] =
    "WITH up AS (INSERT INTO routes AS r (origin_code, destination_code, airline_code, airline_id, is_direct, stops,"
    "  codeshare, equipment, source)"
    " SELECT origin, dest, airline, airline_id, stops = 0, stops, codeshare, equipment, 'openflights' FROM ofr_ok"
    " ON CONFLICT (origin_code, destination_code, (coalesce(airline_code, ''))) DO UPDATE SET"
    "  airline_id = EXCLUDED.airline_id, is_direct = EXCLUDED.is_direct, stops = EXCLUDED.stops,"
    "  codeshare = EXCLUDED.codeshare, equipment = EXCLUDED.equipment, is_active = true, updated_at = now()"
    " WHERE (r.airline_id, r.is_direct, r.stops, r.codeshare, r.equipment, r.is_active) IS DISTINCT FROM"
    "  (EXCLUDED.airline_id, EXCLUDED.is_direct, EXCLUDED.stops, EXCLUDED.codeshare, EXCLUDED.equipment, true)"
    " RETURNING (xmax = 0) AS inserted)"
    "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up";

/* OpenFlights routes the file no longer lists stop being served. */
static const char RT_DEACTIVATE[] =
    "UPDATE routes r SET is_active = false, updated_at = now() WHERE r.source = 'openflights' AND r.is_active "
    "AND NOT EXISTS (SELECT 1 FROM ofr_ok o WHERE o.origin = r.origin_code AND o.dest = r.destination_code "
    "AND o.airline = r.airline_code)";

static int route_merge(fsi_job_t *j, void *ctx)
{
    long gone;
    if (fsi_exec(j, RT_RESOLVE) < 0 || fsi_reject_query(j, RT_UNRESOLVED) < 0 || fsi_exec(j, RT_OK) < 0 ||
        fsi_reject_query(j, RT_DUPES) < 0 || fsi_count_upsert(j, RT_UPSERT) != 0 ||
        (gone = fsi_exec(j, RT_DEACTIVATE)) < 0)
        return -1;
    fs_import_result_t *r = j->res;
    r->deactivated = gone;
    r->unchanged = r->rows - r->skipped - r->rejected - r->inserted - r->updated;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */

static const fsi_spec_t specs[] = {
    {"airports", AP_STAGE, AP_COPY, NULL, airport_row, airport_merge},
    {"airlines", AL_STAGE, AL_COPY, NULL, airline_row, airline_merge},
    {"aircraft", PL_STAGE, PL_COPY, NULL, plane_row, plane_merge},
    {"routes", RT_STAGE, RT_COPY, NULL, route_row, route_merge},
};
static const char *const files[] = {"airports.dat", "airlines.dat", "planes.dat", "routes.dat"};

int fs_import_openflights(PGconn *conn, const char *dir, const fs_import_opts_t *opts, fs_import_result_t out[4],
                          int *n_out)
{
    FILE *report = opts && opts->report ? opts->report : stderr;
    char *cpath = fs_sprintf("%s/countries.dat", dir), *err = NULL;
    fsi_countries_t *countries = NULL;
    int rc = 0;
    *n_out = 0;
    if (access(cpath, R_OK) != 0)
        fprintf(report, "%s: not found: airports and airlines get no country code from names\n", cpath);
    else if (!(countries = fsi_countries_load(cpath, true, &err))) {
        fprintf(report, "%s\n", err);
        free(err);
        free(cpath);
        return -1;
    }
    of_ctx_t ctx = {countries};
    bool any = false;
    for (size_t i = 0; i < 4 && rc == 0; i++) {
        char *path = fs_sprintf("%s/%s", dir, files[i]);
        if (access(path, F_OK) != 0) {
            fprintf(report, "%s: not found, skipped\n", path);
        } else {
            any = true;
            rc = fsi_run(conn, path, &specs[i], &ctx, opts, &out[*n_out]);
            if (rc == 0)
                (*n_out)++;
        }
        free(path);
    }
    if (!any) {
        fprintf(report, "%s: no OpenFlights files (airports.dat, airlines.dat, planes.dat, routes.dat)\n", dir);
        rc = -1;
    }
    fsi_countries_free(countries);
    free(cpath);
    return rc;
}
