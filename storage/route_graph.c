/* Route graph (see route_graph.h). Edges live in one array sorted by (origin, destination,
 * airline); three arrays of edge pointers give the by-origin, by-destination and by-airline
 * orders, so every adjacency query is two binary searches over one of them. */
#include "storage/route_graph.h"

#include "runtime/alloc.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* An edge and its input position (so that "the first row wins" holds after sorting). */
typedef struct {
    fs_route_t r; /* first member: a pointer to the edge is a pointer to its route */
    size_t seq;
} edge_t;

struct fs_route_graph {
    edge_t *edges;
    size_t n;
    const fs_route_t **by_origin, **by_dest, **by_airline; /* edge orders */
    char **strings;    /* airline and equipment codes, interned */
    size_t nstrings, capstrings;
    const char **equipment; /* all equipment lists, back to back */
    size_t nequipment;
};

double fs_geo_distance_km(double lat1, double lon1, double lat2, double lon2)
{
    const double r = 6371.0088, rad = M_PI / 180.0;
    double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
    double h = sin(dlat / 2) * sin(dlat / 2) + cos(lat1 * rad) * cos(lat2 * rad) * sin(dlon / 2) * sin(dlon / 2);
    return 2 * r * asin(fmin(1.0, sqrt(h)));
}

/* Interns a short code (linear search is fine: a few hundred airline and aircraft codes,
 * build time only). */
static const char *intern(fs_route_graph_t *g, const char *s, size_t len)
{
    for (size_t i = 0; i < g->nstrings; i++)
        if (strlen(g->strings[i]) == len && strncasecmp(g->strings[i], s, len) == 0)
            return g->strings[i];
    if (g->nstrings == g->capstrings) {
        g->capstrings = g->capstrings ? g->capstrings * 2 : 256;
        g->strings = fs_realloc(g->strings, g->capstrings * sizeof *g->strings);
    }
    char *c = fs_strndup(s, len);
    for (char *p = c; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    return g->strings[g->nstrings++] = c;
}

static size_t count_tokens(const char *s)
{
    size_t n = 0;
    for (size_t i = 0; s && s[i]; i++)
        n += s[i] != ' ' && (i == 0 || s[i - 1] == ' ');
    return n;
}

static int cmp_edge(const fs_route_t *a, const fs_route_t *b, int order)
{
    const char *a1 = order == 1 ? a->destination->iata : order == 2 ? a->airline : a->origin->iata;
    const char *b1 = order == 1 ? b->destination->iata : order == 2 ? b->airline : b->origin->iata;
    const char *a2 = order == 0 ? a->destination->iata : a->origin->iata;
    const char *b2 = order == 0 ? b->destination->iata : b->origin->iata;
    const char *a3 = order == 2 ? a->destination->iata : a->airline;
    const char *b3 = order == 2 ? b->destination->iata : b->airline;
    int c = strcmp(a1, b1);
    if (!c)
        c = strcmp(a2, b2);
    return c ? c : strcmp(a3, b3);
}

static int cmp_origin_seq(const void *a, const void *b)
{
    const edge_t *x = a, *y = b;
    int c = cmp_edge(&x->r, &y->r, 0);
    return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}
static int cmp_ptr_dest(const void *a, const void *b)
{
    return cmp_edge(*(const fs_route_t *const *)a, *(const fs_route_t *const *)b, 1);
}
static int cmp_ptr_airline(const void *a, const void *b)
{
    return cmp_edge(*(const fs_route_t *const *)a, *(const fs_route_t *const *)b, 2);
}

static void set_equipment(fs_route_graph_t *g, fs_route_t *e, const char *s)
{
    e->equipment = g->equipment + g->nequipment;
    for (size_t i = 0; s && s[i];) {
        while (s[i] == ' ')
            i++;
        size_t len = strcspn(s + i, " ");
        if (len > 0)
            g->equipment[g->nequipment++] = intern(g, s + i, len);
        i += len;
    }
    e->n_equipment = (size_t)(g->equipment + g->nequipment - e->equipment);
}

fs_route_graph_t *fs_route_graph_build(const fs_airport_index_t *airports, const fs_route_row_t *rows, size_t n,
                                       size_t *dropped)
{
    fs_route_graph_t *g = FS_NEW(fs_route_graph_t);
    size_t ntok = 0, drop = 0;
    for (size_t i = 0; i < n; i++)
        ntok += count_tokens(rows[i].equipment);
    g->edges = fs_calloc(n ? n : 1, sizeof *g->edges);
    g->equipment = fs_calloc(ntok ? ntok : 1, sizeof *g->equipment);
    for (size_t i = 0; i < n; i++) {
        const fs_airport_t *o = fs_airport_index_lookup(airports, rows[i].origin);
        const fs_airport_t *d = fs_airport_index_lookup(airports, rows[i].destination);
        if (!o || !d || o == d) {
            drop++;
            continue;
        }
        edge_t *e = &g->edges[g->n++];
        const char *al = rows[i].airline ? rows[i].airline : "";
        e->seq = i;
        e->r = (fs_route_t){.origin = o, .destination = d, .airline = intern(g, al, strlen(al)),
                            .stops = rows[i].stops, .codeshare = rows[i].codeshare};
        if (o->has_coords && d->has_coords)
            e->r.distance_km = fs_geo_distance_km(o->latitude, o->longitude, d->latitude, d->longitude);
        set_equipment(g, &e->r, rows[i].equipment);
    }
    if (g->n) /* qsort must not see a NULL base, even for 0 items */
        qsort(g->edges, g->n, sizeof *g->edges, cmp_origin_seq);
    size_t w = 0; /* repeats of (origin, destination, airline): the first row wins */
    for (size_t r = 0; r < g->n; r++) {
        if (w > 0 && cmp_edge(&g->edges[w - 1].r, &g->edges[r].r, 0) == 0) {
            drop++;
            continue;
        }
        g->edges[w++] = g->edges[r];
    }
    g->n = w;
    g->by_origin = fs_malloc((g->n ? g->n : 1) * sizeof *g->by_origin);
    g->by_dest = fs_malloc((g->n ? g->n : 1) * sizeof *g->by_dest);
    g->by_airline = fs_malloc((g->n ? g->n : 1) * sizeof *g->by_airline);
    for (size_t i = 0; i < g->n; i++)
        g->by_origin[i] = g->by_dest[i] = g->by_airline[i] = &g->edges[i].r;
    if (g->n) /* qsort must not see a NULL base, even for 0 items */
        qsort(g->by_dest, g->n, sizeof *g->by_dest, cmp_ptr_dest);
    if (g->n) /* qsort must not see a NULL base, even for 0 items */
        qsort(g->by_airline, g->n, sizeof *g->by_airline, cmp_ptr_airline);
    if (dropped)
        *dropped = drop;
    return g;
}

void fs_route_graph_free(fs_route_graph_t *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->nstrings; i++)
        free(g->strings[i]);
    free(g->strings);
    free(g->equipment);
    free(g->edges);
    free(g->by_origin), free(g->by_dest), free(g->by_airline);
    free(g);
}

