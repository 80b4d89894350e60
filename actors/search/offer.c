#include "actors/search/offer.h"

#include "runtime/alloc.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- cabins ---------------------------------------------------------------------------------- */

static const char *const cabin_names[] = {"economy", "premium_economy", "business", "first"};

const char *fs_cabin_name(fs_cabin_t c)
{
    return (unsigned)c < 4 ? cabin_names[c] : "economy";
}

bool fs_cabin_parse(const char *s, fs_cabin_t *out)
{
    for (int i = 0; s && i < 4; i++)
        if (strcasecmp(s, cabin_names[i]) == 0) {
            *out = (fs_cabin_t)i;
            return true;
        }
    return false;
}

/* ---- lists ----------------------------------------------------------------------------------- */

fs_offer_t *fs_offer_list_add(fs_offer_list_t *l)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->items = fs_realloc(l->items, l->cap * sizeof *l->items);
    }
    fs_offer_t *o = &l->items[l->n++];
    memset(o, 0, sizeof *o);
    return o;
}

void fs_offer_list_extend(fs_offer_list_t *l, const fs_offer_list_t *src)
{
    for (size_t i = 0; src && i < src->n; i++)
        *fs_offer_list_add(l) = src->items[i];
}

void fs_offer_list_clear(fs_offer_list_t *l)
{
    free(l->items);
    memset(l, 0, sizeof *l);
}

fs_offer_list_t *fs_offer_list_new(void)
{
    return fs_calloc(1, sizeof(fs_offer_list_t));
}

void fs_offer_list_free(fs_offer_list_t *l)
{
    if (!l)
        return;
    fs_offer_list_clear(l);
    free(l);
}

static int elapsed_min(const fs_segment_t *s, int n)
{
    return n > 0 ? (int)((s[n - 1].arr_utc - s[0].dep_utc) / 60) : 0;
}

void fs_offer_finish(fs_offer_t *o)
{
    o->stops = o->n_out > 0 ? o->n_out - 1 : 0;
    o->total_duration_min = elapsed_min(o->out, o->n_out) + elapsed_min(o->ret, o->n_ret);
    if (o->n_out > 0)
        memcpy(o->airline, o->out[0].carrier, sizeof o->airline);
    if (!o->currency[0])
        memcpy(o->currency, "EUR", 4);
}

/* Local wall-clock time of a segment end, "YYYY-MM-DDTHH:MM:SS". */
static void local_iso(int64_t utc, int offset_min, char out[20])
{
    int64_t t = utc + (int64_t)offset_min * 60;
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t sec = t - days * 86400;
    fs_date_t d = fs_date_from_days(days);
    char tmp[80];
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d", d.y, d.m, d.d, (int)(sec / 3600),
             (int)(sec / 60 % 60), (int)(sec % 60));
    memcpy(out, tmp, 19);
    out[19] = '\0';
}

static size_t sig_append(char *out, size_t cap, size_t at, const char *s)
{
    size_t n = strlen(s);
    if (at < cap) {
        size_t room = cap - 1 - at;
        memcpy(out + at, s, n < room ? n : room);
        out[at + (n < room ? n : room)] = '\0';
    }
    return at + n;
}

size_t fs_offer_signature(const fs_offer_t *o, char *out, size_t cap)
{
    if (cap == 0)
        return 0;
    out[0] = '\0';
    size_t at = sig_append(out, cap, 0, o->airline);
    const fs_segment_t *dirs[2] = {o->out, o->ret};
    int counts[2] = {o->n_out, o->n_ret};
    for (int d = 0; d < 2; d++)
        for (int i = 0; i < counts[d]; i++) {
            char iso[20], part[48];
            local_iso(dirs[d][i].dep_utc, dirs[d][i].dep_offset_min, iso);
            snprintf(part, sizeof part, "|%s-%s", dirs[d][i].flight_number, iso);
            at = sig_append(out, cap, at, part);
        }
    return at < cap ? at : cap - 1;
}

static int by_price(const void *a, const void *b)
{
    const fs_offer_t *x = a, *y = b;
    return (x->price > y->price) - (x->price < y->price);
}

void fs_offer_list_sort_by_price(fs_offer_list_t *l)
{
    /* Insertion sort into a copy would be O(n^2); a merge sort keeps equal prices in order. */
    if (l->n < 2)
        return;
    fs_offer_t *tmp = fs_malloc(l->n * sizeof *tmp);
    for (size_t width = 1; width < l->n; width *= 2) {
        for (size_t lo = 0; lo < l->n; lo += 2 * width) {
            size_t mid = lo + width < l->n ? lo + width : l->n;
            size_t hi = lo + 2 * width < l->n ? lo + 2 * width : l->n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                tmp[k++] = by_price(&l->items[j], &l->items[i]) < 0 ? l->items[j++] : l->items[i++];
            while (i < mid)
                tmp[k++] = l->items[i++];
            while (j < hi)
                tmp[k++] = l->items[j++];
        }
        memcpy(l->items, tmp, l->n * sizeof *tmp);
    }
    free(tmp);
}

