/* Month calendar and flexible search (see inventory.h): many one-way searches, each day's
 * best itineraries copied out before the arena is reset for the next day. */
#include "actors/search/inventory/inventory_int.h"

#include "runtime/alloc.h"

#include <stdlib.h>
#include <string.h>

#define FLEX_MAX_DAYS      93
#define FLEX_MAX_NIGHTS    30
#define FLEX_DEFAULT_LIMIT 10
#define FLEX_MAX_LIMIT     50

/* The best itineraries of one day, with their own copies of the flights. */
typedef struct day_best {
    inv_inst_t inst[INV_ROUND_TRIP_K][3];
    inv_itin_t it[INV_ROUND_TRIP_K];
    size_t n;
} day_best_t;

static void keep(day_best_t *d, const inv_itin_t *v, size_t n)
{
    d->n = n < INV_ROUND_TRIP_K ? n : INV_ROUND_TRIP_K;
    for (size_t i = 0; i < d->n; i++) {
        d->it[i] = v[i];
        for (int k = 0; k < v[i].n; k++) {
            d->inst[i][k] = *v[i].leg[k];
            d->it[i].leg[k] = &d->inst[i][k];
        }
    }
}

/* The best itineraries leaving on `date`; none before today. */
static void best_of_day(inv_ctx_t *c, const inv_side_t *from, const inv_side_t *to, int64_t date,
                        day_best_t *d)
{
    d->n = 0;
    if (date < c->today)
        return;
    inv_itin_t *v;
    size_t n = inv_one_way(c, from, to, date, c->q->direct_only, &v);
    keep(d, v, n);
    inv_arena_reset(&c->arena);
}

/* Cheapest round trip of two days' best lists, cents per passenger; -1 when none. */
static int64_t cheapest_pair(inv_ctx_t *c, const day_best_t *o, const day_best_t *r, inv_pair_t *pair)
{
    inv_pair_t p;
    size_t n = inv_round_trips(c, o->it, o->n, r->it, r->n, 1, &p);
    inv_arena_reset(&c->arena);
    if (!n)
        return -1;
    if (pair)
        *pair = p;
    return p.out->price + p.ret->price;
}

int fs_inventory_calendar(const fs_refdata_t *r, const fs_search_query_t *q,
                          const fs_inventory_rules_t *rules, int year, int month, fs_calendar_day_t days[31])
{
    if (!r || !r->timetable || !q || month < 1 || month > 12 || q->passengers < 1)
        return 0;
    inv_ctx_t c;
    inv_ctx_init(&c, r->timetable, q, rules);
    inv_side_t from, to;
    inv_sides(c.tt, q, &from, &to);
    int nights = q->has_return ? (int)(inv_days(q->return_date) - inv_days(q->departure)) : -1;
    int n = fs_days_in_month(year, month);
    day_best_t *out = fs_malloc(sizeof *out), *ret = fs_malloc(sizeof *ret);
    for (int i = 0; i < n; i++) {
        fs_date_t date = {year, month, i + 1};
        int64_t day = inv_days(date), cents = -1;
        best_of_day(&c, &from, &to, day, out);
        if (nights < 0 && out->n)
            cents = out->it[0].price;
        else if (nights >= 0 && out->n) {
            best_of_day(&c, &to, &from, day + nights, ret);
            cents = cheapest_pair(&c, out, ret, NULL);
        }
        days[i] = (fs_calendar_day_t){.date = date,
                                      .has_price = cents >= 0,
                                      .price = cents >= 0 ? (double)(cents * q->passengers) / 100.0 : 0.0};
        memcpy(days[i].currency, "EUR", 4);
    }
    free(out), free(ret);
    inv_ctx_free(&c);
    return n;
}

typedef struct flex_pick {
    int64_t cents;
    int d, nights;
} flex_pick_t;

static int cmp_pick(const void *a, const void *b)
{
    const flex_pick_t *x = a, *y = b;
    if (x->cents != y->cents)
        return x->cents < y->cents ? -1 : 1;
    if (x->d != y->d)
        return x->d < y->d ? -1 : 1;
    return (x->nights > y->nights) - (x->nights < y->nights);
}

/* Every (departure day, nights) with a round trip, cheapest first. */
static size_t flex_picks(inv_ctx_t *c, const day_best_t *outs, int ndep, const day_best_t *rets, int nmin,
                         int nmax, flex_pick_t *picks)
{
    size_t n = 0;
    for (int d = 0; d < ndep; d++)
        for (int k = nmin; k <= nmax && outs[d].n; k++) {
            int64_t cents = cheapest_pair(c, &outs[d], &rets[d + k - nmin], NULL);
            if (cents >= 0)
                picks[n++] = (flex_pick_t){cents, d, k};
        }
    if (n > 1)
        qsort(picks, n, sizeof *picks, cmp_pick);
    return n;
}

size_t fs_inventory_flexible(const fs_refdata_t *r, const fs_flexible_query_t *fq,
                             const fs_inventory_rules_t *rules, fs_offer_list_t *list)
{
    const fs_search_query_t *q = &fq->base;
    int64_t first = inv_days(fq->from), last = inv_days(fq->to);
    int nmin = fq->nights_min < 0 ? 0 : fq->nights_min, nmax = fq->nights_max;
    if (!r || !r->timetable || q->passengers < 1 || last < first || last - first >= FLEX_MAX_DAYS ||
        nmax < nmin || nmax > FLEX_MAX_NIGHTS)
        return 0;
    int limit = fq->limit <= 0 ? FLEX_DEFAULT_LIMIT : fq->limit > FLEX_MAX_LIMIT ? FLEX_MAX_LIMIT : fq->limit;
    inv_ctx_t c;
    inv_ctx_init(&c, r->timetable, q, rules);
    inv_side_t from, to;
    inv_sides(c.tt, q, &from, &to);
    int ndep = (int)(last - first + 1), nret = ndep + nmax - nmin;
    day_best_t *outs = fs_calloc((size_t)ndep, sizeof *outs), *rets = fs_calloc((size_t)nret, sizeof *rets);
    bool any = false;
    for (int d = 0; d < ndep; d++) {
        best_of_day(&c, &from, &to, first + d, &outs[d]);
        any |= outs[d].n > 0;
    }
    for (int d = 0; d < nret && any; d++)
        best_of_day(&c, &to, &from, first + nmin + d, &rets[d]);
    flex_pick_t *picks = fs_malloc(((size_t)ndep * (size_t)(nmax - nmin + 1)) * sizeof *picks);
    size_t n = any ? flex_picks(&c, outs, ndep, rets, nmin, nmax, picks) : 0;
    n = n < (size_t)limit ? n : (size_t)limit;
    for (size_t i = 0; i < n; i++) {
        inv_pair_t p = {0};
        if (cheapest_pair(&c, &outs[picks[i].d], &rets[picks[i].d + picks[i].nights - nmin], &p) >= 0)
            inv_fill_offer(&c, fs_offer_list_add(list), p.out, p.ret);
    }
    free(picks), free(outs), free(rets);
    inv_ctx_free(&c);
    return n;
}
