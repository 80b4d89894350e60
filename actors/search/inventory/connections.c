/* The one-way search engine of the inventory (see inventory_int.h and docs/INVENTORY.md):
 * dated flights from the weekly timetable, direct, one-stop and two-stop itineraries under
 * the connection rules, then the pruning that keeps the Pareto-best options. */
#include "actors/search/inventory/fares.h"
#include "actors/search/inventory/inventory_int.h"

#include "runtime/alloc.h"
#include "runtime/config.h"
#include "storage/route_graph.h"

#include <stdlib.h>
#include <string.h>

/* ---- arena ------------------------------------------------------------------------------------ */

#define CHUNK_BYTES (64 * 1024)

struct inv_chunk {
    inv_chunk_t *next;
    size_t used, cap;
    max_align_t data[];
};

void *inv_alloc(inv_arena_t *a, size_t size)
{
    size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (!a->head || a->head->cap - a->head->used < size) {
        size_t cap = size > CHUNK_BYTES ? size : CHUNK_BYTES;
        inv_chunk_t *c = fs_malloc(sizeof *c + cap);
        c->used = 0, c->cap = cap, c->next = a->head;
        a->head = c;
    }
    void *p = (char *)a->head->data + a->head->used;
    a->head->used += size;
    return p;
}

void inv_arena_reset(inv_arena_t *a)
{
    while (a->head && a->head->next) {
        inv_chunk_t *next = a->head->next;
        free(a->head);
        a->head = next;
    }
    if (a->head)
        a->head->used = 0;
}

void inv_arena_free(inv_arena_t *a)
{
    inv_arena_reset(a);
    free(a->head);
    a->head = NULL;
}

/* A growable array in the arena (old storage is simply abandoned there). */
typedef struct vec {
    inv_itin_t *items;
    size_t n, cap;
} vec_t;

static inv_itin_t *vec_push(inv_arena_t *a, vec_t *v)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        inv_itin_t *items = inv_alloc(a, cap * sizeof *items);
        if (v->n)
            memcpy(items, v->items, v->n * sizeof *items);
        v->items = items, v->cap = cap;
    }
    return &v->items[v->n++];
}

/* ---- context ---------------------------------------------------------------------------------- */

fs_inventory_rules_t fs_inventory_rules_default(void)
{
    fs_inventory_rules_t r = {45, 90, 600, FS_INVENTORY_MAX_OFFERS};
    if (fs_cfg && fs_cfg->min_connection_minutes > 0) {
        r.mct_min = fs_cfg->min_connection_minutes;
        r.mct_interline_min = fs_cfg->min_connection_interline_minutes;
        r.max_layover_min = fs_cfg->max_layover_minutes;
    }
    return r;
}

void inv_ctx_init(inv_ctx_t *c, const fs_timetable_t *tt, const fs_search_query_t *q,
                  const fs_inventory_rules_t *rules)
{
    memset(c, 0, sizeof *c);
    c->tt = tt, c->q = q;
    c->rules = rules ? *rules : fs_inventory_rules_default();
    if (c->rules.max_offers <= 0 || c->rules.max_offers > FS_INVENTORY_MAX_OFFERS)
        c->rules.max_offers = FS_INVENTORY_MAX_OFFERS;
    if (c->rules.mct_interline_min < c->rules.mct_min)
        c->rules.mct_interline_min = c->rules.mct_min;
    c->today = q->now / 86400 - (q->now % 86400 < 0);
    if (q->n_observed) {
        c->obs = fs_malloc(q->n_observed * sizeof *c->obs); /* outlives arena resets */
        for (size_t i = 0; i < q->n_observed; i++)
            if (q->observed[i].cabin == q->cabin)
                c->obs[c->n_obs++] = &q->observed[i];
    }
}

void inv_ctx_free(inv_ctx_t *c)
{
    inv_arena_free(&c->arena);
    free(c->obs);
    c->obs = NULL;
}

inv_side_t inv_side(const fs_timetable_t *tt, const char (*codes)[4], int n)
{
    inv_side_t s = {.n = 0};
    for (int i = 0; i < n && i < FS_MAX_CITY_AIRPORTS; i++) {
        int ap = fs_timetable_airport(tt, codes[i]);
        bool dup = false;
        for (int k = 0; k < s.n; k++)
            dup |= s.ap[k] == (uint32_t)ap;
        if (ap >= 0 && !dup)
            s.ap[s.n++] = (uint32_t)ap;
    }
    return s;
}

