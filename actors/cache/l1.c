/* L1 of the cache actor: a chained hash table (power-of-two buckets, grown at load 1) and a
 * doubly-linked LRU list through the same entries, so get, put and evict are O(1). Each entry
 * is one allocation holding its key; the value is a shared blob whose buffer came from the
 * body of a Store message or a decompressed L2 value, so it is never copied here. */
#include "actors/cache/cache_int.h"

#include "runtime/alloc.h"

#include <stdlib.h>
#include <string.h>

static inline uint64_t rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t fmix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

/* MurmurHash3-style mixing, 8 bytes per step: keys are ~50-100 bytes and hashed once per
 * lookup, so a byte-at-a-time hash would be a visible part of an L1 hit. */
uint64_t cache_hash(const void *data, size_t n)
{
    const unsigned char *p = data;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (n * 0x87c37b91114253d5ULL);
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t k;
        memcpy(&k, p, 8);
        k *= 0x87c37b91114253d5ULL;
        k = rotl(k, 31) * 0x4cf5ad432745937fULL;
        h = rotl(h ^ k, 27) * 5 + 0x52dce729;
    }
    uint64_t k = 0;
    memcpy(&k, p, n);
    h ^= k * 0x4cf5ad432745937fULL;
    return fmix(h);
}

cache_blob_t *cache_blob_new(char *data, size_t len)
{
    cache_blob_t *b = FS_NEW(cache_blob_t);
    b->refs = 1;
    b->len = len;
    b->data = data ? data : fs_calloc(1, 1);
    return b;
}

void cache_blob_unref(cache_blob_t *b)
{
    if (b && --b->refs == 0) {
        free(b->data);
        free(b);
    }
}

void cache_l1_init(cache_l1_t *l1, size_t max_entries, size_t max_bytes)
{
    memset(l1, 0, sizeof *l1);
    l1->max_entries = max_entries;
    l1->max_bytes = max_bytes;
    l1->lru.next = l1->lru.prev = &l1->lru;
    l1->nbuckets = 64;
    l1->buckets = fs_calloc(l1->nbuckets, sizeof *l1->buckets);
}

static void entry_free(cache_entry_t *e)
{
    cache_blob_unref(e->blob);
    free(e);
}

void cache_l1_clear(cache_l1_t *l1)
{
    for (cache_entry_t *e = l1->lru.next, *next; e != &l1->lru; e = next) {
        next = e->next;
        entry_free(e);
    }
    free(l1->buckets);
    l1->buckets = NULL;
    l1->count = l1->bytes = 0;
    l1->lru.next = l1->lru.prev = &l1->lru;
}

static cache_entry_t **slot(cache_l1_t *l1, uint64_t hash)
{
    return &l1->buckets[hash & (l1->nbuckets - 1)];
}

/* The link pointing at the entry for the key (for unlinking), or NULL. */
static cache_entry_t **find_link(cache_l1_t *l1, const char *key, size_t klen, uint64_t hash)
{
    for (cache_entry_t **p = slot(l1, hash); *p; p = &(*p)->hnext) {
        cache_entry_t *e = *p;
        if (e->hash == hash && e->key_len == klen && memcmp(e->key, key, klen) == 0)
            return p;
    }
    return NULL;
}

static void lru_unlink(cache_entry_t *e)
{
    e->prev->next = e->next;
    e->next->prev = e->prev;
}

static void lru_push_front(cache_l1_t *l1, cache_entry_t *e)
{
    e->prev = &l1->lru;
    e->next = l1->lru.next;
    l1->lru.next->prev = e;
    l1->lru.next = e;
}

static void drop_at(cache_l1_t *l1, cache_entry_t **link)
{
    cache_entry_t *e = *link;
    *link = e->hnext;
    lru_unlink(e);
    l1->count--;
    l1->bytes -= e->blob->len;
    entry_free(e);
}

static void drop(cache_l1_t *l1, cache_entry_t *e)
{
    cache_entry_t **p = slot(l1, e->hash);
    while (*p != e)
        p = &(*p)->hnext;
    drop_at(l1, p);
}

static void grow(cache_l1_t *l1)
{
    size_t old_n = l1->nbuckets;
    cache_entry_t **old = l1->buckets;
    l1->nbuckets = old_n * 2;
    l1->buckets = fs_calloc(l1->nbuckets, sizeof *l1->buckets);
    for (size_t i = 0; i < old_n; i++) {
        for (cache_entry_t *e = old[i], *next; e; e = next) {
            next = e->hnext;
            cache_entry_t **p = slot(l1, e->hash);
            e->hnext = *p;
            *p = e;
        }
    }
    free(old);
}

cache_entry_t *cache_l1_get(cache_l1_t *l1, const char *key, size_t klen, uint64_t hash, int64_t now_ms)
{
    cache_entry_t **p = find_link(l1, key, klen, hash);
    if (!p)
        return NULL;
    cache_entry_t *e = *p;
    if (now_ms >= e->expires_ms) {
        l1->evictions++;
        drop_at(l1, p);
        return NULL;
    }
    if (l1->lru.next != e) {
        lru_unlink(e);
        lru_push_front(l1, e);
    }
    return e;
}

bool cache_l1_remove(cache_l1_t *l1, const char *key, size_t klen, uint64_t hash)
{
    cache_entry_t **p = find_link(l1, key, klen, hash);
    if (!p)
        return false;
    drop_at(l1, p);
    return true;
}

cache_entry_t *cache_l1_put(cache_l1_t *l1, const char *key, size_t klen, uint64_t hash, cache_blob_t *blob,
                            int64_t stored_ms, int64_t expires_ms, int64_t now_ms)
{
    size_t len = blob->len;
    cache_l1_remove(l1, key, klen, hash);
    if (len > l1->max_bytes || expires_ms <= now_ms || l1->max_entries == 0) {
        cache_blob_unref(blob);
        return NULL;
    }
    while (l1->count >= l1->max_entries || l1->bytes + len > l1->max_bytes) {
        l1->evictions++;
        drop(l1, l1->lru.prev);
    }
    cache_entry_t *e = fs_malloc(sizeof *e + klen + 1);
    e->hash = hash;
    e->expires_ms = expires_ms;
    e->stored_ms = stored_ms;
    e->blob = blob;
    e->key_len = klen;
    memcpy(e->key, key, klen);
    e->key[klen] = '\0';
    if (l1->count >= l1->nbuckets)
        grow(l1);
    cache_entry_t **p = slot(l1, hash);
    e->hnext = *p;
    *p = e;
    lru_push_front(l1, e);
    l1->count++;
    l1->bytes += len;
    return e;
}
