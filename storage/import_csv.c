/* `flightshark import csv airports|airlines|routes FILE`: the admin CSV format.
 *
 * The header row names the columns (any order; unknown names make the file malformed, so a
 * typo never silently drops a column). Only the key columns are required in the header: a row
 * updates the existing record with that key, and an empty cell (or a column left out) keeps
 * the stored value; a row whose key is new inserts a record and must then carry the columns a
 * new record needs. docs/REFERENCE_DATA.md lists the columns of each kind. */
#include "storage/import_priv.h"

#include "runtime/alloc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    T_AIRPORT_CODE, /* 3 letters/digits */
    T_AIRLINE_CODE, /* 2 letters/digits */
    T_ROUTE_AIRLINE, /* 2-3 letters/digits */
    T_ICAO4,
    T_ICAO3,
    T_COUNTRY,
    T_TEXT,
    T_LAT,
    T_LON,
    T_INT,
    T_FLOAT,
    T_BOOL,
    T_TZ,
    T_EQUIPMENT,
    T_MAJOR, /* true/false, or "auto" to go back to the derived value */
    T_MONTH,
} ctype_t;

typedef struct {
    const char *name;
    ctype_t type;
    const char *sqltype;
    bool key;
} column_t;

typedef struct {
    const char *kind;
    const column_t *cols;
    size_t ncols;
    const char *const *merge_sql; /* NULL-terminated: rejects (line, reason) first, then counts */
} kind_t;

#define MAX_COLS 24

/* --- airports --- */

static const column_t airport_cols[] = {
    {"iata_code", T_AIRPORT_CODE, "text", true}, {"name", T_TEXT, "text", false},
    {"city", T_TEXT, "text", false},             {"country", T_TEXT, "text", false},
    {"country_code", T_COUNTRY, "text", false},  {"icao_code", T_ICAO4, "text", false},
    {"latitude", T_LAT, "float8", false},        {"longitude", T_LON, "float8", false},
    {"timezone", T_TZ, "text", false},           {"altitude_ft", T_INT, "int", false},
    {"airport_type", T_TEXT, "text", false},     {"region", T_TEXT, "text", false},
    {"municipality", T_TEXT, "text", false},     {"is_major", T_MAJOR, "text", false},
    {"is_active", T_BOOL, "boolean", false},
};