void inv_sides(const fs_timetable_t *tt, const fs_search_query_t *q, inv_side_t *from, inv_side_t *to)
{
    /* A query built by hand may name only `origin` / `destination`: that one airport then. */
    *from = q->n_origin_airports > 0 ? inv_side(tt, q->origin_airports, q->n_origin_airports)
                                     : inv_side(tt, (const char(*)[4])q->origin, 1);
    *to = q->n_destination_airports > 0 ? inv_side(tt, q->destination_airports, q->n_destination_airports)
                                        : inv_side(tt, (const char(*)[4])q->destination, 1);
}

static bool side_has(const inv_side_t *s, uint32_t ap)
{
    for (int i = 0; i < s->n; i++)
        if (s->ap[i] == ap)
            return true;
    return false;
}

/* ---- dated flights ---------------------------------------------------------------------------- */

static void observe(const inv_ctx_t *c, inv_inst_t *f)
{
    const fs_tt_airport_t *ap = c->tt->airports;
    const char *carrier = c->tt->carriers[f->svc->carrier].code;
    const fs_observed_fare_t *best = NULL;
    for (size_t i = 0; i < c->n_obs; i++) {
        const fs_observed_fare_t *o = c->obs[i];
        if (fs_date_to_days(o->date) == f->date && strcmp(o->carrier, carrier) == 0 &&
            strcmp(o->origin, ap[f->svc->from].airport->iata) == 0 &&
            strcmp(o->destination, ap[f->svc->to].airport->iata) == 0 &&
            (!best || o->observed_at > best->observed_at))
            best = o;
    }
    if (best) {
        f->observed = true, f->observed_at = best->observed_at;
        f->fare = f->fare_through = (int32_t)fs_fare_to_cents(best->price);
    }
}

static void price(const inv_ctx_t *c, inv_inst_t *f)
{
    if (f->priced)
        return;
    f->priced = true, f->observed = false, f->observed_at = 0;
    const fs_tt_carrier_t *k = &c->tt->carriers[f->svc->carrier];
    fs_fare_input_t in = {.distance_km = f->svc->distance_km,
                          .low_cost = k->low_cost,
                          .cabin = c->q->cabin,
                          .days_ahead = (int)(f->date - c->today),
                          .date_days = f->date,
                          .flight_number = f->flight};
    double euro = fs_fare_euro(&in);
    f->fare = (int32_t)fs_fare_to_cents(euro);
    f->fare_through = (int32_t)fs_fare_to_cents(euro * FS_FARE_THROUGH_FACTOR);
    if (c->n_obs)
        observe(c, f);
}

static void flight_number(char out[8], const char *carrier, unsigned number)
{
    size_t n = strlen(carrier);
    memcpy(out, carrier, n);
    char digits[6];
    int k = 0;
    do
        digits[k++] = (char)('0' + number % 10);
    while ((number /= 10) && k < 4);
    while (k)
        out[n++] = digits[--k];
    out[n] = '\0';
}

/* Appends to `out` the flights of service `s` leaving on local dates lo..hi (days) that have
 * not left by q->now. Returns how many. `out` has room for (hi - lo + 1) * s->n_dep. */
static size_t expand(const inv_ctx_t *c, const fs_tt_service_t *s, int64_t lo, int64_t hi, inv_inst_t *out)
{
    const fs_tt_airport_t *from = &c->tt->airports[s->from];
    const char *carrier = c->tt->carriers[s->carrier].code;
    size_t n = 0;
    for (int64_t day = lo; day <= hi; day++) {
        if (!(s->days & (1u << (((day % 7) + 7 + 3) % 7)))) /* 1970-01-01 was a Thursday */
            continue;
        /* One offset for the whole day unless the zone changes that day. */
        int64_t midnight = day * 86400;
        int off = fs_tz_offset(from->tz, midnight - 86400);
        bool steady = fs_tz_offset(from->tz, midnight + 2 * 86400) == off;
        for (uint8_t i = 0; i < s->n_dep; i++) {
            const fs_tt_departure_t *d = &c->tt->departures[s->first_dep + i];
            int64_t local = midnight + d->dep_min * 60;
            int64_t dep = steady ? local - off : fs_tz_local_to_utc(from->tz, local);
            if (dep < c->q->now)
                continue;
            inv_inst_t *f = &out[n++];
            f->svc = s, f->dep = d, f->dep_utc = dep, f->arr_utc = dep + d->block_min * 60;
            f->dep_off = (int32_t)(local - dep);
            f->date = (int32_t)day, f->sid = (uint32_t)(s - c->tt->services);
            f->priced = false; /* priced when an itinerary uses it: most flights looked at are not */
            flight_number(f->flight, carrier, d->number);
        }
    }
    return n;
}

