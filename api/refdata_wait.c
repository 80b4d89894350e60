/* Requests that need the worker's reference data before its first load has finished: they
 * wait for it (parked) rather than fail, within a bound. */
#include "api/routes.h"
#include "runtime/alloc.h"
#include "runtime/worker.h"
#include "storage/refdata_live.h"

#include <event2/event.h>
#include <stdlib.h>

/* Longest wait for the worker's first load; a slow machine (or valgrind) may take several seconds
 * to build the indexes, a database that hangs would take forever. */
#define PARK_MAX_MS 30000

/* A request that arrived during the worker's first load: it runs again when that load has
 * finished (with the data, or to answer 503 if the load failed), or answers 503 itself after
 * PARK_MAX_MS (a database that hangs instead of refusing). */
typedef struct parked {
    fs_handler_fn handler;
    fs_req_t *req; /* NULL once the deadline has answered it */
    struct event *deadline;
} parked_t;

static void on_park_deadline(evutil_socket_t fd, short what, void *arg)
{
    parked_t *p = arg;
    fs_reply_unavailable(p->req, 1, "Reference data is loading");
    p->req = NULL;
}

static void on_first_load(const fs_refdata_t *data, const char *error, void *arg)
{
    parked_t *p = arg;
    if (p->req)
        p->handler(p->req);
    event_free(p->deadline);
    free(p);
}

/* The bundle, or NULL after answering 503 or parking the request (the handler is then called
 * again with it later). */
const fs_refdata_t *fs_api_refdata_or_reply(fs_req_t *req, fs_handler_fn handler)
{
    const fs_refdata_t *data = fs_refdata_current();
    if (data)
        return data;
    parked_t *p = FS_NEW(parked_t);
    if (fs_refdata_live_wait_first(on_first_load, p)) {
        p->handler = handler;
        p->req = req;
        p->deadline = evtimer_new(fs_worker->base, on_park_deadline, p);
        struct timeval tv = {PARK_MAX_MS / 1000, (PARK_MAX_MS % 1000) * 1000};
        evtimer_add(p->deadline, &tv);
        return NULL;
    }
    free(p);
    fs_reply_unavailable(req, 1, "Reference data is loading");
    return NULL;
}

