/* Allocation that never returns NULL.
 *
 * Like Redis' zmalloc, an allocation failure aborts the process (the master restarts the
 * worker), so callers carry no NULL branches that could never be tested. Input sizes are
 * bounded at the edges (body limits, frame limits) instead.
 */
#ifndef FS_ALLOC_H
#define FS_ALLOC_H

#include <stddef.h>

void *fs_malloc(size_t size);
void *fs_calloc(size_t count, size_t size);
void *fs_realloc(void *ptr, size_t size);
char *fs_strdup(const char *s);
char *fs_strndup(const char *s, size_t n);
/* printf into a new string; the caller frees it with free(). */
char *fs_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define FS_NEW(type) ((type *)fs_calloc(1, sizeof(type)))

/* jemalloc statistics (0 when built without jemalloc, e.g. under ASan). */
size_t fs_alloc_allocated_bytes(void);
size_t fs_alloc_resident_bytes(void);

#endif
