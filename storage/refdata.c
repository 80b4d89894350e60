/* Loading reference data from PostgreSQL into the in-memory bundle (see refdata.h). */
#include "storage/refdata.h"

#include "runtime/alloc.h"
#include "storage/pg.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char AIRPORTS_SQL[] =
    "SELECT iata_code, coalesce(icao_code, ''), name, city, country, country_code, timezone, latitude, longitude,"
    " is_major, route_count FROM airports WHERE is_active ORDER BY iata_code";
/* Same order as fs_airline_primary(): the first row of a code is its primary airline. */
static const char AIRLINES_SQL[] =
    "SELECT coalesce(iata_code, ''), coalesce(icao_code, ''), name, country, coalesce(country_code, ''), logo_url,"
    " alliance, is_active, is_low_cost, route_count FROM airlines WHERE iata_code IS NOT NULL OR icao_code IS NOT NULL"
    " ORDER BY is_active DESC, route_count DESC, openflights_id NULLS FIRST";
static const char ROUTES_SQL[] =
    "SELECT origin_code, destination_code, coalesce(airline_code, ''), stops, codeshare,"
    " array_to_string(equipment, ' ') FROM routes WHERE is_active ORDER BY origin_code, destination_code, airline_code";

static void copy_code(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static char *dup_opt(const char *s) { return s ? fs_strdup(s) : NULL; }

fs_refdata_t *fs_refdata_build(const fs_airport_t *airports, size_t n_airports, const fs_route_row_t *routes,
                               size_t n_routes, const fs_airline_t *airlines, size_t n_airlines)
{
    fs_refdata_t *r = FS_NEW(fs_refdata_t);
    r->airports = fs_airport_index_build(airports, n_airports);
    r->routes = fs_route_graph_build(r->airports, routes, n_routes, &r->routes_dropped);
    r->airlines = fs_calloc(n_airlines ? n_airlines : 1, sizeof *r->airlines);
    for (size_t i = 0; i < n_airlines; i++) {
        fs_airline_t *a = &r->airlines[r->n_airlines++];
        *a = airlines[i];
        a->name = fs_strdup(airlines[i].name ? airlines[i].name : "");
        a->country = dup_opt(airlines[i].country);
        a->logo_url = dup_opt(airlines[i].logo_url);
        a->alliance = dup_opt(airlines[i].alliance);
    }
    r->timetable = fs_timetable_build(r->airports, r->routes, r->airlines, r->n_airlines);
    return r;
}

void fs_refdata_free(fs_refdata_t *r)
{
    if (!r)
        return;
    fs_timetable_free(r->timetable); /* points into the airport index */
    fs_route_graph_free(r->routes);  /* points into the airport index: first */
    fs_airport_index_free(r->airports);
    for (size_t i = 0; i < r->n_airlines; i++) {
        free((char *)r->airlines[i].name), free((char *)r->airlines[i].country);
        free((char *)r->airlines[i].logo_url), free((char *)r->airlines[i].alliance);
    }
    free(r->airlines);
    free(r);
}

const fs_airline_t *fs_refdata_airline(const fs_refdata_t *r, const char *code)
{
    if (!r || !code)
        return NULL;
    size_t len = strlen(code);
    for (size_t i = 0; i < r->n_airlines; i++) {
        const fs_airline_t *a = &r->airlines[i];
        if ((len == 2 && strcasecmp(a->iata, code) == 0) || (len == 3 && strcasecmp(a->icao, code) == 0))
            return a;
    }
    return NULL;
}

static PGresult *query(PGconn *conn, const char *sql, char **err)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        return res;
    *err = fs_sprintf("loading reference data: %s", PQresultErrorMessage(res));
    PQclear(res);
    return NULL;
}

static const char *val(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

static fs_airport_t *airport_rows(PGresult *res)
{
    int n = PQntuples(res);
    fs_airport_t *v = fs_calloc(n ? (size_t)n : 1, sizeof *v);
    for (int i = 0; i < n; i++) {
        fs_airport_t *a = &v[i];
        copy_code(a->iata, sizeof a->iata, val(res, i, 0));
        copy_code(a->icao, sizeof a->icao, val(res, i, 1));
        a->name = val(res, i, 2), a->city = val(res, i, 3), a->country = val(res, i, 4);
        copy_code(a->country_code, sizeof a->country_code, val(res, i, 5));
        a->timezone = val(res, i, 6);
        a->has_coords = val(res, i, 7) && val(res, i, 8);
        if (a->has_coords)
            a->latitude = strtod(val(res, i, 7), NULL), a->longitude = strtod(val(res, i, 8), NULL);
        a->is_major = val(res, i, 9)[0] == 't';
        a->is_active = true;
        a->route_count = atoi(val(res, i, 10));
    }
    return v;
}

static fs_airline_t *airline_rows(PGresult *res)
{
    int n = PQntuples(res);
    fs_airline_t *v = fs_calloc(n ? (size_t)n : 1, sizeof *v);
    for (int i = 0; i < n; i++) {
        fs_airline_t *a = &v[i];
        copy_code(a->iata, sizeof a->iata, val(res, i, 0));
        copy_code(a->icao, sizeof a->icao, val(res, i, 1));
        a->name = val(res, i, 2), a->country = val(res, i, 3);
        copy_code(a->country_code, sizeof a->country_code, val(res, i, 4));
        a->logo_url = val(res, i, 5), a->alliance = val(res, i, 6);
        a->is_active = val(res, i, 7)[0] == 't';
        a->is_low_cost = val(res, i, 8)[0] == 't';
        a->route_count = atoi(val(res, i, 9));
    }
    return v;
}

static fs_route_row_t *route_rows(PGresult *res)
{
    int n = PQntuples(res);
    fs_route_row_t *v = fs_calloc(n ? (size_t)n : 1, sizeof *v);
    for (int i = 0; i < n; i++)
        v[i] = (fs_route_row_t){val(res, i, 0), val(res, i, 1), val(res, i, 2), atoi(val(res, i, 3)),
                                val(res, i, 4)[0] == 't', val(res, i, 5)};
    return v;
}

fs_refdata_t *fs_refdata_load(PGconn *conn, char **err)
{
    PGresult *ap = NULL, *al = NULL, *rt = NULL;
    fs_refdata_t *r = NULL;
    /* One snapshot for the three reads, so an import committing meanwhile is seen whole or not. */
    PGresult *b = PQexec(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    PQclear(b);
    if ((ap = query(conn, AIRPORTS_SQL, err)) && (al = query(conn, AIRLINES_SQL, err)) &&
        (rt = query(conn, ROUTES_SQL, err))) {
        fs_airport_t *a = airport_rows(ap);
        fs_airline_t *l = airline_rows(al);
        fs_route_row_t *ro = route_rows(rt);
        r = fs_refdata_build(a, (size_t)PQntuples(ap), ro, (size_t)PQntuples(rt), l, (size_t)PQntuples(al));
        free(a), free(l), free(ro);
    }
    PGresult *e = PQexec(conn, "COMMIT");
    PQclear(e);
    PQclear(ap), PQclear(al), PQclear(rt);
    return r;
}

fs_refdata_t *fs_refdata_load_url(const char *url, char **err)
{
    PGconn *conn = fs_pg_connect_blocking(url, err);
    if (!conn)
        return NULL;
    fs_refdata_t *r = fs_refdata_load(conn, err);
    PQfinish(conn);
    return r;
}