/* Flights of the services run[0..ns) (expand_run) or services ids[0..ns) (expand_ids) on
 * local dates lo..hi, in an array of the arena. */
static size_t expand_run(inv_ctx_t *c, const fs_tt_service_t *run, size_t ns, int64_t lo, int64_t hi,
                         inv_inst_t **out)
{
    size_t cap = 0;
    for (size_t i = 0; i < ns; i++)
        cap += (size_t)(hi - lo + 1) * run[i].n_dep;
    *out = inv_alloc(&c->arena, (cap ? cap : 1) * sizeof **out);
    size_t n = 0;
    for (size_t i = 0; i < ns; i++)
        n += expand(c, &run[i], lo, hi, *out + n);
    return n;
}

static size_t expand_ids(inv_ctx_t *c, const uint32_t *ids, size_t ns, int64_t lo, int64_t hi,
                         inv_inst_t **out)
{
    size_t cap = 0;
    for (size_t i = 0; i < ns; i++)
        cap += (size_t)(hi - lo + 1) * c->tt->services[ids[i]].n_dep;
    *out = inv_alloc(&c->arena, (cap ? cap : 1) * sizeof **out);
    size_t n = 0;
    for (size_t i = 0; i < ns; i++)
        n += expand(c, &c->tt->services[ids[i]], lo, hi, *out + n);
    return n;
}

static int cmp_inst_dep(const void *a, const void *b)
{
    const inv_inst_t *x = a, *y = b;
    if (x->dep_utc != y->dep_utc)
        return x->dep_utc < y->dep_utc ? -1 : 1;
    if (x->sid != y->sid)
        return x->sid < y->sid ? -1 : 1;
    return (x->dep > y->dep) - (x->dep < y->dep);
}

static void sort_insts(inv_inst_t *v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_inst_dep);
}

