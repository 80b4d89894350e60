/* Reference data in memory: the airport search index, the route graph and the airline table,
 * bundled as ONE immutable object with ONE free function.
 *
 * Loading blocks (a libpq connection of its own, a few queries, then the index builds), so a
 * worker runs fs_refdata_load_url() on its thread pool and, in the completion callback on its
 * loop, swaps its `const fs_refdata_t *` pointer and frees the previous bundle once no request
 * still reads it (requests run to completion on the loop, so right after the swap is safe
 * unless a request kept the pointer across an await). Nothing here touches an event loop.
 *
 *     static void load_work(void *arg)  { job->data = fs_refdata_load_url(url, &job->err); }   // pool thread
 *     static void load_done(void *arg)  { fs_refdata_t *old = w->ref; w->ref = job->data;       // loop thread
 *                                         fs_refdata_free(old); }
 */
#ifndef FS_REFDATA_H
#define FS_REFDATA_H

#include "storage/airport_index.h"
#include "storage/route_graph.h"
#include "storage/timetable.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct fs_airline {
    char iata[3];          /** IATA code, "" when none */
    char icao[4];          /** ICAO code, "" when none */
    const char *name;
    const char *country;   /** NULL when unknown */
    char country_code[3];  /** "" when unknown */
    const char *logo_url;  /** NULL when none */
    const char *alliance;  /** NULL when none */
    bool is_active;
    bool is_low_cost;
    int route_count;
} fs_airline_t;

typedef struct fs_refdata {
    fs_airport_index_t *airports;  /** active airports */
    fs_route_graph_t *routes;      /** active routes between indexed airports */
    fs_airline_t *airlines;        /** every airline with a code, primary first for each code */
    size_t n_airlines;
    size_t routes_dropped;         /** route rows left out of the graph (see fs_route_graph_build) */
    fs_timetable_t *timetable;     /** weekly schedule derived from the graph (storage/timetable.h) */
} fs_refdata_t;

/* Builds a bundle from rows (copies everything). For tests and for loaders. */
fs_refdata_t *fs_refdata_build(const fs_airport_t *airports, size_t n_airports, const fs_route_row_t *routes,
                               size_t n_routes, const fs_airline_t *airlines, size_t n_airlines);

/* Reads active airports, airlines and active routes over `conn` (blocking) and builds the
 * bundle. Returns NULL with *err set (caller frees) when a query fails. */
fs_refdata_t *fs_refdata_load(PGconn *conn, char **err);

/* Connects to DATABASE_URL `url`, loads, disconnects. */
fs_refdata_t *fs_refdata_load_url(const char *url, char **err);

/* The single free function (NULL is fine). */
void fs_refdata_free(fs_refdata_t *r);

/* The primary airline for a code (2-letter IATA or 3-letter ICAO, case-insensitive): active
 * first, then most routes, the rule of the SQL function fs_airline_primary(). NULL if none. */
const fs_airline_t *fs_refdata_airline(const fs_refdata_t *r, const char *code);

#endif
