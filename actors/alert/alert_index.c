/* The alert index: an open-addressing route table over arrays sorted by target. See
 * alert_index.h for the contract and docs/ALERTS.md for the memory figures. */
#include "actors/alert/alert_index.h"

#include "runtime/alloc.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define TABLE_MIN 1024 /* slots of a fresh table */
#define ARRAY_MIN 4    /* records of a fresh route */

typedef struct route_slot {
    uint32_t key; /* 0 = empty slot */
    uint32_t n, cap;
    fs_alert_rec_t *recs;
} route_slot_t;

struct fs_alert_index {
    route_slot_t *slots;
    size_t cap, used; /* used: slots with a key (a route emptied keeps its slot) */
    size_t count;
};

/*--- codes ---------------------------------------------------------------------------------*/

static int code_char(int c)
{
    c = toupper(c);
    if (c >= 'A' && c <= 'Z')
        return c - 'A' + 11;
    if (c >= '0' && c <= '9')
        return c - '0' + 1;
    return 0;
}

static uint32_t code_pack(const char *s, size_t len)
{
    if (!s || len != 3)
        return 0;
    uint32_t v = 0;
    for (size_t i = 0; i < 3; i++) {
        int c = code_char((unsigned char)s[i]);
        if (!c)
            return 0;
        v = v * 37 + (uint32_t)c;
    }
    return v;
}

uint32_t fs_alert_route_key_n(const char *origin, size_t olen, const char *destination, size_t dlen)
{
    uint32_t o = code_pack(origin, olen), d = code_pack(destination, dlen);
    return o && d ? o << 16 | d : 0;
}

uint32_t fs_alert_route_key(const char *origin, const char *destination)
{
    return fs_alert_route_key_n(origin, origin ? strlen(origin) : 0, destination,
                                destination ? strlen(destination) : 0);
}

static void code_unpack(uint32_t v, char out[4])
{
    for (int i = 2; i >= 0; i--) {
        int c = (int)(v % 37);
        v /= 37;
        out[i] = (char)(c >= 11 ? 'A' + c - 11 : '0' + c - 1);
    }
    out[3] = '\0';
}

void fs_alert_route_codes(uint32_t route, char origin[4], char destination[4])
{
    code_unpack(route >> 16, origin);
    code_unpack(route & 0xFFFF, destination);
}

int fs_alert_shard_of(uint32_t route, int n)
{
    if (n <= 1)
        return 0;
    char o[4], d[4];
    fs_alert_route_codes(route, o, d);
    uint64_t h = 0;
    for (int i = 0; i < 3; i++)
        h = h * 31 + (unsigned char)o[i];
    for (int i = 0; i < 3; i++)
        h = h * 31 + (unsigned char)d[i];
    return (int)(h % (uint64_t)n);
}

uint16_t fs_alert_currency_pack(const char *code, size_t len)
{
    if (!code || len != 3)
        return 0;
    uint16_t v = 0;
    for (size_t i = 0; i < 3; i++) {
        int c = toupper((unsigned char)code[i]);
        if (c < 'A' || c > 'Z')
            return 0;
        v = (uint16_t)(v << 5 | (c - 'A' + 1));
    }
    return v;
}

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* Days from civil (Howard Hinnant's algorithm). */
static int days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int era = y / 400;
    int yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int fs_alert_day_parse(const char *s, size_t len)
{
    if (!s || len != 10 || s[4] != '-' || s[7] != '-')
        return -1;
    int y = digits(s, 4), m = digits(s + 5, 2), d = digits(s + 8, 2);
    if (y < 1970 || y > 2149 || m < 1 || m > 12 || d < 1)
        return -1;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > mdays[m - 1] + (m == 2 && leap))
        return -1;
    int days = days_from_civil(y, m, d);
    return days > 0 && days < FS_ALERT_DATE_OPEN_TO ? days : -1;
}

/*--- route table ---------------------------------------------------------------------------*/

static size_t slot_of(uint32_t key, size_t cap)
{
    return (size_t)((key * 0x9E3779B1u) ^ (key >> 15)) & (cap - 1);
}

/* The slot holding `key`, or the empty slot where it would go. */
static route_slot_t *probe(const fs_alert_index_t *idx, uint32_t key)
{
    size_t i = slot_of(key, idx->cap);
    while (idx->slots[i].key && idx->slots[i].key != key)
        i = (i + 1) & (idx->cap - 1);
    return &idx->slots[i];
}

static void grow_table(fs_alert_index_t *idx)
{
    route_slot_t *old = idx->slots;
    size_t old_cap = idx->cap;
    idx->cap *= 2;
    idx->slots = fs_calloc(idx->cap, sizeof *idx->slots);
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].key)
            *probe(idx, old[i].key) = old[i];
    free(old);
}

static route_slot_t *route_get(fs_alert_index_t *idx, uint32_t key, bool create)
{
    route_slot_t *s = probe(idx, key);
    if (s->key || !create)
        return s->key ? s : NULL;
    if ((idx->used + 1) * 4 > idx->cap * 3) { /* load factor at most 3/4 */
        grow_table(idx);
        s = probe(idx, key);
    }
    s->key = key;
    idx->used++;
    return s;
}

fs_alert_index_t *fs_alert_index_new(void)
{
    fs_alert_index_t *idx = FS_NEW(fs_alert_index_t);
    idx->cap = TABLE_MIN;
    idx->slots = fs_calloc(idx->cap, sizeof *idx->slots);
    return idx;
}