/* First flight of v[0..n) (sorted by departure) leaving at or after t. */
static size_t first_after(const inv_inst_t *v, size_t n, int64_t t)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (v[mid].dep_utc < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int64_t floor_day(int64_t t)
{
    return t / 86400 - (t % 86400 < 0);
}

/* Local dates at airport `ap` spanned by the UTC window [t0, t1]. */
static void local_days(const inv_ctx_t *c, uint32_t ap, int64_t t0, int64_t t1, int64_t *lo, int64_t *hi)
{
    const fs_tz_t *z = c->tt->airports[ap].tz;
    *lo = floor_day(t0 + fs_tz_offset(z, t0));
    *hi = floor_day(t1 + fs_tz_offset(z, t1));
}

/* ---- itineraries ------------------------------------------------------------------------------ */

static bool same_ticket(const inv_ctx_t *c, const inv_inst_t *a, const inv_inst_t *b)
{
    const fs_tt_carrier_t *x = &c->tt->carriers[a->svc->carrier], *y = &c->tt->carriers[b->svc->carrier];
    return a->svc->carrier == b->svc->carrier || (x->alliance && x->alliance == y->alliance);
}

static int connect_minutes(const inv_ctx_t *c, const inv_inst_t *a, const inv_inst_t *b)
{
    return a->svc->carrier == b->svc->carrier ? c->rules.mct_min : c->rules.mct_interline_min;
}

static bool connects(const inv_ctx_t *c, const inv_inst_t *a, const inv_inst_t *b)
{
    int64_t wait = b->dep_utc - a->arr_utc;
    return wait >= connect_minutes(c, a, b) * 60 && wait <= c->rules.max_layover_min * 60;
}

static void make_itin(const inv_ctx_t *c, inv_itin_t *it, inv_inst_t *const *legs, int n)
{
    it->n = (uint8_t)n;
    it->through = true;
    for (int i = 0; i < n; i++) {
        price(c, legs[i]);
        it->leg[i] = legs[i];
        if (i > 0 && !same_ticket(c, legs[0], legs[i]))
            it->through = false;
    }
    it->price = 0;
    for (int i = 0; i < n; i++)
        it->price += n > 1 && it->through ? legs[i]->fare_through : legs[i]->fare;
    it->dep = legs[0]->dep_utc, it->arr = legs[n - 1]->arr_utc;
}

static int cmp_i64(int64_t a, int64_t b)
{
    return (a > b) - (a < b);
}

static int cmp_legs(const inv_itin_t *a, const inv_itin_t *b)
{
    for (int i = 0; i < a->n && i < b->n; i++) {
        int c = cmp_inst_dep(a->leg[i], b->leg[i]);
        if (c)
            return c;
    }
    return (a->n > b->n) - (a->n < b->n);
}

int inv_itin_cmp(const inv_itin_t *a, const inv_itin_t *b)
{
    int c = cmp_i64(a->price, b->price);
    if (!c)
        c = cmp_i64(a->arr - a->dep, b->arr - b->dep);
    if (!c)
        c = (a->n > b->n) - (a->n < b->n);
    return c ? c : cmp_legs(a, b);
}

static int cmp_itin(const void *a, const void *b)
{
    return inv_itin_cmp(a, b);
}

/* By arrival, then price: the order of the onward-option Pareto sweep. */
static int cmp_arrival(const void *a, const void *b)
{
    const inv_itin_t *x = a, *y = b;
    int c = cmp_i64(x->arr, y->arr);
    if (!c)
        c = cmp_i64(x->price, y->price);
    return c ? c : cmp_legs(x, y);
}

/* Keeps, of the options v[0..n) sorted by arrival, the Pareto front on (arrival, price): an
 * option stays only if it is cheaper than every earlier-arriving one. Of a front longer than
 * INV_KEEP_PER_FLIGHT it keeps the fastest, the cheapest and ones evenly between. */
static void keep_front(inv_ctx_t *c, inv_itin_t *v, size_t n, vec_t *out)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (m == 0 || v[i].price < v[m - 1].price)
            v[m++] = v[i];
    for (size_t k = 0; k < m && k < INV_KEEP_PER_FLIGHT; k++) {
        size_t pick = m <= INV_KEEP_PER_FLIGHT ? k : k * (m - 1) / (INV_KEEP_PER_FLIGHT - 1);
        *vec_push(&c->arena, out) = v[pick];
    }
}

static void keep_options(inv_ctx_t *c, inv_itin_t *opts, size_t n, vec_t *out)
{
    if (n > 1)
        qsort(opts, n, sizeof *opts, cmp_arrival);
    keep_front(c, opts, n, out);
}

/* ---- direct and one stop ---------------------------------------------------------------------- */

static double great_circle(const inv_ctx_t *c, uint32_t a, uint32_t b)
{
    const fs_tt_airport_t *x = &c->tt->airports[a], *y = &c->tt->airports[b];
    return fs_geo_distance_km(x->lat, x->lon, y->lat, y->lon);
}

static void direct(inv_ctx_t *c, uint32_t o, uint32_t d, int64_t date, vec_t *out)
{
    size_t ns;
    const fs_tt_service_t *run = fs_timetable_between(c->tt, o, d, &ns);
    inv_inst_t *f;
    size_t n = expand_run(c, run, ns, date, date, &f);
    for (size_t i = 0; i < n; i++) {
        inv_inst_t *leg = &f[i];
        make_itin(c, vec_push(&c->arena, out), &leg, 1);
    }
}

static int64_t earliest_arrival(const inv_inst_t *v, size_t n, int64_t *latest)
{
    int64_t lo = v[0].arr_utc, hi = v[0].arr_utc;
    for (size_t i = 1; i < n; i++) {
        lo = v[i].arr_utc < lo ? v[i].arr_utc : lo;
        hi = v[i].arr_utc > hi ? v[i].arr_utc : hi;
    }
    *latest = hi;
    return lo;
}

