/* Route graph: who flies where, as an immutable in-memory structure for flight search.
 *
 * Built from route rows and an airport index (pure C, no database, no event loop); afterwards
 * only read, so any number of threads may share it. Each route is one directed edge
 * (origin, destination, airline code as filed) with its great-circle distance and equipment.
 * Adjacency is available by origin, by destination and by airline, each a contiguous list.
 * The graph points into the airport index it was built with: free the graph first (the
 * fs_refdata_t bundle in storage/refdata.h owns both and frees them in order).
 */
#ifndef FS_ROUTE_GRAPH_H
#define FS_ROUTE_GRAPH_H

#include "storage/airport_index.h"

#include <stdbool.h>
#include <stddef.h>

/* Build input: one route, strings borrowed. */
typedef struct fs_route_row {
    const char *origin;       /** IATA code */
    const char *destination;  /** IATA code */
    const char *airline;      /** code as filed (2-letter IATA or 3-letter ICAO); NULL or "" when none */
    int stops;                /** 0 for a direct flight */
    bool codeshare;
    const char *equipment;    /** aircraft type codes separated by spaces (may be NULL) */
} fs_route_row_t;

/* One edge of the graph. */
typedef struct fs_route {
    const fs_airport_t *origin;
    const fs_airport_t *destination;
    const char *airline;      /** "" when none */
    double distance_km;       /** great circle (haversine), 0 when an airport has no coordinates */
    int stops;
    bool codeshare;
    const char *const *equipment; /** aircraft type codes */
    size_t n_equipment;
} fs_route_t;

/* A contiguous list of edges. */
typedef struct fs_route_list {
    const fs_route_t *const *items;
    size_t n;
} fs_route_list_t;

typedef struct fs_route_graph fs_route_graph_t;

/* Builds the graph. Rows naming an airport the index does not hold, or the same airport at
 * both ends, are left out (*dropped, when given, counts them); a repeated (origin,
 * destination, airline) keeps the first row. Never returns NULL. */
fs_route_graph_t *fs_route_graph_build(const fs_airport_index_t *airports, const fs_route_row_t *rows, size_t n,
                                       size_t *dropped);

void fs_route_graph_free(fs_route_graph_t *g);

size_t fs_route_graph_count(const fs_route_graph_t *g);

/* Routes leaving `origin` (IATA code, case-insensitive), sorted by destination code then
 * airline. Empty list for an unknown code. */
fs_route_list_t fs_route_graph_from(const fs_route_graph_t *g, const char *origin);

/* Routes arriving at `destination`, sorted by origin code then airline. */
fs_route_list_t fs_route_graph_to(const fs_route_graph_t *g, const char *destination);

/* Routes filed under `airline` (exact code, case-insensitive), sorted by origin then
 * destination. */
fs_route_list_t fs_route_graph_by_airline(const fs_route_graph_t *g, const char *airline);

/* Routes from `origin` to `destination` (one per airline), sorted by airline. */
fs_route_list_t fs_route_graph_between(const fs_route_graph_t *g, const char *origin, const char *destination);

/* Great-circle distance in km between two points in degrees (haversine, mean Earth radius
 * 6371.0088 km, the same formula as the SQL function fs_haversine_km). */
double fs_geo_distance_km(double lat1, double lon1, double lat2, double lon2);

#endif