static const char *const airport_sql[] = {
    /* rejects */
    "SELECT line, format('%s: a new airport needs name, city, country_code, latitude and longitude', iata_code) "
    "FROM stage s WHERE NOT EXISTS (SELECT 1 FROM airports t WHERE t.iata_code = s.iata_code) "
    "AND (name IS NULL OR city IS NULL OR country_code IS NULL OR latitude IS NULL OR longitude IS NULL) ORDER BY line",
    /* update: (0, updated) */
    "WITH up AS (UPDATE airports t SET name = coalesce(s.name, t.name), city_override = coalesce(s.city, t.city_override),"
    " country = coalesce(s.country, t.country), country_code = coalesce(s.country_code, t.country_code),"
    " icao_code = coalesce(s.icao_code, t.icao_code), latitude = coalesce(s.latitude, t.latitude),"
    " longitude = coalesce(s.longitude, t.longitude), timezone = coalesce(s.timezone, t.timezone),"
    " timezone_inferred = t.timezone_inferred AND s.timezone IS NULL,"
    " altitude_ft = coalesce(s.altitude_ft, t.altitude_ft), airport_type = coalesce(s.airport_type, t.airport_type),"
    " region = coalesce(s.region, t.region), municipality = coalesce(s.municipality, t.municipality),"
    " is_major_override = CASE s.is_major WHEN 'auto' THEN NULL WHEN 't' THEN true WHEN 'f' THEN false"
    "   ELSE t.is_major_override END,"
    " is_active = coalesce(s.is_active, t.is_active), updated_at = now()"
    " FROM stage s WHERE t.iata_code = s.iata_code AND (t.name, t.city_override, t.country, t.country_code, t.icao_code,"
    "  t.latitude, t.longitude, t.timezone, t.altitude_ft, t.airport_type, t.region, t.municipality,"
    "  t.is_major_override, t.is_active) IS DISTINCT FROM (coalesce(s.name, t.name), coalesce(s.city, t.city_override),"
    "  coalesce(s.country, t.country), coalesce(s.country_code, t.country_code), coalesce(s.icao_code, t.icao_code),"
    "  coalesce(s.latitude, t.latitude), coalesce(s.longitude, t.longitude), coalesce(s.timezone, t.timezone),"
    "  coalesce(s.altitude_ft, t.altitude_ft), coalesce(s.airport_type, t.airport_type), coalesce(s.region, t.region),"
    "  coalesce(s.municipality, t.municipality), CASE s.is_major WHEN 'auto' THEN NULL WHEN 't' THEN true"
    "  WHEN 'f' THEN false ELSE t.is_major_override END, coalesce(s.is_active, t.is_active)) RETURNING 1)"
    "SELECT 0, count(*) FROM up",
    /* insert: (inserted, 0) */
    "WITH ins AS (INSERT INTO airports (iata_code, name, city, city_override, country, country_code, icao_code,"
    " latitude, longitude, timezone, altitude_ft, airport_type, region, municipality, is_major, is_major_override,"
    " is_active)"
    " SELECT iata_code, name, city, city, coalesce(country, country_code), country_code, icao_code, latitude,"
    "  longitude, timezone, altitude_ft, coalesce(airport_type, 'airport'), region, municipality,"
    "  coalesce(is_major = 't', false), CASE is_major WHEN 't' THEN true WHEN 'f' THEN false END,"
    "  coalesce(is_active, true)"
    " FROM stage s WHERE NOT EXISTS (SELECT 1 FROM airports t WHERE t.iata_code = s.iata_code) RETURNING 1)"
    "SELECT count(*), 0 FROM ins",
    NULL,
};

/* --- airlines --- */

static const column_t airline_cols[] = {
    {"iata_code", T_AIRLINE_CODE, "text", true}, {"name", T_TEXT, "text", false},
    {"icao_code", T_ICAO3, "text", false},       {"country", T_TEXT, "text", false},
    {"country_code", T_COUNTRY, "text", false},  {"logo_url", T_TEXT, "text", false},
    {"alliance", T_TEXT, "text", false},         {"airline_type", T_TEXT, "text", false},
    {"website", T_TEXT, "text", false},          {"is_low_cost", T_BOOL, "boolean", false},
    {"is_active", T_BOOL, "boolean", false},     {"rating", T_FLOAT, "float8", false},
};