size_t fs_route_graph_count(const fs_route_graph_t *g) { return g ? g->n : 0; }

/* Key of an edge in one order: its first (and, for `between`, second) sort field. */
static int key_cmp(const fs_route_t *e, int order, const char *k1, const char *k2)
{
    const char *f1 = order == 1 ? e->destination->iata : order == 2 ? e->airline : e->origin->iata;
    int c = strcasecmp(f1, k1);
    if (c || !k2)
        return c;
    return strcasecmp(e->destination->iata, k2);
}

static fs_route_list_t range(const fs_route_t *const *v, size_t n, int order, const char *k1, const char *k2)
{
    fs_route_list_t out = {v, 0};
    if (!k1)
        return out;
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (key_cmp(v[mid], order, k1, k2) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < n && key_cmp(v[end], order, k1, k2) == 0)
        end++;
    out.items = v + lo;
    out.n = end - lo;
    return out;
}

fs_route_list_t fs_route_graph_from(const fs_route_graph_t *g, const char *origin)
{
    return range(g->by_origin, g->n, 0, origin, NULL);
}

fs_route_list_t fs_route_graph_to(const fs_route_graph_t *g, const char *destination)
{
    return range(g->by_dest, g->n, 1, destination, NULL);
}

fs_route_list_t fs_route_graph_by_airline(const fs_route_graph_t *g, const char *airline)
{
    return range(g->by_airline, g->n, 2, airline, NULL);
}

fs_route_list_t fs_route_graph_between(const fs_route_graph_t *g, const char *origin, const char *destination)
{
    return range(g->by_origin, g->n, 0, origin, destination);
}
