/* Airport search index (see airport_index.h).
 *
 * Layout: airports sorted by IATA code (an airport's id is its position); folded city, name and
 * country per airport; id arrays sorted by folded city and by folded name for the two prefix
 * tiers; a sorted array of word suffixes for the word-prefix tier; byte bigram and trigram
 * posting lists for the substring tier; countries with their airports for the last tier.
 * Prefix tiers are binary searches. The search walks the tiers best first and stops as soon as
 * `limit` airports (or, grouped, `limit` cities) are matched, so a typical query never reaches
 * the substring tier; when it does, the rarest n-gram of the query picks the few airports
 * worth a strstr. Ties within a tier are broken by a rank computed once at build time. */
#include "storage/airport_index.h"
#include "storage/metro.h"

#include "runtime/alloc.h"
#include "storage/textfold.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *s; /* suffix of a folded city or name, starting at a word */
    uint32_t id;
} word_t;

typedef struct {
    uint32_t key;   /* packed n-gram bytes */
    uint32_t off;   /* into postings */
    uint32_t count;
} gram_t;

typedef struct {
    gram_t *grams;
    size_t ngrams;
    uint32_t *postings;
} grams_t;

typedef struct {
    char *folded;
    uint32_t *ids;
    size_t n;
} country_t;

/* An airport's JSON inside the index's `text`, from `off`: its AirportResponse object (`flat`
 * bytes), then the two pieces that make the full object of grouped results: `,"icao_code":..`
 * (`icao` bytes; it goes after the iata_code value, which ends `head` bytes into the object)
 * and `,"timezone":..,"is_active":..}` (`tail` bytes, in place of the closing brace). A city
 * entry reuses `"city":..,"country":..,"country_code":..` (`place` bytes from `place_at`) and,
 * for its display, the city's string without the closing quote (`city` bytes). */
struct frag {
    uint32_t off, flat, head, icao, tail, place_at, place, city;
};

struct fs_airport_index {
    size_t n;
    fs_airport_t *ap;     /* by IATA code */
    char **fcity, **fname;
    uint32_t *country_of; /* index into countries */
    uint32_t *rank;       /* tie-break order: major, routes, city, code */
    uint32_t *group;      /* city group (folded city + country code) */
    size_t ngroups;
    uint32_t *by_city, *by_name, *by_rank;
    uint32_t *by_icao;    /* airports with an ICAO code, sorted by it */
    size_t nicao;
    word_t *words;
    size_t nwords;
    grams_t bi, tri;
    country_t *countries;
    size_t ncountries;
    struct frag *frag;    /* per airport: its serialised JSON, in `text` */
    char *text;
};

/* ------------------------------------------------------------------------------------------
 * Build
 * ---------------------------------------------------------------------------------------- */

static char *dup_or_empty(const char *s) { return fs_strdup(s ? s : ""); }

static int cmp_iata(const void *a, const void *b)
{
    return strcmp(((const fs_airport_t *)a)->iata, ((const fs_airport_t *)b)->iata);
}

static int cmp_ids_by_str(const void *a, const void *b, void *arg)
{
    char **strs = arg;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    int c = strcmp(strs[x], strs[y]);
    return c ? c : (x > y) - (x < y);
}

static int cmp_rank(const void *a, const void *b, void *arg)
{
    const fs_airport_index_t *idx = arg;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    const fs_airport_t *p = &idx->ap[x], *q = &idx->ap[y];
    if (p->is_major != q->is_major)
        return p->is_major ? -1 : 1;
    if (p->route_count != q->route_count)
        return p->route_count > q->route_count ? -1 : 1;
    int c = strcmp(idx->fcity[x], idx->fcity[y]);
    return c ? c : strcmp(p->iata, q->iata);
}

static int cmp_group(const void *a, const void *b, void *arg)
{
    const fs_airport_index_t *idx = arg;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    int c = strcmp(idx->fcity[x], idx->fcity[y]);
    return c ? c : strcmp(idx->ap[x].country_code, idx->ap[y].country_code);
}

static int cmp_icao(const void *a, const void *b, void *arg)
{
    const fs_airport_index_t *idx = arg;
    return strcmp(idx->ap[*(const uint32_t *)a].icao, idx->ap[*(const uint32_t *)b].icao);
}

