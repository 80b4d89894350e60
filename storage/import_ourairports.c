/* `flightshark import ourairports AIRPORTS.csv [COUNTRIES.csv]` (see import.h).
 *
 * Every row is staged (rows without an IATA code too, by id and type only) so that an airport
 * that lost its IATA code or closed since the last import is found and deactivated. Rows with
 * an IATA code are upserted on iata_code; the derived city and is_major are recomputed by
 * fs_refresh_reference_derived() before COMMIT. */
#include "storage/import_priv.h"

#include "runtime/alloc.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { C_ID, C_TYPE, C_NAME, C_LAT, C_LON, C_ELEV, C_COUNTRY, C_REGION, C_MUNI, C_SCHED, C_ICAO, C_IATA, C_N };

static const struct {
    const char *name;
    bool required;
} columns[C_N] = {
    [C_ID] = {"id", true},           [C_TYPE] = {"type", true},
    [C_NAME] = {"name", true},       [C_LAT] = {"latitude_deg", true},
    [C_LON] = {"longitude_deg", true}, [C_ELEV] = {"elevation_ft", false},
    [C_COUNTRY] = {"iso_country", true}, [C_REGION] = {"iso_region", false},
    [C_MUNI] = {"municipality", false}, [C_SCHED] = {"scheduled_service", false},
    [C_ICAO] = {"icao_code", false}, [C_IATA] = {"iata_code", true},
};

static const char STAGE_SQL[] =
    "CREATE TEMP TABLE stage_oa (line int, ourairports_id int, iata text, icao text, name text, "
    "municipality text, country_code text, country text, region text, latitude float8, longitude float8, "
    "altitude int, airport_type text, scheduled boolean) ON COMMIT DROP";
static const char COPY_SQL[] = "COPY stage_oa FROM STDIN";

/* Airports OurAirports no longer lists with an IATA code (closed, code removed or moved to
 * another row) lose their OurAirports link and are deactivated. */
static const char DEACTIVATE_SQL[] =
    "UPDATE airports a SET ourairports_id = NULL, is_active = false, updated_at = now() "
    "FROM stage_oa s WHERE a.ourairports_id = s.ourairports_id "
    "AND (s.iata IS NULL OR s.iata <> a.iata_code OR s.airport_type = 'closed')";

static const char UPSERT_SQL[] =
    "WITH up AS ("
    " INSERT INTO airports AS a (iata_code, icao_code, name, city, country, country_code, region, municipality,"
    "   latitude, longitude, altitude_ft, airport_type, scheduled_service, is_active, ourairports_id)"
    " SELECT s.iata, s.icao, s.name, fs_airport_city(NULL, s.municipality, NULL, s.name),"
    "   coalesce(s.country, (SELECT x.country FROM airports x WHERE x.iata_code = s.iata"
    "                        AND x.country_code = s.country_code), s.country_code),"
    "   s.country_code, s.region, s.municipality, s.latitude, s.longitude, s.altitude, s.airport_type,"
    "   s.scheduled, true, s.ourairports_id"
    " FROM stage_oa s WHERE s.iata IS NOT NULL AND s.airport_type <> 'closed'"
    " ON CONFLICT (iata_code) DO UPDATE SET"
    "   icao_code = coalesce(EXCLUDED.icao_code, a.icao_code), name = EXCLUDED.name,"
    "   country = EXCLUDED.country, country_code = EXCLUDED.country_code, region = EXCLUDED.region,"
    "   municipality = EXCLUDED.municipality, latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude,"
    "   altitude_ft = coalesce(EXCLUDED.altitude_ft, a.altitude_ft), airport_type = EXCLUDED.airport_type,"
    "   scheduled_service = EXCLUDED.scheduled_service, is_active = true,"
    "   ourairports_id = EXCLUDED.ourairports_id, updated_at = now()"
    " WHERE (a.icao_code, a.name, a.country, a.country_code, a.region, a.municipality, a.latitude, a.longitude,"
    "        a.altitude_ft, a.airport_type, a.scheduled_service, a.is_active, a.ourairports_id)"
    "   IS DISTINCT FROM (coalesce(EXCLUDED.icao_code, a.icao_code), EXCLUDED.name, EXCLUDED.country,"
    "        EXCLUDED.country_code, EXCLUDED.region, EXCLUDED.municipality, EXCLUDED.latitude,"
    "        EXCLUDED.longitude, coalesce(EXCLUDED.altitude_ft, a.altitude_ft), EXCLUDED.airport_type,"
    "        EXCLUDED.scheduled_service,"
    "        true, EXCLUDED.ourairports_id)"
    " RETURNING (xmax = 0) AS inserted)"
    "SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM up";

typedef struct {
    int col[C_N]; /* index of each column in the file, -1 when absent */
    size_t ncols;
    const fsi_countries_t *countries;
} layout_t;

static int read_header(fsi_job_t *j, fs_csv_record_t *rec, void *ctx)
{
    layout_t *lay = ctx;
    lay->ncols = rec->nfields;
    for (int c = 0; c < C_N; c++) {
        lay->col[c] = -1;
        for (size_t i = 0; i < rec->nfields; i++)
            if (strcmp(rec->fields[i], columns[c].name) == 0)
                lay->col[c] = (int)i;
        if (lay->col[c] < 0 && columns[c].required) {
            fsi_note(j, "line 1: header has no \"%s\" column (is this an OurAirports airports.csv?)",
                     columns[c].name);
            return -1;
        }
    }
    return 0;
}
static char *field(const fs_csv_record_t *rec, const layout_t *lay, int c)
{
    if (lay->col[c] < 0)
        return "";
    char *s = rec->fields[lay->col[c]];
    fsi_trim(s, strlen(s));
    return s;
}

