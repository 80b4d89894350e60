/* Private to actors/cache: the L1 table and the L2 value format, shared by cache.c,
 * l1.c and codec.c (and exercised directly by tests/test_cache.c). */
#ifndef FS_CACHE_INT_H
#define FS_CACHE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zstd.h>

/* Message types of the cache actor (range 200-299, schemas/cache.proto). Local to a worker,
 * so they are not registered. */
enum {
    FS_CACHE_MSG_LOOKUP = 200,       /* ask, fs.cache.Lookup -> fs.cache.LookupReply */
    FS_CACHE_MSG_LOOKUP_REPLY = 201,
    FS_CACHE_MSG_STORE = 202,        /* fs.cache.Store */
    FS_CACHE_MSG_ABANDON = 203,      /* fs.cache.Key */
    FS_CACHE_MSG_FORGET = 204,       /* fs.cache.Key */
};

/* A 64-bit hash of `n` bytes (8 bytes per step; well mixed in the low bits). */
uint64_t cache_hash(const void *data, size_t n);

/*--- values ------------------------------------------------------------------------------
 * A value shared, without copying, by L1 and the replies in flight to lookups (which release
 * their reference in the asker's continuation). Loop thread only: the count is not atomic. */
typedef struct cache_blob {
    unsigned refs;
    size_t len;
    char *data; /* owned; never NULL */
} cache_blob_t;

/* Takes ownership of `data` (malloc'd, or NULL when len is 0); one reference. */
cache_blob_t *cache_blob_new(char *data, size_t len);
static inline cache_blob_t *cache_blob_ref(cache_blob_t *b)
{
    b->refs++;
    return b;
}
void cache_blob_unref(cache_blob_t *b);

/*--- L1: LRU with TTL --------------------------------------------------------------------*/

typedef struct cache_entry {
    struct cache_entry *hnext;      /* bucket chain */
    struct cache_entry *prev, *next; /* LRU list, most recent first */
    uint64_t hash;
    int64_t expires_ms;  /* fs_now_ms() clock */
    int64_t stored_ms;   /* fs_now_ms() clock; may be in the past of this process (L2 age) */
    cache_blob_t *blob;  /* one reference */
    size_t key_len;
    char key[];          /* NUL-terminated */
} cache_entry_t;

typedef struct cache_l1 {
    cache_entry_t **buckets;
    size_t nbuckets;
    size_t count, bytes;          /* bytes: sum of value lengths (the bound applies to it) */
    size_t max_entries, max_bytes;
    cache_entry_t lru;            /* sentinel: lru.next is the most recent, lru.prev the oldest */
    unsigned long long evictions; /* dropped for room or found expired */
} cache_l1_t;

void cache_l1_init(cache_l1_t *l1, size_t max_entries, size_t max_bytes);
/* Frees every entry and the table. */
void cache_l1_clear(cache_l1_t *l1);
/* The live entry for the key (made most recent), or NULL. An expired entry found on the way
 * is freed, so it is never served. The entry stays valid until the next put/remove/clear. */
cache_entry_t *cache_l1_get(cache_l1_t *l1, const char *key, size_t klen, uint64_t hash, int64_t now_ms);
/* Inserts or replaces. Takes the caller's reference to `blob` in every case. Evicts the least
 * recently used entries until both bounds hold. Returns the entry, or NULL when the value
 * alone is larger than max_bytes or already expired (then the reference is dropped, and an
 * older entry for the key goes too). */
cache_entry_t *cache_l1_put(cache_l1_t *l1, const char *key, size_t klen, uint64_t hash, cache_blob_t *blob,
                            int64_t stored_ms, int64_t expires_ms, int64_t now_ms);
/* Drops the key; returns whether it was there. */
bool cache_l1_remove(cache_l1_t *l1, const char *key, size_t klen, uint64_t hash);

/*--- L2 value format ----------------------------------------------------------------------
 * 24-byte header, little-endian, then one zstd frame (with its content size):
 *   0  magic "FSC" + format version (1)
 *   4  uncompressed length (u32)
 *   8  stored-at, milliseconds since the epoch (u64): hits report their age from it
 *  16  TTL in milliseconds (u32): an L2 hit lives in L1 only as long as it has left in L2
 *  20  reserved (0)
 */
#define CACHE_L2_HEADER 24
#define CACHE_L2_VERSION 1
#define CACHE_L2_MAX_VALUE (256u << 20) /* a header claiming more is corrupt */

/* Encodes into a new buffer (*out, *out_len). Returns 0, or -1 on a zstd error. */
int cache_l2_encode(ZSTD_CCtx *cctx, int level, const char *value, size_t len, int64_t stored_at_ms, int ttl_ms,
                    char **out, size_t *out_len);
/* Decodes a stored value into a new buffer (*value, *len; never NULL on success). Returns 0,
 * or -1 when the bytes are not a value of this format (wrong magic or version, truncated,
 * lengths that disagree, a zstd error). */
int cache_l2_decode(ZSTD_DCtx *dctx, const char *buf, size_t n, char **value, size_t *len, int64_t *stored_at_ms,
                    int *ttl_ms);

#endif
