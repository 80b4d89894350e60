/* Actor timers: libevent timers whose expiry queues a tick message in the actor's mailbox, so
 * the tick is handled in the actor's turn like any other message.
 *
 * A timer record lives in its actor's list until canceled, or, for a one-shot, until its tick
 * has been handled. A queued tick is checked against the list before it is handled, which is
 * what lets cancel (and restart) suppress ticks already in the mailbox. */
#include "runtime/actor_int.h"

#include "runtime/alloc.h"
#include "runtime/log.h"

#include <event2/event.h>
#include <stdlib.h>

static void arm(fsint_timer_t *t, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(t->ev, &tv);
}

static fsint_timer_t **find(fs_actor_t *a, uint64_t id)
{
    fsint_timer_t **p = &a->timers;
    while (*p && (*p)->id != id)
        p = &(*p)->next;
    return p;
}

static void unlink_free(fsint_timer_t **p)
{
    fsint_timer_t *t = *p;
    *p = t->next;
    event_free(t->ev);
    free(t);
}

static void on_fire(evutil_socket_t fd, short what, void *arg)
{
    fsint_timer_t *t = arg;
    fs_actor_t *a = t->actor;
    if (t->interval_ms > 0)
        arm(t, t->interval_ms);
    else
        t->fired = true;
    if (t->queued) /* the previous tick is still waiting: coalesce */
        return;
    fs_msg_t *m = fsint_msg_new(a->sys, t->type, NULL);
    m->timer_id = t->id;
    m->sender = a;
    if (fsint_actor_push(a, m) == FS_OK) {
        t->queued = true;
        return;
    }
    fs_debug("actor %s: timer tick %u refused (mailbox full)", a->name, t->type);
    fsint_msg_free(m);
    if (t->fired)
        unlink_free(find(a, t->id));
}

uint64_t fs_actor_timer_start(fs_actor_t *a, uint32_t type, int delay_ms, int interval_ms)
{
    if (a->status != ACTOR_RUNNING || a->stop_requested)
        return 0;
    fsint_timer_t *t = FS_NEW(fsint_timer_t);
    t->id = a->sys->next_timer++;
    t->actor = a;
    t->type = type;
    t->interval_ms = interval_ms > 0 ? interval_ms : 0;
    t->ev = evtimer_new(a->sys->base, on_fire, t);
    t->next = a->timers;
    a->timers = t;
    arm(t, delay_ms > 0 ? delay_ms : 0);
    return t->id;
}

int fs_actor_timer_cancel(fs_actor_t *a, uint64_t timer_id)
{
    fsint_timer_t **p = find(a, timer_id);
    if (!*p)
        return FS_EINVAL;
    unlink_free(p);
    return FS_OK;
}

bool fsint_timer_accept(fs_actor_t *a, uint64_t timer_id)
{
    fsint_timer_t **p = find(a, timer_id);
    if (!*p)
        return false;
    (*p)->queued = false;
    if ((*p)->fired)
        unlink_free(p);
    return true;
}

void fsint_timers_cancel_all(fs_actor_t *a)
{
    while (a->timers)
        unlink_free(&a->timers);
}