static const char *const airline_sql[] = {
    "SELECT line, format('%s: a new airline needs a name', iata_code) FROM stage s "
    "WHERE fs_airline_primary(s.iata_code) IS NULL AND s.name IS NULL ORDER BY line",
    "WITH up AS (UPDATE airlines t SET name = coalesce(s.name, t.name), icao_code = coalesce(s.icao_code, t.icao_code),"
    " country = coalesce(s.country, t.country), country_code = coalesce(s.country_code, t.country_code),"
    " logo_url = coalesce(s.logo_url, t.logo_url), alliance = coalesce(s.alliance, t.alliance),"
    " airline_type = coalesce(s.airline_type, t.airline_type), website = coalesce(s.website, t.website),"
    " is_low_cost = coalesce(s.is_low_cost, t.is_low_cost), is_active = coalesce(s.is_active, t.is_active),"
    " rating = coalesce(s.rating, t.rating), updated_at = now()"
    " FROM stage s WHERE t.id = fs_airline_primary(s.iata_code) AND (t.name, t.icao_code, t.country, t.country_code,"
    "  t.logo_url, t.alliance, t.airline_type, t.website, t.is_low_cost, t.is_active, t.rating) IS DISTINCT FROM"
    "  (coalesce(s.name, t.name), coalesce(s.icao_code, t.icao_code), coalesce(s.country, t.country),"
    "  coalesce(s.country_code, t.country_code), coalesce(s.logo_url, t.logo_url), coalesce(s.alliance, t.alliance),"
    "  coalesce(s.airline_type, t.airline_type), coalesce(s.website, t.website), coalesce(s.is_low_cost, t.is_low_cost),"
    "  coalesce(s.is_active, t.is_active), coalesce(s.rating, t.rating)) RETURNING 1)"
    "SELECT 0, count(*) FROM up",
    "WITH ins AS (INSERT INTO airlines (iata_code, name, icao_code, country, country_code, logo_url, alliance,"
    " airline_type, website, is_low_cost, is_active, rating)"
    " SELECT iata_code, name, icao_code, country, country_code,"
    "  coalesce(logo_url, 'https://pics.avs.io/100/100/' || iata_code || '.png'), alliance,"
    "  coalesce(airline_type, 'scheduled'), website, coalesce(is_low_cost, false), coalesce(is_active, true), rating"
    " FROM stage s WHERE fs_airline_primary(s.iata_code) IS NULL RETURNING 1)"
    "SELECT count(*), 0 FROM ins",
    NULL,
};

/* --- routes --- */

static const column_t route_cols[] = {
    {"origin_code", T_AIRPORT_CODE, "text", true},
    {"destination_code", T_AIRPORT_CODE, "text", true},
    {"airline_code", T_ROUTE_AIRLINE, "text", true},
    {"is_direct", T_BOOL, "boolean", false},
    {"typical_duration_minutes", T_INT, "int", false},
    {"distance_km", T_INT, "int", false},
    {"flights_per_week", T_INT, "int", false},
    {"typical_price_low", T_FLOAT, "float8", false},
    {"typical_price_high", T_FLOAT, "float8", false},
    {"is_active", T_BOOL, "boolean", false},
    {"seasonal", T_BOOL, "boolean", false},
    {"season_start", T_MONTH, "int", false},
    {"season_end", T_MONTH, "int", false},
    {"equipment", T_EQUIPMENT, "text[]", false},
};

#define ROUTE_MATCH                                                                                               \
    "t.origin_code = s.origin_code AND t.destination_code = s.destination_code"                                  \
    " AND coalesce(t.airline_code, '') = coalesce(s.airline_code, '')"

