/* Asks: pending table keyed by correlation id, deadlines, replies and continuations.
 *
 * Life of an ask record: pending (in the hash, with a timer) -> done (on the completion list,
 * holding its status and reply) -> its continuation runs from the next run-queue pass -> freed.
 * While not yet run it also sits on its owner's list, so a restarting owner can cancel it:
 * the continuation then runs at once with FS_ECANCELED and the record is only marked (cb =
 * NULL), because it may sit on a completion list that is being walked. */
#include "runtime/actor_int.h"

#include "runtime/alloc.h"
#include "runtime/log.h"

#include <event2/event.h>
#include <stdlib.h>

/* ---- pending table ------------------------------------------------------------------------ */

/* Correlation ids are sequential, so the low bits spread evenly over a power-of-two table. */
static fsint_ask_t **bucket(fs_actor_system_t *sys, uint64_t corr_id)
{
    return &sys->buckets[corr_id & (sys->nbuckets - 1)];
}

static void grow(fs_actor_system_t *sys)
{
    size_t old_n = sys->nbuckets;
    fsint_ask_t **old = sys->buckets;
    sys->nbuckets = old_n ? old_n * 2 : 64;
    sys->buckets = fs_calloc(sys->nbuckets, sizeof *sys->buckets);
    for (size_t i = 0; i < old_n; i++) {
        for (fsint_ask_t *k = old[i], *next; k; k = next) {
            next = k->hnext;
            fsint_ask_t **b = bucket(sys, k->corr_id);
            k->hnext = *b;
            *b = k;
        }
    }
    free(old);
}

static void hash_insert(fs_actor_system_t *sys, fsint_ask_t *k)
{
    if (sys->st.pending_asks >= sys->nbuckets)
        grow(sys);
    fsint_ask_t **b = bucket(sys, k->corr_id);
    k->hnext = *b;
    *b = k;
    sys->st.pending_asks++;
}

static fsint_ask_t *hash_remove(fs_actor_system_t *sys, uint64_t corr_id)
{
    if (!sys->nbuckets)
        return NULL;
    for (fsint_ask_t **p = bucket(sys, corr_id); *p; p = &(*p)->hnext) {
        if ((*p)->corr_id == corr_id) {
            fsint_ask_t *k = *p;
            *p = k->hnext;
            k->hnext = NULL;
            sys->st.pending_asks--;
            return k;
        }
    }
    return NULL;
}

static void owner_link(fsint_ask_t *k)
{
    fs_actor_t *a = k->owner;
    k->oprev = NULL;
    k->onext = a->asks;
    if (a->asks)
        a->asks->oprev = k;
    a->asks = k;
}

static void owner_unlink(fsint_ask_t *k)
{
    if (!k->owner)
        return;
    if (k->oprev)
        k->oprev->onext = k->onext;
    else
        k->owner->asks = k->onext;
    if (k->onext)
        k->onext->oprev = k->oprev;
    k->owner = NULL;
    k->oprev = k->onext = NULL;
}

/* ---- completion ------------------------------------------------------------------------------ */

/* Moves a pending record to the completion list; the continuation runs on the next pass. */
static void finish(fsint_ask_t *k, int status, fs_msg_t *reply)
{
    fs_actor_system_t *sys = k->sys;
    event_free(k->timer);
    k->timer = NULL;
    k->done = true;
    k->status = status;
    k->reply = reply;
    k->cnext = NULL;
    if (sys->done_tail)
        sys->done_tail->cnext = k;
    else
        sys->done_head = k;
    sys->done_tail = k;
    fsint_schedule(sys);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    fsint_ask_t *k = arg;
    hash_remove(k->sys, k->corr_id);
    k->sys->st.ask_timeouts++;
    finish(k, FS_ETIMEOUT, NULL);
}

uint64_t fsint_ask_register(fs_actor_system_t *sys, fs_actor_t *owner, int timeout_ms, fs_reply_fn cb, void *arg)
{
    fsint_ask_t *k = FS_NEW(fsint_ask_t);
    k->corr_id = sys->next_corr++;
    k->sys = sys;
    k->cb = cb;
    k->arg = arg;
    k->owner = owner;
    if (owner)
        owner_link(k);
    k->timer = evtimer_new(sys->base, on_timeout, k);
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(k->timer, &tv);
    hash_insert(sys, k);
    sys->st.asks++;
    return k->corr_id;
}