/* Validates one row and stages it. Returns -1 only when the COPY itself failed. */
static int stage_row(fsi_job_t *j, fs_csv_record_t *rec, void *ctx)
{
    const layout_t *lay = ctx;
    if (rec->malformed || rec->nfields != lay->ncols) {
        fsi_reject_shape(j, rec->line, "%s (expected %zu fields, found %zu)",
                         rec->malformed ? rec->malformed : "wrong number of fields", lay->ncols, rec->nfields);
        return 0;
    }
    long id;
    if (!fsi_parse_long(field(rec, lay, C_ID), &id) || id <= 0 || id > 2147483647L) {
        fsi_reject(j, rec->line, "bad id '%s'", field(rec, lay, C_ID));
        return 0;
    }
    const char *iata = field(rec, lay, C_IATA), *type = field(rec, lay, C_TYPE);
    if (!*iata || strcmp(type, "closed") == 0) {
        j->res->skipped++;
        fsi_col(j, NULL), fsi_col_long(j, id), fsi_col(j, *iata ? iata : NULL);
        for (int k = 0; k < 9; k++)
            fsi_col(j, NULL);
        fsi_col(j, type), fsi_col(j, NULL);
        return fsi_row_end(j);
    }
    const char *name = field(rec, lay, C_NAME), *cc = field(rec, lay, C_COUNTRY);
    double lat, lon;
    long elev = 0;
    const char *elev_s = field(rec, lay, C_ELEV);
    if (!fsi_is_code(iata, strlen(iata), 3, 3, false))
        return fsi_reject(j, rec->line, "bad IATA code '%s' (want 3 letters or digits)", iata), 0;
    if (!*name)
        return fsi_reject(j, rec->line, "%s: missing name", iata), 0;
    if (!fsi_is_code(cc, strlen(cc), 2, 2, true))
        return fsi_reject(j, rec->line, "%s: bad iso_country '%s'", iata, cc), 0;
    if (!fsi_parse_double(field(rec, lay, C_LAT), &lat) || lat < -90 || lat > 90 ||
        !fsi_parse_double(field(rec, lay, C_LON), &lon) || lon < -180 || lon > 180)
        return fsi_reject(j, rec->line, "%s: bad coordinates", iata), 0;
    if (*elev_s && (!fsi_parse_long(elev_s, &elev) || elev < -2000 || elev > 30000))
        return fsi_reject(j, rec->line, "%s: bad elevation_ft '%s'", iata, elev_s), 0;
    const char *icao = field(rec, lay, C_ICAO), *region = field(rec, lay, C_REGION);
    const char *muni = field(rec, lay, C_MUNI), *sched = field(rec, lay, C_SCHED);
    bool scheduled = false, has_sched = *sched && fsi_parse_bool(sched, &scheduled);

    fsi_col_long(j, rec->line);
    fsi_col_long(j, id);
    fsi_col(j, iata);
    fsi_col(j, fsi_is_code(icao, strlen(icao), 4, 4, false) ? icao : NULL);
    fsi_col(j, name);
    fsi_col(j, *muni ? muni : NULL);
    fsi_col(j, cc);
    fsi_col(j, fsi_country_name(lay->countries, cc));
    fsi_col(j, strlen(region) >= 4 && strncmp(region, cc, 2) == 0 && region[2] == '-' ? region : NULL);
    fsi_col_double(j, lat);
    fsi_col_double(j, lon);
    if (*elev_s)
        fsi_col_long(j, elev);
    else
        fsi_col(j, NULL);
    fsi_col(j, type);
    if (has_sched)
        fsi_col_bool(j, scheduled);
    else
        fsi_col(j, NULL);
    return fsi_row_end(j);
}

static int merge(fsi_job_t *j, void *ctx)
{
    long gone = fsi_exec(j, DEACTIVATE_SQL);
    if (gone < 0 || fsi_count_upsert(j, UPSERT_SQL) != 0)
        return -1;
    j->res->deactivated = gone;
    j->res->unchanged = j->res->rows - j->res->skipped - j->res->rejected - j->res->inserted - j->res->updated;
    return 0;
}

/* countries.csv next to airports.csv, if there is one. */
static char *sibling_countries(const char *airports_csv)
{
    const char *slash = strrchr(airports_csv, '/');
    char *p = slash ? fs_sprintf("%.*s/countries.csv", (int)(slash - airports_csv), airports_csv)
                    : fs_strdup("countries.csv");
    if (access(p, R_OK) == 0)
        return p;
    free(p);
    return NULL;
}

static const fsi_spec_t spec = {"airports", STAGE_SQL, COPY_SQL, read_header, stage_row, merge};

int fs_import_ourairports(PGconn *conn, const char *airports_csv, const char *countries_csv,
                          const fs_import_opts_t *opts, fs_import_result_t *out)
{
    char *err = NULL, *sibling = countries_csv ? NULL : sibling_countries(airports_csv);
    const char *cpath = countries_csv ? countries_csv : sibling;
    FILE *report = opts && opts->report ? opts->report : stderr;
    layout_t lay = {0};
    fsi_countries_t *countries = NULL;
    if (cpath && !(countries = fsi_countries_load(cpath, false, &err))) {
        fprintf(report, "%s: import failed, nothing was changed: %s\n", airports_csv, err);
        free(err);
        free(sibling);
        memset(out, 0, sizeof *out);
        return -1;
    }
    if (!cpath)
        fprintf(report, "%s: no countries.csv given or found next to it: country names fall back to ISO codes\n",
                airports_csv);
    lay.countries = countries;
    int rc = fsi_run(conn, airports_csv, &spec, &lay, opts, out);
    fsi_countries_free(countries);
    free(sibling);
    return rc;
}