void fs_offer_list_keep_direct(fs_offer_list_t *l)
{
    size_t kept = 0;
    for (size_t i = 0; i < l->n; i++)
        if (l->items[i].n_out == 1 && l->items[i].n_ret <= 1)
            l->items[kept++] = l->items[i];
    l->n = kept;
}

/* ---- JSON ------------------------------------------------------------------------------------ */

typedef struct {
    char *p;
    size_t len, cap;
} sbuf_t;

static void sb_reserve(sbuf_t *b, size_t more)
{
    if (b->len + more + 1 > b->cap) {
        while (b->len + more + 1 > b->cap)
            b->cap = b->cap ? b->cap * 2 : 4096;
        b->p = fs_realloc(b->p, b->cap);
    }
}

static void sb_put(sbuf_t *b, const char *s, size_t n)
{
    sb_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    sb_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* A JSON string of arbitrary text (escaped by jansson), or null when empty. */
static void sb_string_or_null(sbuf_t *b, const char *s)
{
    if (!s || !*s) {
        sb_put(b, "null", 4);
        return;
    }
    json_t *j = json_string(s);
    char *text = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    if (text)
        sb_put(b, text, strlen(text));
    else
        sb_put(b, "null", 4);
    free(text);
    json_decref(j);
}

/* Codes and flight numbers come from providers: keep only characters that need no escaping. */
static void sb_code(sbuf_t *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (; *s; s++)
        if (isalnum((unsigned char)*s) || *s == '-' || *s == '_' || *s == ' ' || *s == '.')
            sb_put(b, s, 1);
    sb_put(b, "\"", 1);
}

static void write_segments(sbuf_t *b, const fs_segment_t *segs, int n)
{
    sb_put(b, "[", 1);
    for (int i = 0; i < n; i++) {
        const fs_segment_t *s = &segs[i];
        char dep[20], arr[20];
        local_iso(s->dep_utc, s->dep_offset_min, dep);
        local_iso(s->arr_utc, s->arr_offset_min, arr);
        if (i)
            sb_put(b, ",", 1);
        sb_put(b, "{\"departure_airport\":", 21);
        sb_code(b, s->from);
        sb_put(b, ",\"arrival_airport\":", 19);
        sb_code(b, s->to);
        sb_printf(b, ",\"departure_time\":\"%s\",\"arrival_time\":\"%s\",\"flight_number\":", dep, arr);
        sb_code(b, s->flight_number);
        sb_put(b, ",\"airline\":", 11);
        sb_code(b, s->carrier);
        sb_printf(b, ",\"airline_logo\":null,\"duration_minutes\":%d,\"aircraft\":", s->duration_min);
        if (s->aircraft[0])
            sb_code(b, s->aircraft);
        else
            sb_put(b, "null", 4);
        sb_printf(b, ",\"departure_utc_offset_minutes\":%d,\"arrival_utc_offset_minutes\":%d}", s->dep_offset_min,
                  s->arr_offset_min);
    }
    sb_put(b, "]", 1);
}

static void utc_iso(int64_t t, char out[21])
{
    char local[20];
    local_iso(t, 0, local);
    snprintf(out, 21, "%sZ", local);
}

static void write_offer(sbuf_t *b, const fs_offer_t *o)
{
    sb_put(b, "{\"id\":", 6);
    sb_code(b, o->id);
    sb_printf(b, ",\"price\":%.2f,\"currency\":", o->price);
    sb_code(b, o->currency[0] ? o->currency : "EUR");
    sb_put(b, ",\"cabin_class\":", 15);
    sb_code(b, o->cabin[0] ? o->cabin : "economy");
    sb_put(b, ",\"airline\":", 11);
    sb_code(b, o->airline);
    sb_put(b, ",\"airline_logo\":null,\"outbound_segments\":", 41);
    write_segments(b, o->out, o->n_out);
    sb_put(b, ",\"return_segments\":", 19);
    if (o->n_ret > 0)
        write_segments(b, o->ret, o->n_ret);
    else
        sb_put(b, "null", 4);
    sb_printf(b, ",\"total_duration_minutes\":%d,\"stops\":%d,\"is_direct\":%s,\"booking_url\":",
              o->total_duration_min, o->stops, o->n_out == 1 ? "true" : "false");
    sb_string_or_null(b, o->booking_url);
    char priced[21];
    utc_iso(o->priced_at, priced);
    sb_put(b, ",\"source\":", 10);
    sb_code(b, o->source);
    sb_printf(b, ",\"priced_at\":\"%s\",\"virtual_interlining\":%s}", priced,
              o->virtual_interlining ? "true" : "false");
}

char *fs_offer_list_json_text(const fs_offer_list_t *l, size_t *len)
{
    sbuf_t b = {0};
    sb_reserve(&b, l ? l->n * 1024 : 16);
    sb_put(&b, "[", 1);
    for (size_t i = 0; l && i < l->n; i++) {
        if (i)
            sb_put(&b, ",", 1);
        write_offer(&b, &l->items[i]);
    }
    sb_put(&b, "]", 1);
    *len = b.len;
    return b.p;
}