/* Flights of services `ids` (all from one airport) that can follow any of arrivals[0..n),
 * sorted by departure. */
static size_t onward(inv_ctx_t *c, uint32_t at, const uint32_t *ids, size_t ns, const inv_inst_t *arrivals,
                     size_t n, inv_inst_t **out)
{
    int64_t last, first = earliest_arrival(arrivals, n, &last), lo, hi;
    local_days(c, at, first + c->rules.mct_min * 60, last + c->rules.max_layover_min * 60, &lo, &hi);
    size_t m = expand_ids(c, ids, ns, lo, hi, out);
    sort_insts(*out, m);
    return m;
}

static size_t onward_run(inv_ctx_t *c, uint32_t at, const fs_tt_service_t *run, size_t ns,
                         const inv_inst_t *arrivals, size_t n, inv_inst_t **out)
{
    int64_t last, first = earliest_arrival(arrivals, n, &last), lo, hi;
    local_days(c, at, first + c->rules.mct_min * 60, last + c->rules.max_layover_min * 60, &lo, &hi);
    size_t m = expand_run(c, run, ns, lo, hi, out);
    sort_insts(*out, m);
    return m;
}

/* Scratch for the options of one first flight. */
typedef struct opts {
    inv_itin_t *v;
    size_t n, cap;
} opts_t;

static inv_itin_t *opt_push(inv_ctx_t *c, opts_t *o)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? o->cap * 2 : 32;
        inv_itin_t *v = inv_alloc(&c->arena, cap * sizeof *v);
        if (o->n)
            memcpy(v, o->v, o->n * sizeof *v);
        o->v = v, o->cap = cap;
    }
    return &o->v[o->n++];
}

/* One-stop itineraries o -> x -> d: `first` are the flights o -> x of the day, `ids` the
 * services x -> d. */
static void via(inv_ctx_t *c, uint32_t x, inv_inst_t *first, size_t n1, const uint32_t *ids, size_t ns,
                vec_t *out)
{
    inv_inst_t *second;
    size_t n2 = onward(c, x, ids, ns, first, n1, &second);
    opts_t o = {0};
    for (size_t i = 0; i < n1; i++) {
        inv_inst_t *a = &first[i];
        o.n = 0;
        for (size_t j = first_after(second, n2, a->arr_utc + c->rules.mct_min * 60);
             j < n2 && second[j].dep_utc <= a->arr_utc + c->rules.max_layover_min * 60; j++) {
            if (!connects(c, a, &second[j]))
                continue;
            inv_inst_t *legs[2] = {a, &second[j]};
            make_itin(c, opt_push(c, &o), legs, 2);
        }
        keep_options(c, o.v, o.n, out);
    }
}

/* One-stop itineraries o -> x -> d leaving on `date`: the hubs x are found by merging o's
 * departures (by destination) with d's arrivals (by origin), both in airport order. */
static void one_stop(inv_ctx_t *c, uint32_t o, uint32_t d, const inv_side_t *from, const inv_side_t *to,
                     int64_t date, vec_t *out)
{
    const fs_timetable_t *tt = c->tt;
    const fs_tt_airport_t *ao = &tt->airports[o], *ad = &tt->airports[d];
    double bound = INV_DETOUR_FACTOR * great_circle(c, o, d) + INV_DETOUR_KM;
    const fs_tt_service_t *outs = &tt->services[ao->out_first];
    const uint32_t *ins = &tt->in_index[ad->in_first];
    size_t i = 0, j = 0;
    while (i < ao->out_n && j < ad->in_n) { /* merge: hubs x both reached from o and leaving for d */
        uint32_t xi = outs[i].to, xj = tt->services[ins[j]].from;
        if (xi != xj) {
            xi < xj ? i++ : j++;
            continue;
        }
        size_t ie = i, je = j;
        while (ie < ao->out_n && outs[ie].to == xi)
            ie++;
        while (je < ad->in_n && tt->services[ins[je]].from == xi)
            je++;
        if (!side_has(from, xi) && !side_has(to, xi) &&
            outs[i].distance_km + tt->services[ins[j]].distance_km <= bound) {
            inv_inst_t *first;
            size_t n1 = expand_run(c, &outs[i], ie - i, date, date, &first);
            if (n1)
                via(c, xi, first, n1, &ins[j], je - j, out);
        }
        i = ie, j = je;
    }
}