static uint32_t *identity(size_t n)
{
    uint32_t *v = fs_malloc((n ? n : 1) * sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = (uint32_t)i;
    return v;
}

static void copy_rows(fs_airport_index_t *idx, const fs_airport_t *rows, size_t n)
{
    idx->ap = fs_calloc(n ? n : 1, sizeof *idx->ap);
    for (size_t i = 0; i < n; i++) {
        if (!rows[i].is_active)
            continue;
        fs_airport_t *a = &idx->ap[idx->n++];
        *a = rows[i];
        a->name = dup_or_empty(rows[i].name);
        a->city = dup_or_empty(rows[i].city);
        a->country = dup_or_empty(rows[i].country);
        a->timezone = rows[i].timezone ? fs_strdup(rows[i].timezone) : NULL;
    }
    qsort(idx->ap, idx->n, sizeof *idx->ap, cmp_iata);
    size_t w = 0; /* drop duplicate codes, keeping the first of each */
    for (size_t r = 0; r < idx->n; r++) {
        if (w > 0 && strcmp(idx->ap[w - 1].iata, idx->ap[r].iata) == 0) {
            free((char *)idx->ap[r].name), free((char *)idx->ap[r].city), free((char *)idx->ap[r].country);
            free((char *)idx->ap[r].timezone);
            continue;
        }
        idx->ap[w++] = idx->ap[r];
    }
    idx->n = w;
}

static bool is_word_byte(unsigned char c) { return isalnum(c) || c >= 0x80; }

static void add_words(fs_airport_index_t *idx, const char *s, uint32_t id, size_t *cap)
{
    for (size_t i = 1; s[i]; i++) {
        if (!is_word_byte((unsigned char)s[i]) || is_word_byte((unsigned char)s[i - 1]))
            continue;
        if (idx->nwords == *cap) {
            *cap = *cap ? *cap * 2 : 4096;
            idx->words = fs_realloc(idx->words, *cap * sizeof *idx->words);
        }
        idx->words[idx->nwords++] = (word_t){s + i, id};
    }
}

static int cmp_word(const void *a, const void *b)
{
    const word_t *x = a, *y = b;
    int c = strcmp(x->s, y->s);
    return c ? c : (x->id > y->id) - (x->id < y->id);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static uint32_t gram_key(const char *s, size_t n)
{
    uint32_t k = 0;
    for (size_t i = 0; i < n; i++)
        k = (k << 8) | (unsigned char)s[i];
    return k;
}

/* Posting lists of every n-gram (n = 2 or 3) of the folded city and name, each list in rank
 * order so that the substring tier can stop once it has enough airports. */
static void build_grams(fs_airport_index_t *idx, grams_t *g, size_t n)
{
    size_t cap = 0, len = 0;
    uint64_t *pairs = NULL; /* key << 32 | id */
    for (uint32_t id = 0; id < idx->n; id++) {
        const char *texts[2] = {idx->fcity[id], idx->fname[id]};
        for (int t = 0; t < 2; t++)
            for (size_t i = 0; texts[t][i] && texts[t][i + 1] && (n == 2 || texts[t][i + 2]); i++) {
                if (len == cap) {
                    cap = cap ? cap * 2 : 65536;
                    pairs = fs_realloc(pairs, cap * sizeof *pairs);
                }
                pairs[len++] = (uint64_t)gram_key(texts[t] + i, n) << 32 | idx->rank[id];
            }
    }
    if (len)
        qsort(pairs, len, sizeof *pairs, cmp_u64);
    g->postings = fs_malloc((len ? len : 1) * sizeof *g->postings);
    g->grams = fs_malloc((len ? len : 1) * sizeof *g->grams);
    size_t np = 0;
    for (size_t i = 0; i < len; i++) {
        if (i > 0 && pairs[i] == pairs[i - 1])
            continue;
        uint32_t key = (uint32_t)(pairs[i] >> 32);
        if (g->ngrams == 0 || g->grams[g->ngrams - 1].key != key)
            g->grams[g->ngrams++] = (gram_t){key, (uint32_t)np, 0};
        g->postings[np++] = idx->by_rank[(uint32_t)pairs[i]];
        g->grams[g->ngrams - 1].count++;
    }
    free(pairs);
}

static void build_countries(fs_airport_index_t *idx)
{
    char **fcountry = fs_malloc((idx->n ? idx->n : 1) * sizeof *fcountry);
    for (size_t i = 0; i < idx->n; i++)
        fcountry[i] = fs_fold(idx->ap[i].country, strlen(idx->ap[i].country));
    uint32_t *order = identity(idx->n);
    qsort_r(order, idx->n, sizeof *order, cmp_ids_by_str, fcountry);
    idx->countries = fs_calloc(idx->n ? idx->n : 1, sizeof *idx->countries);
    idx->country_of = fs_malloc((idx->n ? idx->n : 1) * sizeof *idx->country_of);
    for (size_t i = 0; i < idx->n; i++) {
        uint32_t id = order[i];
        country_t *c = idx->ncountries ? &idx->countries[idx->ncountries - 1] : NULL;
        if (!c || strcmp(c->folded, fcountry[id]) != 0) {
            c = &idx->countries[idx->ncountries++];
            c->folded = fs_strdup(fcountry[id]);
            c->ids = fs_malloc(idx->n * sizeof *c->ids);
        }
        c->ids[c->n++] = id;
        idx->country_of[id] = (uint32_t)(c - idx->countries);
    }
    for (size_t i = 0; i < idx->n; i++)
        free(fcountry[i]);
    free(fcountry);
    free(order);
}

static void build_text(fs_airport_index_t *idx);

static void build_groups(fs_airport_index_t *idx)
{
    uint32_t *order = identity(idx->n);
    qsort_r(order, idx->n, sizeof *order, cmp_group, idx);
    idx->group = fs_malloc((idx->n ? idx->n : 1) * sizeof *idx->group);
    for (size_t i = 0; i < idx->n; i++) {
        if (i == 0 || cmp_group(&order[i - 1], &order[i], idx) != 0)
            idx->ngroups++;
        idx->group[order[i]] = (uint32_t)(idx->ngroups - 1);
    }
    free(order);
}

fs_airport_index_t *fs_airport_index_build(const fs_airport_t *rows, size_t n)
{
    fs_airport_index_t *idx = FS_NEW(fs_airport_index_t);
    copy_rows(idx, rows, n);
    size_t m = idx->n ? idx->n : 1;
    idx->fcity = fs_malloc(m * sizeof(char *));
    idx->fname = fs_malloc(m * sizeof(char *));
    for (size_t i = 0; i < idx->n; i++) {
        idx->fcity[i] = fs_fold(idx->ap[i].city, strlen(idx->ap[i].city));
        idx->fname[i] = fs_fold(idx->ap[i].name, strlen(idx->ap[i].name));
    }
    idx->by_city = identity(idx->n);
    qsort_r(idx->by_city, idx->n, sizeof(uint32_t), cmp_ids_by_str, idx->fcity);
    idx->by_name = identity(idx->n);
    qsort_r(idx->by_name, idx->n, sizeof(uint32_t), cmp_ids_by_str, idx->fname);
    idx->by_rank = identity(idx->n);
    qsort_r(idx->by_rank, idx->n, sizeof(uint32_t), cmp_rank, idx);
    idx->rank = fs_malloc(m * sizeof(uint32_t));
    for (size_t i = 0; i < idx->n; i++)
        idx->rank[idx->by_rank[i]] = (uint32_t)i;
    size_t cap = 0;
    for (uint32_t i = 0; i < idx->n; i++) {
        add_words(idx, idx->fcity[i], i, &cap);
        add_words(idx, idx->fname[i], i, &cap);
    }
    if (idx->nwords) /* qsort must not see a NULL base, even for 0 items */
        qsort(idx->words, idx->nwords, sizeof *idx->words, cmp_word);
    idx->by_icao = fs_malloc(m * sizeof(uint32_t));
    for (uint32_t i = 0; i < idx->n; i++)
        if (idx->ap[i].icao[0])
            idx->by_icao[idx->nicao++] = i;
    qsort_r(idx->by_icao, idx->nicao, sizeof(uint32_t), cmp_icao, idx);
    build_grams(idx, &idx->bi, 2);
    build_grams(idx, &idx->tri, 3);
    build_countries(idx);
    build_groups(idx);
    build_text(idx);
    return idx;
}

void fs_airport_index_free(fs_airport_index_t *idx)
{
    if (!idx)
        return;
    for (size_t i = 0; i < idx->n; i++) {
        free((char *)idx->ap[i].name), free((char *)idx->ap[i].city), free((char *)idx->ap[i].country);
        free((char *)idx->ap[i].timezone);
        free(idx->fcity[i]), free(idx->fname[i]);
    }
    for (size_t i = 0; i < idx->ncountries; i++)
        free(idx->countries[i].folded), free(idx->countries[i].ids);
    free(idx->countries), free(idx->country_of), free(idx->group);
    free(idx->ap), free(idx->fcity), free(idx->fname), free(idx->rank);
    free(idx->by_city), free(idx->by_name), free(idx->by_rank), free(idx->by_icao), free(idx->words);
    free(idx->bi.grams), free(idx->bi.postings), free(idx->tri.grams), free(idx->tri.postings);
    free(idx->frag), free(idx->text);
    free(idx);
}

size_t fs_airport_index_count(const fs_airport_index_t *idx) { return idx ? idx->n : 0; }

const fs_airport_t *fs_airport_index_at(const fs_airport_index_t *idx, size_t i)
{
    return idx && i < idx->n ? &idx->ap[i] : NULL;
}

static long find_code(const fs_airport_index_t *idx, const char *code)
{
    char up[4];
    size_t n = strlen(code);
    if (n != 3)
        return -1;
    for (size_t i = 0; i < 3; i++)
        up[i] = (char)toupper((unsigned char)code[i]);
    up[3] = '\0';
    size_t lo = 0, hi = idx->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(idx->ap[mid].iata, up);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

const fs_airport_t *fs_airport_index_lookup(const fs_airport_index_t *idx, const char *code)
{
    long i = idx && code ? find_code(idx, code) : -1;
    return i >= 0 ? &idx->ap[i] : NULL;
}

/* ------------------------------------------------------------------------------------------
 * Search
 * ---------------------------------------------------------------------------------------- */

/* State of one query; nothing in the index is written. */
typedef struct {
    const fs_airport_index_t *idx;
    char q[2 * FS_AIRPORT_QUERY_MAX + 1]; /* folded query */
    size_t qlen;
    char code[5];       /* upper-cased query when it could be a code, else "" */
    uint8_t *tier;      /* per airport, FS_AIRPORT_TIER_NONE when unmatched */
    uint8_t *group_seen;
    uint32_t *cand;     /* matched airports, in the order found */
    size_t ncand, ngroups;
    size_t limit;       /* stop once this many airports (grouped: cities) are matched */
    bool grouped;
} query_t;

static bool enough(const query_t *qs)
{
    return (qs->grouped ? qs->ngroups : qs->ncand) >= qs->limit;
}

static bool prepare(query_t *qs, const fs_airport_index_t *idx, const char *query)
{
    memset(qs, 0, sizeof *qs);
    qs->idx = idx;
    size_t len = query ? strnlen(query, FS_AIRPORT_QUERY_MAX) : 0;
    qs->qlen = fs_fold_into(query ? query : "", len, qs->q, sizeof qs->q);
    if (qs->qlen < FS_AIRPORT_QUERY_MIN || !idx || idx->n == 0)
        return false;
    if (qs->qlen <= 4) {
        bool alnum = true;
        for (size_t i = 0; i < qs->qlen; i++)
            alnum = alnum && isalnum((unsigned char)qs->q[i]);
        for (size_t i = 0; alnum && i < qs->qlen; i++)
            qs->code[i] = (char)toupper((unsigned char)qs->q[i]);
    }
    qs->tier = fs_malloc(idx->n);
    memset(qs->tier, FS_AIRPORT_TIER_NONE, idx->n);
    qs->group_seen = fs_calloc(idx->ngroups ? idx->ngroups : 1, 1);
    qs->cand = fs_malloc(idx->n * sizeof *qs->cand);
    return true;
}

static void release(query_t *qs)
{
    free(qs->tier);
    free(qs->group_seen);
    free(qs->cand);
}

static void mark(query_t *qs, uint32_t id, fs_airport_tier_t t)
{
    if (qs->tier[id] != FS_AIRPORT_TIER_NONE)
        return; /* tiers run best first: the first mark is the best */
    qs->tier[id] = (uint8_t)t;
    qs->cand[qs->ncand++] = id;
    uint32_t g = qs->idx->group[id];
    if (!qs->group_seen[g]) {
        qs->group_seen[g] = 1;
        qs->ngroups++;
    }
}

/* First position in `ids` (sorted by strs) whose string is >= q, or whose prefix equals q. */
static size_t lower_bound(const uint32_t *ids, size_t n, char **strs, const char *q, size_t qlen)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strncmp(strs[ids[mid]], q, qlen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void prefix_tier(query_t *qs, const uint32_t *sorted, char **strs, fs_airport_tier_t t)
{
    const fs_airport_index_t *idx = qs->idx;
    for (size_t i = lower_bound(sorted, idx->n, strs, qs->q, qs->qlen);
         i < idx->n && strncmp(strs[sorted[i]], qs->q, qs->qlen) == 0; i++)
        mark(qs, sorted[i], t);
}

static void code_tier(query_t *qs)
{
    const fs_airport_index_t *idx = qs->idx;
    if (qs->qlen == 3 && qs->code[0]) {
        long i = find_code(idx, qs->code);
        if (i >= 0)
            mark(qs, (uint32_t)i, FS_AIRPORT_TIER_CODE);
    } else if (qs->qlen == 4 && qs->code[0]) {
        size_t lo = 0, hi = idx->nicao;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (strcmp(idx->ap[idx->by_icao[mid]].icao, qs->code) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        for (; lo < idx->nicao && strcmp(idx->ap[idx->by_icao[lo]].icao, qs->code) == 0; lo++)
            mark(qs, idx->by_icao[lo], FS_AIRPORT_TIER_CODE);
    }
}

static bool has_word_prefix(const char *s, const char *q, size_t qlen);

/* Word ranges larger than this are walked in rank order instead ("ai" prefixes the word
 * "airport" of most names: marking and sorting thousands of airports to keep ten is waste). */
#define WORD_RANGE_SCAN 512

static void word_tier(query_t *qs)
{
    const fs_airport_index_t *idx = qs->idx;
    size_t lo = 0, hi = idx->nwords;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strncmp(idx->words[mid].s, qs->q, qs->qlen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < idx->nwords && strncmp(idx->words[end].s, qs->q, qs->qlen) == 0)
        end++;
    bool code2 = qs->qlen == 2 && qs->code[0]; /* "lh" -> LHR, LHE, ... */
    if (end - lo > WORD_RANGE_SCAN) {
        for (size_t i = 0; i < idx->n && !enough(qs); i++) {
            uint32_t id = idx->by_rank[i];
            if (qs->tier[id] == FS_AIRPORT_TIER_NONE &&
                (has_word_prefix(idx->fcity[id], qs->q, qs->qlen) || has_word_prefix(idx->fname[id], qs->q, qs->qlen) ||
                 (code2 && strncmp(idx->ap[id].iata, qs->code, 2) == 0)))
                mark(qs, id, FS_AIRPORT_TIER_WORD_PREFIX);
        }
        return;
    }
    for (size_t i = lo; i < end; i++)
        mark(qs, idx->words[i].id, FS_AIRPORT_TIER_WORD_PREFIX);
    for (size_t i = 0; code2 && i < idx->n; i++)
        if (strncmp(idx->ap[i].iata, qs->code, 2) == 0)
            mark(qs, (uint32_t)i, FS_AIRPORT_TIER_WORD_PREFIX);
}

static const gram_t *gram_find(const grams_t *g, uint32_t key)
{
    size_t lo = 0, hi = g->ngrams;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (g->grams[mid].key == key)
            return &g->grams[mid];
        if (g->grams[mid].key < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static void substring_tier(query_t *qs)
{
    const fs_airport_index_t *idx = qs->idx;
    const grams_t *g = qs->qlen >= 3 ? &idx->tri : &idx->bi;
    size_t n = qs->qlen >= 3 ? 3 : 2;
    const gram_t *best = NULL;
    for (size_t i = 0; i + n <= qs->qlen; i++) {
        const gram_t *gr = gram_find(g, gram_key(qs->q + i, n));
        if (!gr)
            return; /* an n-gram no airport has: nothing contains the query */
        if (!best || gr->count < best->count)
            best = gr;
    }
    /* The list is in rank order, and this tier ranks by rank alone: stop once enough. When the
     * query is the n-gram itself, being on the list is the match. */
    for (uint32_t k = 0; best && k < best->count && !enough(qs); k++) {
        uint32_t id = g->postings[best->off + k];
        if (qs->tier[id] == FS_AIRPORT_TIER_NONE &&
            (qs->qlen == n || strstr(idx->fcity[id], qs->q) || strstr(idx->fname[id], qs->q)))
            mark(qs, id, FS_AIRPORT_TIER_SUBSTRING);
    }
}

/* Several countries may match ("united"): walk all airports in rank order and stop once
 * enough are matched. */
static void country_tier(query_t *qs)
{
    const fs_airport_index_t *idx = qs->idx;
    uint8_t *hit = fs_calloc(idx->ncountries ? idx->ncountries : 1, 1);
    bool any = false;
    for (size_t c = 0; c < idx->ncountries; c++)
        if (strstr(idx->countries[c].folded, qs->q))
            hit[c] = 1, any = true;
    for (size_t i = 0; any && i < idx->n && !enough(qs); i++)
        if (hit[idx->country_of[idx->by_rank[i]]])
            mark(qs, idx->by_rank[i], FS_AIRPORT_TIER_COUNTRY);
    free(hit);
}

/* Sorts the matches by (tier, rank) through packed 64-bit keys: no indirection per compare. */
static void sort_cand(query_t *qs)
{
    uint64_t *keys = fs_malloc((qs->ncand ? qs->ncand : 1) * sizeof *keys);
    for (size_t i = 0; i < qs->ncand; i++)
        keys[i] = (uint64_t)qs->tier[qs->cand[i]] << 32 | qs->idx->rank[qs->cand[i]];
    if (qs->ncand) /* qsort must not see a NULL base, even for 0 items */
        qsort(keys, qs->ncand, sizeof *keys, cmp_u64);
    for (size_t i = 0; i < qs->ncand; i++)
        qs->cand[i] = qs->idx->by_rank[(uint32_t)keys[i]];
    free(keys);
}

/* Runs tiers best first until `limit` airports (or groups) are matched; sorts the matches. */
static void run(query_t *qs, size_t limit, bool grouped)
{
    qs->limit = limit;
    qs->grouped = grouped;
    code_tier(qs);
    void (*const later[])(query_t *) = {NULL, NULL, NULL, word_tier, substring_tier, country_tier};
    for (int t = FS_AIRPORT_TIER_CITY_PREFIX; t <= FS_AIRPORT_TIER_COUNTRY; t++) {
        if (enough(qs))
            break;
        if (t == FS_AIRPORT_TIER_CITY_PREFIX)
            prefix_tier(qs, qs->idx->by_city, qs->idx->fcity, FS_AIRPORT_TIER_CITY_PREFIX);
        else if (t == FS_AIRPORT_TIER_NAME_PREFIX)
            prefix_tier(qs, qs->idx->by_name, qs->idx->fname, FS_AIRPORT_TIER_NAME_PREFIX);
        else
            later[t](qs);
    }
    sort_cand(qs);
}

size_t fs_airport_index_search(const fs_airport_index_t *idx, const char *query, size_t limit,
                               const fs_airport_t **out)
{
    query_t qs;
    if (limit == 0 || !prepare(&qs, idx, query))
        return 0;
    run(&qs, limit, false);
    size_t n = qs.ncand < limit ? qs.ncand : limit;
    for (size_t i = 0; i < n; i++)
        out[i] = &idx->ap[qs.cand[i]];
    release(&qs);
    return n;
}

static bool has_word_prefix(const char *s, const char *q, size_t qlen)
{
    for (size_t i = 1; s[i]; i++)
        if (is_word_byte((unsigned char)s[i]) && !is_word_byte((unsigned char)s[i - 1]) && strncmp(s + i, q, qlen) == 0)
            return true;
    return false;
}

/* The tier of one airport against a prepared (folded) query: the definition the index
 * implements with its sorted arrays. */
static fs_airport_tier_t tier_of(const fs_airport_t *a, const char *fcity, const char *fname, const char *fcountry,
                                 const char *q, size_t qlen, const char *code)
{
    if (code[0] && ((qlen == 3 && strcmp(a->iata, code) == 0) || (qlen == 4 && strcmp(a->icao, code) == 0)))
        return FS_AIRPORT_TIER_CODE;
    if (strncmp(fcity, q, qlen) == 0)
        return FS_AIRPORT_TIER_CITY_PREFIX;
    if (strncmp(fname, q, qlen) == 0)
        return FS_AIRPORT_TIER_NAME_PREFIX;
    if (has_word_prefix(fcity, q, qlen) || has_word_prefix(fname, q, qlen) ||
        (qlen == 2 && code[0] && strncmp(a->iata, code, 2) == 0))
        return FS_AIRPORT_TIER_WORD_PREFIX;
    if (strstr(fcity, q) || strstr(fname, q))
        return FS_AIRPORT_TIER_SUBSTRING;
    if (strstr(fcountry, q))
        return FS_AIRPORT_TIER_COUNTRY;
    return FS_AIRPORT_TIER_NONE;
}

fs_airport_tier_t fs_airport_index_tier(const fs_airport_t *a, const char *query)
{
    query_t qs;
    memset(&qs, 0, sizeof qs);
    size_t len = query ? strnlen(query, FS_AIRPORT_QUERY_MAX) : 0;
    qs.qlen = fs_fold_into(query ? query : "", len, qs.q, sizeof qs.q);
    if (qs.qlen < FS_AIRPORT_QUERY_MIN)
        return FS_AIRPORT_TIER_NONE;
    bool alnum = qs.qlen <= 4;
    for (size_t i = 0; alnum && i < qs.qlen; i++)
        alnum = isalnum((unsigned char)qs.q[i]);
    for (size_t i = 0; alnum && i < qs.qlen; i++)
        qs.code[i] = (char)toupper((unsigned char)qs.q[i]);
    char *fc = fs_fold(a->city, strlen(a->city)), *fn = fs_fold(a->name, strlen(a->name));
    char *fk = fs_fold(a->country, strlen(a->country));
    fs_airport_tier_t t = tier_of(a, fc, fn, fk, qs.q, qs.qlen, qs.code);
    free(fc), free(fn), free(fk);
    return t;
}

/* ------------------------------------------------------------------------------------------
 * Popular, by city
 * ---------------------------------------------------------------------------------------- */

size_t fs_airport_index_popular(const fs_airport_index_t *idx, const char *country_code, size_t limit,
                                const fs_airport_t **out)
{
    size_t n = 0;
    bool filter = country_code && *country_code;
    for (size_t i = 0; idx && i < idx->n && n < limit; i++) {
        const fs_airport_t *a = &idx->ap[idx->by_city[i]];
        if (a->is_major && (!filter || strcasecmp(a->country_code, country_code) == 0))
            out[n++] = a;
    }
    return n;
}

static int cmp_city_members(const void *a, const void *b, void *arg)
{
    const fs_airport_index_t *idx = arg;
    const fs_airport_t *p = *(const fs_airport_t *const *)a, *q = *(const fs_airport_t *const *)b;
    if (p->is_major != q->is_major)
        return p->is_major ? -1 : 1;
    if (p->route_count != q->route_count)
        return p->route_count > q->route_count ? -1 : 1;
    int c = strcmp(p->name, q->name);
    (void)idx;
    return c ? c : strcmp(p->iata, q->iata);
}

size_t fs_airport_index_by_city(const fs_airport_index_t *idx, const char *city, size_t limit,
                                const fs_airport_t **out)
{
    if (!idx || !city || limit == 0)
        return 0;
    char q[2 * FS_AIRPORT_QUERY_MAX + 1];
    size_t qlen = fs_fold_into(city, strnlen(city, FS_AIRPORT_QUERY_MAX), q, sizeof q);
    if (qlen == 0)
        return 0;
    size_t lo = lower_bound(idx->by_city, idx->n, idx->fcity, q, qlen), n = 0;
    for (size_t i = lo; i < idx->n && n < limit && strcmp(idx->fcity[idx->by_city[i]], q) == 0; i++)
        out[n++] = &idx->ap[idx->by_city[i]];
    if (n == 0) /* no exact match: the cities that start with it */
        for (size_t i = lo; i < idx->n && n < limit && strncmp(idx->fcity[idx->by_city[i]], q, qlen) == 0; i++)
            out[n++] = &idx->ap[idx->by_city[i]];
    qsort_r(out, n, sizeof *out, cmp_city_members, (void *)idx);
    return n;
}

/* ------------------------------------------------------------------------------------------
 * JSON
 * ---------------------------------------------------------------------------------------- */

json_t *fs_airport_json(const fs_airport_t *a, bool full)
{
    json_t *o = json_object();
    json_object_set_new(o, "iata_code", json_string(a->iata));
    if (full)
        json_object_set_new(o, "icao_code", a->icao[0] ? json_string(a->icao) : json_null());
    json_object_set_new(o, "name", json_string(a->name));
    json_object_set_new(o, "city", json_string(a->city));
    json_object_set_new(o, "country", json_string(a->country));
    json_object_set_new(o, "country_code", json_string(a->country_code));
    json_object_set_new(o, "latitude", a->has_coords ? json_real(a->latitude) : json_null());
    json_object_set_new(o, "longitude", a->has_coords ? json_real(a->longitude) : json_null());
    json_object_set_new(o, "is_major", json_boolean(a->is_major));
    if (full) {
        json_object_set_new(o, "timezone", a->timezone ? json_string(a->timezone) : json_null());
        json_object_set_new(o, "is_active", json_boolean(a->is_active));
    }
    return o;
}

static int cmp_group_members(const void *a, const void *b, void *arg)
{
    const fs_airport_index_t *idx = arg;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    const fs_airport_t *p = &idx->ap[x], *q = &idx->ap[y];
    if (p->is_major != q->is_major)
        return p->is_major ? -1 : 1;
    int c = strcmp(p->name, q->name);
    return c ? c : strcmp(p->iata, q->iata);
}

/* Matched airports of the group of `first`: those the search reached, plus those it stopped
 * before reaching (they match in a lower tier, found with the per-airport definition). */
static size_t group_members(query_t *qs, uint32_t first, uint32_t *out)
{
    const fs_airport_index_t *idx = qs->idx;
    size_t lo = lower_bound(idx->by_city, idx->n, idx->fcity, idx->fcity[first], strlen(idx->fcity[first])), n = 0;
    for (size_t i = lo; i < idx->n && strcmp(idx->fcity[idx->by_city[i]], idx->fcity[first]) == 0; i++) {
        uint32_t id = idx->by_city[i];
        if (idx->group[id] != idx->group[first])
            continue;
        if (qs->tier[id] != FS_AIRPORT_TIER_NONE ||
            tier_of(&idx->ap[id], idx->fcity[id], idx->fname[id], idx->countries[idx->country_of[id]].folded, qs->q,
                    qs->qlen, qs->code) != FS_AIRPORT_TIER_NONE)
            out[n++] = id;
    }
    qsort_r(out, n, sizeof *out, cmp_group_members, (void *)idx);
    return n;
}

/* ------------------------------------------------------------------------------------------
 * Response text: fragments written once by the build, concatenated per request
 * ---------------------------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
} buf_t;

static void put(buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (b->len + n + 1 > cap)
            cap *= 2;
        b->p = fs_realloc(b->p, cap);
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

#define PUT_LIT(b, lit) put((b), (lit), sizeof(lit) - 1)

static void put_uint(buf_t *b, size_t v)
{
    char d[24];
    size_t i = sizeof d;
    do
        d[--i] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    put(b, d + i, sizeof d - i);
}

static void put_bool(buf_t *b, bool v)
{
    if (v)
        PUT_LIT(b, "true");
    else
        PUT_LIT(b, "false");
}

/* A JSON string, escaped by jansson (so byte for byte what json_dumps writes); NULL is null.
 * The sources are UTF-8; should a string not be, its non-ASCII bytes become '?' rather than
 * the field going missing. */
static void put_str(buf_t *b, const char *s)
{
    if (!s) {
        PUT_LIT(b, "null");
        return;
    }
    json_t *j = json_string(s);
    if (!j) {
        char *copy = fs_strdup(s);
        for (char *c = copy; *c; c++)
            if ((unsigned char)*c >= 0x80)
                *c = '?';
        j = json_string(copy);
        free(copy);
    }
    char *t = j ? json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    json_decref(j);
    if (!t)
        abort(); /* out of memory, as fs_malloc */
    put(b, t, strlen(t));
    free(t);
}

/* Degrees with at most 6 decimals (about 0.1 m; the sources have no more), trailing zeros
 * trimmed but one decimal kept so that the value stays a JSON real ("51.0"); %.17g would
 * print the binary noise (51.470600128173828). */
static void put_coord(buf_t *b, bool has, double v)
{
    if (!has || !isfinite(v)) {
        PUT_LIT(b, "null");
        return;
    }
    char t[48];
    int n = snprintf(t, sizeof t, "%.6f", v);
    while (n > 2 && t[n - 1] == '0' && t[n - 2] != '.')
        n--;
    const char *s = t;
    if (n == 4 && memcmp(t, "-0.0", 4) == 0)
        s++, n--; /* -0.0000001 */
    put(b, s, (size_t)n);
}

#define IATA_AT 13 /* strlen("{\"iata_code\":"): where the code's JSON string starts */
#define CITY_AT 7  /* strlen("\"city\":") */

/* Writes `a` as the AirportResponse object followed by the two pieces of the full object
 * (struct frag above); records the offsets, relative to the object's start, in `f`. */
static void write_airport(buf_t *b, const fs_airport_t *a, struct frag *f)
{
    size_t o = b->len, m;
    f->off = (uint32_t)o;
    PUT_LIT(b, "{\"iata_code\":");
    put_str(b, a->iata);
    f->head = (uint32_t)(b->len - o);
    PUT_LIT(b, ",\"name\":");
    put_str(b, a->name);
    PUT_LIT(b, ",");
    f->place_at = (uint32_t)(b->len - o);
    PUT_LIT(b, "\"city\":");
    m = b->len;
    put_str(b, a->city);
    f->city = (uint32_t)(b->len - m - 1);
    PUT_LIT(b, ",\"country\":");
    put_str(b, a->country);
    PUT_LIT(b, ",\"country_code\":");
    put_str(b, a->country_code);
    f->place = (uint32_t)(b->len - o - f->place_at);
    PUT_LIT(b, ",\"latitude\":");
    put_coord(b, a->has_coords, a->latitude);
    PUT_LIT(b, ",\"longitude\":");
    put_coord(b, a->has_coords, a->longitude);
    PUT_LIT(b, ",\"is_major\":");
    put_bool(b, a->is_major);
    PUT_LIT(b, "}");
    f->flat = (uint32_t)(b->len - o);
    m = b->len;
    PUT_LIT(b, ",\"icao_code\":");
    put_str(b, a->icao[0] ? a->icao : NULL);
    f->icao = (uint32_t)(b->len - m);
    m = b->len;
    PUT_LIT(b, ",\"timezone\":");
    put_str(b, a->timezone);
    PUT_LIT(b, ",\"is_active\":");
    put_bool(b, a->is_active);
    PUT_LIT(b, "}");
    f->tail = (uint32_t)(b->len - m);
}

static void build_text(fs_airport_index_t *idx)
{
    buf_t b = {0};
    idx->frag = fs_malloc((idx->n ? idx->n : 1) * sizeof *idx->frag);
    for (size_t i = 0; i < idx->n; i++)
        write_airport(&b, &idx->ap[i], &idx->frag[i]);
    idx->text = b.p ? fs_realloc(b.p, b.len + 1) : fs_strdup("");
}

/* The full object (icao_code after iata_code; timezone and is_active at the end) from the
 * text `t` of an airport; `open` false leaves out the opening brace, to follow a "type". */
static void put_full(buf_t *b, const char *t, const struct frag *f, bool open)
{
    put(b, t + !open, f->head - !open);
    put(b, t + f->flat, f->icao);
    put(b, t + f->head, f->flat - f->head - 1);
    put(b, t + f->flat + f->icao, f->tail);
}

static const char *text_of(const fs_airport_index_t *idx, uint32_t id)
{
    return idx->text + idx->frag[id].off;
}

static void put_flat(buf_t *b, const fs_airport_index_t *idx, uint32_t id)
{
    put(b, text_of(idx, id), idx->frag[id].flat);
}

static void put_city_entry(buf_t *b, const fs_airport_index_t *idx, uint32_t first, const uint32_t *members, size_t n)
{
    const struct frag *f = &idx->frag[first];
    const char *t = text_of(idx, first);
    PUT_LIT(b, "{\"type\":\"city\",");
    /* The multi-airport city code a client can search with, when the city has one. */
    const char *metro = NULL;
    for (size_t i = 0; i < n && !metro; i++)
        metro = fs_metro_code_of(idx->ap[members[i]].iata);
    if (metro) {
        PUT_LIT(b, "\"city_code\":\"");
        put(b, metro, strlen(metro));
        PUT_LIT(b, "\",");
    }
    put(b, t + f->place_at, f->place); /* "city":..,"country":..,"country_code":.. */
    PUT_LIT(b, ",\"airport_count\":");
    put_uint(b, n);
    PUT_LIT(b, ",\"airports\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            PUT_LIT(b, ",");
        put_full(b, text_of(idx, members[i]), &idx->frag[members[i]], true);
    }
    PUT_LIT(b, "],\"codes\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            PUT_LIT(b, ",");
        put(b, text_of(idx, members[i]) + IATA_AT, idx->frag[members[i]].head - IATA_AT);
    }
    PUT_LIT(b, "],\"display\":");
    put(b, t + f->place_at + CITY_AT, f->city); /* the city's string without its closing quote */
    PUT_LIT(b, " (All ");
    put_uint(b, n);
    PUT_LIT(b, " airports)\"}");
}

/* Writes the grouped entries, comma-separated; returns how many. */
static size_t grouped_text(query_t *qs, size_t limit, buf_t *b)
{
    const fs_airport_index_t *idx = qs->idx;
    uint8_t *emitted = fs_calloc(idx->ngroups ? idx->ngroups : 1, 1);
    uint32_t *members = fs_malloc(idx->n * sizeof *members);
    size_t entries = 0;
    for (size_t i = 0; i < qs->ncand && entries < limit; i++) {
        uint32_t id = qs->cand[i], g = idx->group[id];
        if (emitted[g])
            continue;
        emitted[g] = 1;
        size_t n = group_members(qs, id, members);
        if (entries++)
            PUT_LIT(b, ",");
        if (n >= 2) {
            put_city_entry(b, idx, id, members, n);
        } else {
            PUT_LIT(b, "{\"type\":\"airport\",");
            put_full(b, text_of(idx, id), &idx->frag[id], false);
        }
    }
    free(emitted);
    free(members);
    return entries;
}

const char *fs_airport_index_text(const fs_airport_index_t *idx, const fs_airport_t *a, size_t *len)
{
    uint32_t id = (uint32_t)(a - idx->ap);
    *len = idx->frag[id].flat;
    return text_of(idx, id);
}

char *fs_airport_index_list_text(const fs_airport_index_t *idx, const fs_airport_t *const *list, size_t n,
                                 size_t *len)
{
    buf_t b = {0};
    PUT_LIT(&b, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            PUT_LIT(&b, ",");
        put_flat(&b, idx, (uint32_t)(list[i] - idx->ap));
    }
    PUT_LIT(&b, "]");
    *len = b.len;
    return b.p;
}

char *fs_airport_index_search_text(const fs_airport_index_t *idx, const char *query, size_t limit, bool grouped,
                                   size_t *len)
{
    buf_t res = {0}, b = {0};
    size_t total = 0;
    query_t qs;
    if (limit > 0 && prepare(&qs, idx, query)) {
        run(&qs, limit, grouped);
        if (grouped) {
            total = grouped_text(&qs, limit, &res);
        } else {
            for (; total < qs.ncand && total < limit; total++) {
                if (total)
                    PUT_LIT(&res, ",");
                put_flat(&res, idx, qs.cand[total]);
            }
        }
        release(&qs);
    }
    /* The query as sent; "" when it is not UTF-8 (jansson refuses it), as before. */
    json_t *q = json_string(query ? query : "");
    char *qt = q ? json_dumps(q, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    json_decref(q);
    PUT_LIT(&b, "{\"query\":");
    if (qt)
        put(&b, qt, strlen(qt));
    else
        PUT_LIT(&b, "\"\"");
    free(qt);
    PUT_LIT(&b, ",\"total\":");
    put_uint(&b, total);
    PUT_LIT(&b, ",\"results\":[");
    put(&b, res.p, res.len);
    PUT_LIT(&b, "]}");
    free(res.p);
    *len = b.len;
    return b.p;
}

char *fs_airport_text(const fs_airport_t *a, bool full, size_t *len)
{
    buf_t b = {0}, out = {0};
    struct frag f;
    write_airport(&b, a, &f);
    if (!full) {
        b.len = f.flat;
        b.p[b.len] = '\0';
        *len = b.len;
        return b.p;
    }
    put_full(&out, b.p, &f, true);
    free(b.p);
    *len = out.len;
    return out.p;
}

json_t *fs_airport_index_search_json(const fs_airport_index_t *idx, const char *query, size_t limit, bool grouped)
{
    size_t len;
    char *text = fs_airport_index_search_text(idx, query, limit, grouped, &len);
    json_error_t err;
    json_t *body = json_loadb(text, len, 0, &err);
    free(text);
    return body;
}
