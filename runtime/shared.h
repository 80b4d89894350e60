/* State shared between the master and its workers through an anonymous MAP_SHARED mapping
 * created before the first fork. Only counters the master writes and workers read (worker
 * restarts for /metrics); everything else travels as messages. */
#ifndef FS_SHARED_H
#define FS_SHARED_H

#include <stdatomic.h>

#define FS_MAX_WORKERS 256

typedef struct fs_shared {
    atomic_ulong restarts_total;
    atomic_ulong restarts[FS_MAX_WORKERS]; /* per slot */
    atomic_int worker_count;
} fs_shared_t;

/* Maps the shared page (once, in the master, before forking). */
fs_shared_t *fs_shared_create(void);
/* The mapping of this process, or NULL outside `serve`. */
extern fs_shared_t *fs_shared;

#endif