/* ---- two stops -------------------------------------------------------------------------------- */

/* o -> x -> y -> d for one (x, y): `first` the flights o -> x, `mid` the services x -> y,
 * `last` the services y -> d. */
static void via2(inv_ctx_t *c, uint32_t x, uint32_t y, inv_inst_t *first, size_t n1,
                 const fs_tt_service_t *mid, size_t nm, const uint32_t *last, size_t nl, vec_t *out)
{
    inv_inst_t *second, *third;
    size_t n2 = onward_run(c, x, mid, nm, first, n1, &second);
    if (!n2)
        return;
    size_t n3 = onward(c, y, last, nl, second, n2, &third);
    opts_t o = {0};
    int64_t lay = c->rules.max_layover_min * 60;
    for (size_t i = 0; i < n1; i++) {
        inv_inst_t *a = &first[i];
        o.n = 0;
        for (size_t j = first_after(second, n2, a->arr_utc + c->rules.mct_min * 60);
             j < n2 && second[j].dep_utc <= a->arr_utc + lay; j++) {
            inv_inst_t *b = &second[j];
            if (!connects(c, a, b))
                continue;
            for (size_t k = first_after(third, n3, b->arr_utc + c->rules.mct_min * 60);
                 k < n3 && third[k].dep_utc <= b->arr_utc + lay; k++) {
                if (!connects(c, b, &third[k]))
                    continue;
                inv_inst_t *legs[3] = {a, b, &third[k]};
                make_itin(c, opt_push(c, &o), legs, 3);
            }
        }
        keep_options(c, o.v, o.n, out);
    }
}

static void two_stop(inv_ctx_t *c, uint32_t o, uint32_t d, const inv_side_t *from, const inv_side_t *to,
                     int64_t date, vec_t *out)
{
    const fs_timetable_t *tt = c->tt;
    const fs_tt_airport_t *ao = &tt->airports[o], *ad = &tt->airports[d];
    double bound = INV_DETOUR_FACTOR * great_circle(c, o, d) + INV_DETOUR_KM;
    const uint32_t *ins = &tt->in_index[ad->in_first];
    for (size_t i = ao->out_first, ie; i < ao->out_first + ao->out_n; i = ie) {
        uint32_t x = tt->services[i].to;
        for (ie = i; ie < ao->out_first + ao->out_n && tt->services[ie].to == x;)
            ie++;
        double d1 = tt->services[i].distance_km;
        if (side_has(from, x) || side_has(to, x) || d1 + great_circle(c, x, d) > bound)
            continue;
        inv_inst_t *first = NULL;
        size_t n1 = 0;
        const fs_tt_airport_t *ax = &tt->airports[x];
        size_t k = ax->out_first, l = 0; /* merge out(x) by destination with in(d) by origin */
        while (k < ax->out_first + ax->out_n && l < ad->in_n) {
            uint32_t yk = tt->services[k].to, yl = tt->services[ins[l]].from;
            if (yk != yl) {
                yk < yl ? k++ : l++;
                continue;
            }
            size_t ke = k, le = l;
            while (ke < ax->out_first + ax->out_n && tt->services[ke].to == yk)
                ke++;
            while (le < ad->in_n && tt->services[ins[le]].from == yk)
                le++;
            if (yk != o && !side_has(from, yk) && !side_has(to, yk) &&
                d1 + tt->services[k].distance_km + tt->services[ins[l]].distance_km <= bound) {
                if (!first)
                    n1 = expand_run(c, &tt->services[i], ie - i, date, date, &first);
                if (n1)
                    via2(c, x, yk, first, n1, &tt->services[k], ke - k, &ins[l], le - l, out);
            }
            k = ke, l = le;
        }
    }
}

/* ---- pruning and selection -------------------------------------------------------------------- */

