/* The L2 value format (see cache_int.h): a fixed header, then one zstd frame. Anything
 * that does not decode exactly is reported as corrupt, never trusted: Redis is shared with
 * other versions of this program and with people typing commands. */
#include "actors/cache/cache_int.h"

#include "runtime/alloc.h"

#include <stdlib.h>
#include <string.h>

static const unsigned char magic[3] = {'F', 'S', 'C'};

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

int cache_l2_encode(ZSTD_CCtx *cctx, int level, const char *value, size_t len, int64_t stored_at_ms, int ttl_ms,
                    char **out, size_t *out_len)
{
    if (len > CACHE_L2_MAX_VALUE)
        return -1;
    size_t cap = CACHE_L2_HEADER + ZSTD_compressBound(len);
    unsigned char *buf = fs_malloc(cap);
    memcpy(buf, magic, 3);
    buf[3] = CACHE_L2_VERSION;
    put_u32(buf + 4, (uint32_t)len);
    put_u64(buf + 8, (uint64_t)stored_at_ms);
    put_u32(buf + 16, (uint32_t)ttl_ms);
    put_u32(buf + 20, 0);
    size_t n = ZSTD_compressCCtx(cctx, buf + CACHE_L2_HEADER, cap - CACHE_L2_HEADER, value, len, level);
    if (ZSTD_isError(n)) {
        free(buf);
        return -1;
    }
    *out = (char *)buf;
    *out_len = CACHE_L2_HEADER + n;
    return 0;
}

int cache_l2_decode(ZSTD_DCtx *dctx, const char *buf, size_t n, char **value, size_t *len, int64_t *stored_at_ms,
                    int *ttl_ms)
{
    const unsigned char *p = (const unsigned char *)buf;
    if (n <= CACHE_L2_HEADER || memcmp(p, magic, 3) != 0 || p[3] != CACHE_L2_VERSION)
        return -1;
    uint32_t raw = get_u32(p + 4);
    uint32_t ttl = get_u32(p + 16);
    if (raw > CACHE_L2_MAX_VALUE || ttl > INT32_MAX)
        return -1;
    const void *frame = p + CACHE_L2_HEADER;
    size_t frame_len = n - CACHE_L2_HEADER;
    if (ZSTD_getFrameContentSize(frame, frame_len) != raw)
        return -1;
    char *out = fs_malloc(raw ? raw : 1);
    size_t got = ZSTD_decompressDCtx(dctx, out, raw, frame, frame_len);
    if (ZSTD_isError(got) || got != raw) {
        free(out);
        return -1;
    }
    *value = out;
    *len = raw;
    *stored_at_ms = (int64_t)get_u64(p + 8);
    *ttl_ms = (int)ttl;
    return 0;
}