void fs_alert_index_free(fs_alert_index_t *idx)
{
    if (!idx)
        return;
    for (size_t i = 0; i < idx->cap; i++)
        free(idx->slots[i].recs);
    free(idx->slots);
    free(idx);
}

/*--- records -------------------------------------------------------------------------------*/

static long rec_find(const route_slot_t *s, const uint8_t id[16])
{
    for (uint32_t i = 0; i < s->n; i++)
        if (memcmp(s->recs[i].id, id, 16) == 0)
            return (long)i;
    return -1;
}

static void rec_delete(route_slot_t *s, uint32_t i)
{
    memmove(&s->recs[i], &s->recs[i + 1], (s->n - i - 1) * sizeof *s->recs);
    s->n--;
}

/* First position whose target is below `target` (records are highest first). */
static uint32_t insert_pos(const route_slot_t *s, int32_t target)
{
    uint32_t lo = 0, hi = s->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (s->recs[mid].target_cents >= target)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void fs_alert_index_put(fs_alert_index_t *idx, uint32_t route, const fs_alert_rec_t *rec)
{
    route_slot_t *s = route_get(idx, route, true);
    long old = rec_find(s, rec->id);
    if (old >= 0) {
        rec_delete(s, (uint32_t)old);
        idx->count--;
    }
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap + s->cap / 2 + 1 : ARRAY_MIN;
        s->recs = fs_realloc(s->recs, s->cap * sizeof *s->recs);
    }
    uint32_t at = insert_pos(s, rec->target_cents);
    memmove(&s->recs[at + 1], &s->recs[at], (s->n - at) * sizeof *s->recs);
    s->recs[at] = *rec;
    s->n++;
    idx->count++;
}

bool fs_alert_index_remove(fs_alert_index_t *idx, uint32_t route, const uint8_t id[16])
{
    route_slot_t *s = route_get(idx, route, false);
    long i = s ? rec_find(s, id) : -1;
    if (i < 0)
        return false;
    rec_delete(s, (uint32_t)i);
    idx->count--;
    if (s->n == 0) { /* keep the slot (no tombstones), drop the array */
        free(s->recs);
        s->recs = NULL;
        s->cap = 0;
    }
    return true;
}

fs_alert_rec_t *fs_alert_index_find(fs_alert_index_t *idx, uint32_t route, const uint8_t id[16])
{
    route_slot_t *s = route_get(idx, route, false);
    long i = s ? rec_find(s, id) : -1;
    return i >= 0 ? &s->recs[i] : NULL;
}

/*--- matching ------------------------------------------------------------------------------*/

static bool rec_matches(const fs_alert_rec_t *r, const fs_alert_obs_t *o, uint32_t now_s, uint32_t cooldown_s)
{
    return r->currency == o->currency && (r->cabin == FS_ALERT_CABIN_ANY || r->cabin == o->cabin) &&
           o->day >= r->date_from && o->day <= r->date_to &&
           (r->notified_s == 0 || now_s >= r->notified_s + cooldown_s);
}

size_t fs_alert_index_match(fs_alert_index_t *idx, const fs_alert_obs_t *obs, uint32_t now_s, uint32_t cooldown_s,
                            fs_alert_rec_t **out, size_t max)
{
    const route_slot_t *s = &idx->slots[slot_of(obs->route, idx->cap)];
    const route_slot_t *end = idx->slots + idx->cap;
    while (s->key != obs->route) { /* inline probe: the hot path of the shard */
        if (!s->key)
            return 0;
        if (++s == end)
            s = idx->slots;
    }
    size_t found = 0;
    for (uint32_t i = 0; i < s->n && s->recs[i].target_cents >= obs->price_cents; i++) {
        if (!rec_matches(&s->recs[i], obs, now_s, cooldown_s))
            continue;
        if (found < max)
            out[found] = &s->recs[i];
        found++;
    }
    return found;
}

/*--- introspection -------------------------------------------------------------------------*/

size_t fs_alert_index_count(const fs_alert_index_t *idx)
{
    return idx->count;
}

size_t fs_alert_index_routes(const fs_alert_index_t *idx)
{
    size_t n = 0;
    for (size_t i = 0; i < idx->cap; i++)
        n += idx->slots[i].n > 0;
    return n;
}

size_t fs_alert_index_bytes(const fs_alert_index_t *idx)
{
    size_t bytes = sizeof *idx + idx->cap * sizeof *idx->slots;
    for (size_t i = 0; i < idx->cap; i++)
        bytes += idx->slots[i].cap * sizeof(fs_alert_rec_t);
    return bytes;
}

void fs_alert_index_compact(fs_alert_index_t *idx)
{
    for (size_t i = 0; i < idx->cap; i++) {
        route_slot_t *s = &idx->slots[i];
        if (s->n && s->n < s->cap) {
            s->recs = fs_realloc(s->recs, s->n * sizeof *s->recs);
            s->cap = s->n;
        }
    }
}

void fs_alert_index_foreach(const fs_alert_index_t *idx, fs_alert_visit_fn fn, void *arg)
{
    for (size_t i = 0; i < idx->cap; i++)
        for (uint32_t j = 0; j < idx->slots[i].n; j++)
            fn(idx->slots[i].key, &idx->slots[i].recs[j], arg);
}