/* By last flight, then duration, then price: groups the itineraries that end on one flight. */
static int cmp_last_flight(const void *a, const void *b)
{
    const inv_itin_t *x = a, *y = b;
    int c = (x->n == 1) - (y->n == 1); /* directs last: they are never pruned here */
    if (!c)
        c = cmp_inst_dep(x->leg[x->n - 1], y->leg[y->n - 1]);
    if (!c)
        c = cmp_i64(x->arr - x->dep, y->arr - y->dep);
    if (!c)
        c = cmp_i64(x->price, y->price);
    return c ? c : cmp_legs(x, y);
}

/* Of connections ending on the same flight, keeps the Pareto front on (duration, price): a
 * later first flight (shorter trip) stays only if it is cheaper too. */
static void prune_by_last_flight(inv_ctx_t *c, vec_t *v)
{
    if (v->n < 2)
        return;
    qsort(v->items, v->n, sizeof *v->items, cmp_last_flight);
    vec_t kept = {0};
    for (size_t i = 0, e; i < v->n; i = e) {
        const inv_inst_t *last = v->items[i].leg[v->items[i].n - 1];
        for (e = i + 1; e < v->n && v->items[i].n > 1 && v->items[e].n > 1 &&
                        cmp_inst_dep(v->items[e].leg[v->items[e].n - 1], last) == 0;)
            e++;
        if (v->items[i].n == 1) {
            *vec_push(&c->arena, &kept) = v->items[i];
            continue;
        }
        keep_front(c, &v->items[i], e - i, &kept);
    }
    *v = kept;
}

/* Drops an itinerary when one with fewer stops costs no more and takes no longer; then keeps
 * the global Pareto front on (price, duration, stops) and fills up to max_offers with the
 * cheapest of the rest. Leaves v sorted best first. */
static void select_best(inv_ctx_t *c, vec_t *v)
{
    if (v->n == 0)
        return;
    qsort(v->items, v->n, sizeof *v->items, cmp_itin);
    int64_t best[4] = {INT64_MAX, INT64_MAX, INT64_MAX, INT64_MAX}; /* shortest so far, by legs */
    bool *front = inv_alloc(&c->arena, v->n * sizeof *front);
    size_t w = 0, n_front = 0;
    for (size_t i = 0; i < v->n; i++) {
        inv_itin_t it = v->items[i];
        int64_t dur = it.arr - it.dep, fewer = INT64_MAX, same_or_fewer;
        for (int k = 1; k < it.n; k++)
            fewer = best[k] < fewer ? best[k] : fewer;
        if (fewer <= dur)
            continue; /* dominated by an itinerary with fewer stops */
        same_or_fewer = fewer < best[it.n] ? fewer : best[it.n];
        front[w] = dur < same_or_fewer;
        n_front += front[w];
        best[it.n] = dur < best[it.n] ? dur : best[it.n];
        v->items[w++] = it;
    }
    v->n = w;
    size_t cap = (size_t)c->rules.max_offers, out = 0, fronts = 0, rest = cap > n_front ? cap - n_front : 0;
    for (size_t i = 0; i < v->n && out < cap; i++) { /* in order: the result stays sorted */
        bool keep = front[i] ? fronts++ < cap : rest > 0;
        if (keep && !front[i])
            rest--;
        if (keep)
            v->items[out++] = v->items[i];
    }
    v->n = out;
}

size_t inv_one_way(inv_ctx_t *c, const inv_side_t *from, const inv_side_t *to, int64_t date, bool direct_only,
                   inv_itin_t **out)
{
    vec_t v = {0};
    for (int i = 0; i < from->n; i++)
        for (int j = 0; j < to->n; j++)
            if (from->ap[i] != to->ap[j])
                direct(c, from->ap[i], to->ap[j], date, &v);
    if (!direct_only) {
        for (int i = 0; i < from->n; i++)
            for (int j = 0; j < to->n; j++)
                if (from->ap[i] != to->ap[j])
                    one_stop(c, from->ap[i], to->ap[j], from, to, date, &v);
        prune_by_last_flight(c, &v);
        if (v.n < INV_TWO_STOP_BELOW) {
            for (int i = 0; i < from->n; i++)
                for (int j = 0; j < to->n; j++)
                    if (from->ap[i] != to->ap[j])
                        two_stop(c, from->ap[i], to->ap[j], from, to, date, &v);
            prune_by_last_flight(c, &v); /* idempotent on what it already pruned */
        }
    }
    select_best(c, &v);
    *out = v.items;
    return v.n;
}