static const char *const route_sql[] = {
    "SELECT line, CASE WHEN origin_code = destination_code THEN 'origin and destination are the same airport'"
    " ELSE format('unknown airport %s', CASE WHEN NOT EXISTS (SELECT 1 FROM airports WHERE iata_code = origin_code)"
    " THEN origin_code ELSE destination_code END) END FROM stage s "
    "WHERE origin_code = destination_code OR NOT EXISTS (SELECT 1 FROM airports WHERE iata_code = origin_code)"
    " OR NOT EXISTS (SELECT 1 FROM airports WHERE iata_code = destination_code) ORDER BY line",
    "WITH up AS (UPDATE routes t SET is_direct = coalesce(s.is_direct, t.is_direct),"
    " typical_duration_minutes = coalesce(s.typical_duration_minutes, t.typical_duration_minutes),"
    " distance_km = coalesce(s.distance_km, t.distance_km), flights_per_week = coalesce(s.flights_per_week, t.flights_per_week),"
    " typical_price_low = coalesce(s.typical_price_low, t.typical_price_low),"
    " typical_price_high = coalesce(s.typical_price_high, t.typical_price_high), is_active = coalesce(s.is_active, t.is_active),"
    " seasonal = coalesce(s.seasonal, t.seasonal), season_start = coalesce(s.season_start, t.season_start),"
    " season_end = coalesce(s.season_end, t.season_end), equipment = coalesce(s.equipment, t.equipment), updated_at = now()"
    " FROM stage s WHERE " ROUTE_MATCH " AND (t.is_direct, t.typical_duration_minutes, t.distance_km, t.flights_per_week,"
    "  t.typical_price_low, t.typical_price_high, t.is_active, t.seasonal, t.season_start, t.season_end, t.equipment)"
    "  IS DISTINCT FROM (coalesce(s.is_direct, t.is_direct), coalesce(s.typical_duration_minutes, t.typical_duration_minutes),"
    "  coalesce(s.distance_km, t.distance_km), coalesce(s.flights_per_week, t.flights_per_week),"
    "  coalesce(s.typical_price_low, t.typical_price_low), coalesce(s.typical_price_high, t.typical_price_high),"
    "  coalesce(s.is_active, t.is_active), coalesce(s.seasonal, t.seasonal), coalesce(s.season_start, t.season_start),"
    "  coalesce(s.season_end, t.season_end), coalesce(s.equipment, t.equipment)) RETURNING 1)"
    "SELECT 0, count(*) FROM up",
    "WITH ins AS (INSERT INTO routes (origin_code, destination_code, airline_code, airline_id, is_direct,"
    " typical_duration_minutes, distance_km, flights_per_week, typical_price_low, typical_price_high, is_active,"
    " seasonal, season_start, season_end, equipment, source)"
    " SELECT origin_code, destination_code, airline_code, fs_airline_primary(airline_code), coalesce(is_direct, true),"
    "  typical_duration_minutes, distance_km, flights_per_week, typical_price_low, typical_price_high,"
    "  coalesce(is_active, true), coalesce(seasonal, false), season_start, season_end, coalesce(equipment, '{}'), 'admin'"
    " FROM stage s WHERE NOT EXISTS (SELECT 1 FROM routes t WHERE " ROUTE_MATCH ") RETURNING 1)"
    "SELECT count(*), 0 FROM ins",
    NULL,
};

#define KIND(k, cols, sql) {k, cols, sizeof cols / sizeof cols[0], sql}
static const kind_t kinds[] = {
    KIND("airports", airport_cols, airport_sql),
    KIND("airlines", airline_cols, airline_sql),
    KIND("routes", route_cols, route_sql),
};

/* --- the file --- */

typedef struct {
    const kind_t *kind;
    int map[MAX_COLS]; /* file column of each kind column, -1 when absent */
    size_t nfile;
} ctx_t;

static int header(fsi_job_t *j, fs_csv_record_t *rec, void *vctx)
{
    ctx_t *c = vctx;
    c->nfile = rec->nfields;
    for (size_t k = 0; k < c->kind->ncols; k++)
        c->map[k] = -1;
    for (size_t i = 0; i < rec->nfields; i++) {
        char *name = rec->fields[i];
        fsi_trim(name, strlen(name));
        size_t k = 0;
        while (k < c->kind->ncols && strcasecmp(c->kind->cols[k].name, name) != 0)
            k++;
        if (k == c->kind->ncols) {
            fsi_note(j, "line %ld: unknown column \"%s\" for %s", rec->line, name, c->kind->kind);
            return -1;
        }
        if (c->map[k] >= 0) {
            fsi_note(j, "line %ld: column \"%s\" appears twice", rec->line, name);
            return -1;
        }
        c->map[k] = (int)i;
    }
    for (size_t k = 0; k < c->kind->ncols; k++)
        if (c->kind->cols[k].key && c->map[k] < 0 && strcmp(c->kind->cols[k].name, "airline_code") != 0) {
            fsi_note(j, "line %ld: header has no \"%s\" column", rec->line, c->kind->cols[k].name);
            return -1;
        }
    return 0;
}

static void upcase(char *s)
{
    for (; *s; s++)
        *s = (char)toupper((unsigned char)*s);
}