void fsint_ask_forget(fs_actor_system_t *sys, uint64_t corr_id)
{
    fsint_ask_t *k = hash_remove(sys, corr_id);
    if (!k)
        return;
    sys->st.asks--;
    owner_unlink(k);
    event_free(k->timer);
    free(k);
}

void fsint_ask_complete(fs_actor_system_t *sys, uint64_t corr_id, int status, fs_msg_t *reply)
{
    fsint_ask_t *k = hash_remove(sys, corr_id);
    if (!k) {
        sys->st.late_replies++;
        fsint_msg_free(reply);
        return;
    }
    finish(k, status, reply);
}

void fsint_run_completions(fs_actor_system_t *sys)
{
    fsint_ask_t *k = sys->done_head;
    sys->done_head = sys->done_tail = NULL;
    while (k) {
        fsint_ask_t *next = k->cnext;
        owner_unlink(k);
        if (k->cb)
            k->cb(k->status, k->status == FS_OK ? k->reply : NULL, k->arg);
        fsint_msg_free(k->reply);
        free(k);
        k = next;
    }
}

void fsint_cancel_owned_asks(fs_actor_t *a)
{
    while (a->asks) {
        fsint_ask_t *k = a->asks;
        owner_unlink(k);
        fs_reply_fn cb = k->cb;
        k->cb = NULL;
        if (!k->done) {
            hash_remove(k->sys, k->corr_id);
            event_free(k->timer);
            k->timer = NULL;
            k->done = true;
            cb(FS_ECANCELED, NULL, k->arg);
            free(k);
        } else if (cb) {
            cb(FS_ECANCELED, NULL, k->arg);
        }
    }
}

void fsint_cancel_all_asks(fs_actor_system_t *sys)
{
    for (size_t i = 0; i < sys->nbuckets; i++) {
        while (sys->buckets[i]) {
            fsint_ask_t *k = hash_remove(sys, sys->buckets[i]->corr_id);
            finish(k, FS_ECANCELED, NULL);
        }
    }
}

void fsint_asks_free(fs_actor_system_t *sys)
{
    free(sys->buckets);
    sys->buckets = NULL;
    sys->nbuckets = 0;
}

/* ---- public ---------------------------------------------------------------------------------- */

int fs_actor_ask(fs_actor_t *to, fs_actor_t *from, uint32_t type, ProtobufCMessage *body, int timeout_ms,
                 fs_reply_fn cb, void *arg)
{
    if (!cb || timeout_ms < 0 || !fsint_body_matches(type, body)) {
        fs_pb_free(body);
        return FS_EINVAL;
    }
    fs_actor_system_t *sys = to->sys;
    uint64_t corr = fsint_ask_register(sys, from, timeout_ms, cb, arg);
    fs_msg_t *m = fsint_msg_new(sys, type, body);
    m->sender = from;
    m->reply_to = (fs_reply_addr_t){FS_WORKER_LOCAL, corr};
    m->deadline_ms = fs_now_ms() + timeout_ms;
    int rc = fsint_actor_push(to, m);
    if (rc != FS_OK) {
        fsint_ask_forget(sys, corr);
        fsint_msg_free(m);
    }
    return rc;
}

int fs_actor_reply(fs_msg_t *msg, uint32_t type, ProtobufCMessage *body)
{
    if (!msg->reply_to.corr_id || msg->_replied) {
        fs_pb_free(body);
        return FS_EINVAL;
    }
    msg->_replied = true;
    return fs_actor_reply_to(msg->_sys, msg->reply_to, FS_OK, type, body);
}

int fs_actor_reply_to(fs_actor_system_t *sys, fs_reply_addr_t to, int status, uint32_t type, ProtobufCMessage *body)
{
    if (!to.corr_id || status > 0) {
        fs_pb_free(body);
        return FS_EINVAL;
    }
    if (to.worker != FS_WORKER_LOCAL && to.worker != sys->worker) {
        if (!sys->remote_reply) {
            fs_pb_free(body);
            return FS_EUNAVAIL;
        }
        return sys->remote_reply(sys->remote_ctx, to, status, type, body);
    }
    fs_msg_t *reply = NULL;
    if (status == FS_OK) {
        reply = fsint_msg_new(sys, type, body);
    } else {
        fs_pb_free(body);
    }
    fsint_ask_complete(sys, to.corr_id, status, reply);
    return FS_OK;
}
