#include "runtime/alloc.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef FS_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

static void oom(size_t size)
{
    char msg[96];
    int n = snprintf(msg, sizeof msg, "{\"level\":\"fatal\",\"msg\":\"out of memory allocating %zu bytes\"}\n", size);
    if (n > 0 && write(STDERR_FILENO, msg, (size_t)n) < 0) {
        /* nothing left to do */
    }
    abort();
}

void *fs_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        oom(size);
    return p;
}

void *fs_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        oom(count * size);
    return p;
}

void *fs_realloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (!p)
        oom(size);
    return p;
}

char *fs_strdup(const char *s)
{
    return fs_strndup(s, strlen(s));
}

char *fs_strndup(const char *s, size_t n)
{
    char *p = fs_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *fs_sprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *out = NULL;
    int n = vasprintf(&out, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom(0);
    return out;
}

#ifdef FS_HAVE_JEMALLOC
static size_t jemalloc_stat(const char *name)
{
    /* Statistics are cached by jemalloc; bumping the epoch refreshes them. */
    uint64_t epoch = 1;
    size_t len = sizeof epoch;
    mallctl("epoch", &epoch, &len, &epoch, len);
    size_t value = 0;
    len = sizeof value;
    if (mallctl(name, &value, &len, NULL, 0) != 0)
        return 0;
    return value;
}

size_t fs_alloc_allocated_bytes(void)
{
    return jemalloc_stat("stats.allocated");
}

size_t fs_alloc_resident_bytes(void)
{
    return jemalloc_stat("stats.resident");
}
#else
size_t fs_alloc_allocated_bytes(void)
{
    return 0;
}

size_t fs_alloc_resident_bytes(void)
{
    return 0;
}
#endif
