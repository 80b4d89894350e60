/* Offers from inventory itineraries: one-way and round-trip searches (see inventory.h). */
#include "actors/search/inventory/inventory_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fill_segment(const inv_ctx_t *c, fs_segment_t *s, const inv_inst_t *f)
{
    const fs_timetable_t *tt = c->tt;
    memcpy(s->from, tt->airports[f->svc->from].airport->iata, 4);
    memcpy(s->to, tt->airports[f->svc->to].airport->iata, 4);
    s->dep_utc = f->dep_utc, s->arr_utc = f->arr_utc;
    s->dep_offset_min = f->dep_off / 60;
    s->arr_offset_min = fs_timetable_offset(tt, f->svc->to, f->arr_utc) / 60;
    memcpy(s->carrier, tt->carriers[f->svc->carrier].code, 4);
    memcpy(s->flight_number, f->flight, sizeof f->flight);
    memcpy(s->aircraft, tt->aircraft[f->dep->aircraft], 4);
    s->duration_min = f->dep->block_min;
}

static uint64_t hash_legs(uint64_t h, const inv_itin_t *it)
{
    for (int i = 0; it && i < it->n; i++) {
        h = fs_tt_hash(h, it->leg[i]->flight, strlen(it->leg[i]->flight));
        unsigned char t[8];
        for (int k = 0; k < 8; k++)
            t[k] = (unsigned char)((uint64_t)it->leg[i]->dep_utc >> (8 * k));
        h = fs_tt_hash(h, t, sizeof t);
    }
    return h;
}

/* Observed when every leg is; *oldest gets the oldest observation. */
static bool all_observed(const inv_itin_t *it, int64_t *oldest)
{
    for (int i = 0; it && i < it->n; i++) {
        if (!it->leg[i]->observed)
            return false;
        if (*oldest == 0 || it->leg[i]->observed_at < *oldest)
            *oldest = it->leg[i]->observed_at;
    }
    return true;
}

void inv_fill_offer(const inv_ctx_t *c, fs_offer_t *o, const inv_itin_t *out, const inv_itin_t *ret)
{
    for (int i = 0; i < out->n; i++)
        fill_segment(c, &o->out[i], out->leg[i]);
    o->n_out = out->n;
    for (int i = 0; ret && i < ret->n; i++)
        fill_segment(c, &o->ret[i], ret->leg[i]);
    o->n_ret = ret ? ret->n : 0;
    int64_t cents = (out->price + (ret ? ret->price : 0)) * c->q->passengers;
    o->price = (double)cents / 100.0;
    memcpy(o->currency, "EUR", 4);
    snprintf(o->cabin, sizeof o->cabin, "%s", fs_cabin_name(c->q->cabin));
    snprintf(o->id, sizeof o->id, "inventory-%016llx",
             (unsigned long long)hash_legs(hash_legs(FS_TT_HASH_SEED, out), ret));
    int64_t oldest = 0;
    bool observed = all_observed(out, &oldest) && all_observed(ret, &oldest);
    snprintf(o->source, sizeof o->source, "%s", observed ? "observed" : "inventory");
    o->priced_at = observed ? oldest : c->q->now;
    o->virtual_interlining = !out->through || (ret && !ret->through);
    fs_offer_finish(o);
}

int64_t inv_days(fs_date_t d)
{
    return fs_date_to_days(d);
}

/* A return may leave the day the outbound lands: it must then leave a connection time later. */
bool inv_round_trip_ok(const inv_ctx_t *c, const inv_itin_t *out, const inv_itin_t *ret)
{
    return ret->dep >= out->arr + (int64_t)c->rules.mct_min * 60;
}

typedef struct pair {
    const inv_itin_t *out, *ret;
    int64_t price, duration;
    int oi, ri;
} pair_t;

static int cmp_pair(const void *a, const void *b)
{
    const pair_t *x = a, *y = b;
    if (x->price != y->price)
        return x->price < y->price ? -1 : 1;
    if (x->duration != y->duration)
        return x->duration < y->duration ? -1 : 1;
    if (x->oi != y->oi)
        return x->oi < y->oi ? -1 : 1;
    return (x->ri > y->ri) - (x->ri < y->ri);
}

size_t inv_round_trips(inv_ctx_t *c, const inv_itin_t *outs, size_t no, const inv_itin_t *rets, size_t nr,
                       size_t limit, inv_pair_t *pairs)
{
    size_t ko = no < INV_ROUND_TRIP_K ? no : INV_ROUND_TRIP_K,
           kr = nr < INV_ROUND_TRIP_K ? nr : INV_ROUND_TRIP_K;
    pair_t *p = inv_alloc(&c->arena, (ko * kr + 1) * sizeof *p);
    size_t n = 0;
    for (size_t i = 0; i < ko; i++)
        for (size_t j = 0; j < kr; j++)
            if (inv_round_trip_ok(c, &outs[i], &rets[j]))
                p[n++] = (pair_t){&outs[i],
                                  &rets[j],
                                  outs[i].price + rets[j].price,
                                  (outs[i].arr - outs[i].dep) + (rets[j].arr - rets[j].dep),
                                  (int)i,
                                  (int)j};
    if (n > 1)
        qsort(p, n, sizeof *p, cmp_pair);
    n = n < limit ? n : limit;
    for (size_t i = 0; i < n; i++)
        pairs[i] = (inv_pair_t){p[i].out, p[i].ret};
    return n;
}

size_t fs_inventory_search(const fs_refdata_t *r, const fs_search_query_t *q,
                           const fs_inventory_rules_t *rules, fs_offer_list_t *out)
{
    if (!r || !r->timetable || !q || q->passengers < 1)
        return 0;
    inv_ctx_t c;
    inv_ctx_init(&c, r->timetable, q, rules);
    inv_side_t from, to;
    inv_sides(c.tt, q, &from, &to);
    inv_itin_t *outs, *rets;
    size_t no = inv_one_way(&c, &from, &to, inv_days(q->departure), q->direct_only, &outs), n = 0;
    if (!q->has_return) {
        for (; n < no; n++)
            inv_fill_offer(&c, fs_offer_list_add(out), &outs[n], NULL);
    } else if (no) {
        size_t nr = inv_one_way(&c, &to, &from, inv_days(q->return_date), q->direct_only, &rets);
        inv_pair_t *pairs = inv_alloc(&c.arena, (size_t)c.rules.max_offers * sizeof *pairs);
        n = inv_round_trips(&c, outs, no, rets, nr, (size_t)c.rules.max_offers, pairs);
        for (size_t i = 0; i < n; i++)
            inv_fill_offer(&c, fs_offer_list_add(out), pairs[i].out, pairs[i].ret);
    }
    inv_ctx_free(&c);
    return n;
}