/* Checks one cell and writes its COPY value. Returns NULL, or why the cell is refused. */
static const char *cell(fsi_job_t *j, const column_t *col, char *v)
{
    size_t n = strlen(v);
    double d;
    long l;
    bool b;
    switch (col->type) {
    case T_AIRPORT_CODE: upcase(v); if (!fsi_is_code(v, n, 3, 3, false)) return "want 3 letters or digits"; break;
    case T_AIRLINE_CODE: upcase(v); if (!fsi_is_code(v, n, 2, 2, false)) return "want 2 letters or digits"; break;
    case T_ROUTE_AIRLINE: upcase(v); if (!fsi_is_code(v, n, 2, 3, false)) return "want 2 or 3 letters or digits"; break;
    case T_ICAO4: upcase(v); if (!fsi_is_code(v, n, 4, 4, false)) return "want 4 letters or digits"; break;
    case T_ICAO3: upcase(v); if (!fsi_is_code(v, n, 3, 3, true)) return "want 3 letters"; break;
    case T_COUNTRY: upcase(v); if (!fsi_is_code(v, n, 2, 2, true)) return "want an ISO 3166 code of 2 letters"; break;
    case T_TEXT: if (n > 255) return "longer than 255 bytes"; break;
    case T_TZ: if (!strchr(v, '/') || n > 64) return "want an IANA zone name such as Europe/Dublin"; break;
    case T_LAT: if (!fsi_parse_double(v, &d) || d < -90 || d > 90) return "want a latitude in [-90, 90]"; break;
    case T_LON: if (!fsi_parse_double(v, &d) || d < -180 || d > 180) return "want a longitude in [-180, 180]"; break;
    case T_INT: if (!fsi_parse_long(v, &l) || l < -2000 || l > 1000000) return "want a whole number"; break;
    case T_MONTH: if (!fsi_parse_long(v, &l) || l < 1 || l > 12) return "want a month 1-12"; break;
    case T_FLOAT: if (!fsi_parse_double(v, &d) || d < 0) return "want a number >= 0"; break;
    case T_BOOL:
        if (!fsi_parse_bool(v, &b)) return "want true or false";
        fsi_col(j, b ? "t" : "f");
        return NULL;
    case T_MAJOR:
        if (strcasecmp(v, "auto") == 0) {
            fsi_col(j, "auto");
            return NULL;
        }
        if (!fsi_parse_bool(v, &b)) return "want true, false or auto";
        fsi_col(j, b ? "t" : "f");
        return NULL;
    case T_EQUIPMENT: {
        char buf[512];
        size_t o = 0;
        buf[o++] = '{';
        upcase(v);
        for (char *save = NULL, *t = strtok_r(v, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
            size_t tn = strlen(t);
            if (!fsi_is_code(t, tn, 2, 4, false) || o + tn + 3 > sizeof buf)
                return "want aircraft codes separated by spaces";
            if (o > 1)
                buf[o++] = ',';
            memcpy(buf + o, t, tn);
            o += tn;
        }
        buf[o++] = '}';
        fsi_col_n(j, buf, o);
        return NULL;
    }
    }
    fsi_col(j, v);
    return NULL;
}

static int row(fsi_job_t *j, fs_csv_record_t *rec, void *vctx)
{
    ctx_t *c = vctx;
    if (rec->malformed || rec->nfields != c->nfile) {
        fsi_reject_shape(j, rec->line, "%s (expected %zu fields, found %zu)",
                         rec->malformed ? rec->malformed : "wrong number of fields", c->nfile, rec->nfields);
        return 0;
    }
    fsi_col_long(j, rec->line);
    for (size_t k = 0; k < c->kind->ncols; k++) {
        const column_t *col = &c->kind->cols[k];
        char *v = c->map[k] >= 0 ? rec->fields[c->map[k]] : NULL;
        if (v)
            fsi_trim(v, strlen(v));
        if (!v || !*v) {
            if (col->key && strcmp(col->name, "airline_code") != 0) {
                fsi_row_discard(j);
                return fsi_reject(j, rec->line, "missing %s", col->name), 0;
            }
            fsi_col(j, NULL);
            continue;
        }
        const char *why = cell(j, col, v);
        if (why) {
            fsi_row_discard(j);
            return fsi_reject(j, rec->line, "bad %s '%s': %s", col->name, v, why), 0;
        }
    }
    return fsi_row_end(j);
}

/* The key columns, each prefixed ("s.origin_code, s.destination_code, ..."). */
static char *keys_sql(const kind_t *k, const char *prefix)
{
    char *sql = NULL;
    for (size_t i = 0; i < k->ncols; i++) {
        if (!k->cols[i].key)
            continue;
        char *next = sql ? fs_sprintf("%s, %s%s", sql, prefix, k->cols[i].name)
                         : fs_sprintf("%s%s", prefix, k->cols[i].name);
        free(sql);
        sql = next;
    }
    return sql;
}

static int merge(fsi_job_t *j, void *vctx)
{
    ctx_t *c = vctx;
    /* The same key twice in one file: the first row wins. */
    char *sk = keys_sql(c->kind, "s."), *fk = keys_sql(c->kind, "f.");
    char *dupes = fs_sprintf("SELECT s.line, format('duplicate of line %%s', min(f.line)) FROM stage s JOIN stage f"
                             " ON (%s) IS NOT DISTINCT FROM (%s) AND f.line < s.line GROUP BY s.line ORDER BY s.line",
                             sk, fk);
    char *drop = fs_sprintf("DELETE FROM stage s USING stage f WHERE (%s) IS NOT DISTINCT FROM (%s) AND f.line < s.line",
                            sk, fk);
    long rows = -1;
    int rc = fsi_reject_query(j, dupes) < 0 || fsi_exec(j, drop) < 0 ? -1 : 0;
    free(sk);
    free(fk);
    free(dupes);
    free(drop);
    if (rc != 0)
        return -1;
    const char *const *sql = c->kind->merge_sql;
    char *rejects = fs_sprintf("CREATE TEMP TABLE rejects ON COMMIT DROP AS %s", sql[0]);
    rc = fsi_exec(j, rejects) < 0 || fsi_reject_query(j, "SELECT * FROM rejects") < 0 ||
                 fsi_exec(j, "DELETE FROM stage WHERE line IN (SELECT line FROM rejects)") < 0 ||
                 (rows = fsi_scalar(j, "SELECT count(*) FROM stage")) < 0
             ? -1
             : 0;
    free(rejects);
    for (size_t i = 1; rc == 0 && sql[i]; i++)
        rc = fsi_count_upsert(j, sql[i]);
    if (rc != 0)
        return -1;
    j->res->unchanged = rows - j->res->inserted - j->res->updated;
    return 0;
}

static char *stage_sql(const kind_t *k)
{
    char *sql = fs_strdup("CREATE TEMP TABLE stage (line int");
    for (size_t i = 0; i < k->ncols; i++) {
        char *next = fs_sprintf("%s, %s %s", sql, k->cols[i].name, k->cols[i].sqltype);
        free(sql);
        sql = next;
    }
    char *done = fs_sprintf("%s) ON COMMIT DROP", sql);
    free(sql);
    return done;
}

int fs_import_csv(PGconn *conn, const char *kind, const char *path, const fs_import_opts_t *opts,
                  fs_import_result_t *out)
{
    memset(out, 0, sizeof *out);
    const kind_t *k = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i].kind, kind) == 0)
            k = &kinds[i];
    if (!k) {
        fprintf(opts && opts->report ? opts->report : stderr,
                "flightshark: unknown CSV kind '%s' (want airports, airlines or routes)\n", kind);
        return -1;
    }
    ctx_t c = {.kind = k};
    char *stage = stage_sql(k);
    fsi_spec_t spec = {k->kind, stage, "COPY stage FROM STDIN", header, row, merge};
    int rc = fsi_run(conn, path, &spec, &c, opts, out);
    free(stage);
    return rc;
}
