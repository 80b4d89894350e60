/* Actor system: actors, mailboxes, the run queue and supervision. Asks live in actor_ask.c,
 * timers in actor_timer.c, the type registry in msgtype.c. */
#include "runtime/actor_int.h"

#include "runtime/alloc.h"
#include "runtime/config.h"
#include "runtime/log.h"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t fs_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *fs_status_str(int status)
{
    switch (status) {
    case FS_OK: return "ok";
    case FS_EFULL: return "mailbox full";
    case FS_ENOACTOR: return "no such actor";
    case FS_ETIMEOUT: return "timed out";
    case FS_ESTOPPED: return "actor stopped";
    case FS_ECANCELED: return "canceled";
    case FS_EFAIL: return "handler failed";
    case FS_EINVAL: return "invalid argument";
    case FS_EPROTO: return "malformed message";
    case FS_EUNAVAIL: return "worker unavailable";
    case FS_EEXIST: return "already exists";
    default: return "unknown error";
    }
}

/* ---- run queue ---------------------------------------------------------------------------- */

static void rq_push(fs_actor_system_t *sys, fs_actor_t *a)
{
    if (sys->rq_len == sys->rq_cap) {
        size_t cap = sys->rq_cap ? sys->rq_cap * 2 : 16;
        fs_actor_t **rq = fs_malloc(cap * sizeof *rq);
        for (size_t i = 0; i < sys->rq_len; i++)
            rq[i] = sys->rq[(sys->rq_head + i) % sys->rq_cap];
        free(sys->rq);
        sys->rq = rq, sys->rq_cap = cap, sys->rq_head = 0;
    }
    sys->rq[(sys->rq_head + sys->rq_len++) % sys->rq_cap] = a;
}

static fs_actor_t *rq_pop(fs_actor_system_t *sys)
{
    fs_actor_t *a = sys->rq[sys->rq_head];
    sys->rq_head = (sys->rq_head + 1) % sys->rq_cap;
    sys->rq_len--;
    return a;
}

/* xorshift64*: small, seedable, and the same sequence on every platform. */
static uint64_t rng_next(fs_actor_system_t *sys)
{
    sys->rng ^= sys->rng >> 12;
    sys->rng ^= sys->rng << 25;
    sys->rng ^= sys->rng >> 27;
    return sys->rng * 2685821657736338717ULL;
}

/* Deterministic mode: a seeded Fisher-Yates shuffle of the queue at the start of each pass, so
 * an ordering bug found with one seed replays with the same seed. */
static void rq_shuffle(fs_actor_system_t *sys)
{
    for (size_t i = sys->rq_len; i > 1; i--) {
        size_t j = rng_next(sys) % i;
        fs_actor_t **x = &sys->rq[(sys->rq_head + i - 1) % sys->rq_cap];
        fs_actor_t **y = &sys->rq[(sys->rq_head + j) % sys->rq_cap];
        fs_actor_t *t = *x;
        *x = *y, *y = t;
    }
}

/* A zero-timeout timer, not event_active: libevent runs events activated from a callback in
 * the same pass without polling, whereas a due timer is only seen after the next poll, so
 * every drain pass is preceded by a look at the sockets. */
void fsint_schedule(fs_actor_system_t *sys)
{
    static const struct timeval zero = {0, 0};
    if (sys->scheduled)
        return;
    sys->scheduled = true;
    evtimer_add(sys->run_ev, &zero);
}

/* ---- mailbox ------------------------------------------------------------------------------- */

static void mbox_append(fs_actor_t *a, fs_msg_t *m)
{
    m->_next = NULL;
    if (a->tail)
        a->tail->_next = m;
    else
        a->head = m;
    a->tail = m;
    a->depth++;
}

static fs_msg_t *mbox_pop(fs_actor_t *a)
{
    fs_msg_t *m = a->head;
    a->head = m->_next;
    if (!a->head)
        a->tail = NULL;
    a->depth--;
    return m;
}

fs_msg_t *fsint_msg_new(fs_actor_system_t *sys, uint32_t type, ProtobufCMessage *body)
{
    fs_msg_t *m = FS_NEW(fs_msg_t);
    m->type = type;
    m->body = body;
    m->_sys = sys;
    m->sender_worker = sys->worker;
    m->reply_to.worker = FS_WORKER_LOCAL;
    return m;
}

void fsint_msg_free(fs_msg_t *m)
{
    if (!m)
        return;
    fs_pb_free(m->body);
    free(m->_sender_name);
    free(m);
}

/* The answer a queued ask gets when it will never be handled. */
static void refuse(fs_msg_t *m, int status)
{
    if (m->reply_to.corr_id && !m->_replied)
        fs_actor_reply_to(m->_sys, m->reply_to, status, 0, NULL);
    m->_replied = true;
}

int fsint_actor_push(fs_actor_t *to, fs_msg_t *m)
{
    if (to->status != ACTOR_RUNNING || to->stop_requested)
        return FS_ESTOPPED;
    if (to->depth >= to->capacity) {
        to->st.rejected++;
        return FS_EFULL;
    }
    m->_sys = to->sys;
    mbox_append(to, m);
    if (!to->queued && !to->in_turn) {
        to->queued = true;
        rq_push(to->sys, to);
        fsint_schedule(to->sys);
    }
    return FS_OK;
}

bool fsint_body_matches(uint32_t type, const ProtobufCMessage *body)
{
    const ProtobufCMessageDescriptor *d = fs_msg_type_descriptor(type);
    return !body || !d || body->descriptor == d;
}

int fs_actor_send(fs_actor_t *to, fs_actor_t *from, uint32_t type, ProtobufCMessage *body)
{
    if (!fsint_body_matches(type, body)) {
        fs_pb_free(body);
        return FS_EINVAL;
    }
    fs_msg_t *m = fsint_msg_new(to->sys, type, body);
    m->sender = from;
    int rc = fsint_actor_push(to, m);
    if (rc != FS_OK)
        fsint_msg_free(m);
    return rc;
}

/* ---- supervision ---------------------------------------------------------------------------- */

static int restart_limit(const fs_actor_t *a)
{
    return a->spec.restart_limit == 0 ? FS_ACTOR_MAX_RESTARTS : a->spec.restart_limit;
}

/* Restart intensity as in Erlang/OTP: more than `limit` restarts inside the window means the
 * fault is not transient, so restarting again would only hide it. The ring holds the times of
 * the last `limit` restarts; the oldest one decides. */
static bool may_restart(fs_actor_t *a)
{
    int limit = restart_limit(a);
    if (limit < 0)
        return false;
    int window = a->spec.restart_window_ms ? a->spec.restart_window_ms : FS_ACTOR_RESTART_WINDOW_MS;
    int64_t now = fs_now_ms(), oldest = a->restart_times[a->restart_next];
    if (oldest && now - oldest < window)
        return false;
    a->restart_times[a->restart_next] = now;
    a->restart_next = (a->restart_next + 1) % limit;
    return true;
}

/* Ends the current incarnation: timers, then the asks it made (their continuations may
 * still read the state), then the state itself. */
static void end_incarnation(fs_actor_t *a)
{
    fsint_timers_cancel_all(a);
    fsint_cancel_owned_asks(a);
    if (a->spec.stop)
        a->spec.stop(a, a->state);
    a->state = NULL;
}

static void restart(fs_actor_t *a)
{
    end_incarnation(a);
    a->st.restarts++;
    a->state = a->spec.init ? a->spec.init(a, a->spec.arg) : NULL;
}

static void stop_now(fs_actor_t *a)
{
    if (a->status == ACTOR_STOPPED)
        return;
    a->status = ACTOR_STOPPED;
    while (a->head) {
        fs_msg_t *m = mbox_pop(a);
        refuse(m, FS_ESTOPPED);
        fsint_msg_free(m);
    }
    end_incarnation(a);
}

static void escalate(fs_actor_t *a, int status)
{
    fs_actor_system_t *sys = a->sys;
    fs_error("actor %s failed past its restart limit (%s): escalating", a->name, fs_status_str(status));
    stop_now(a);
    if (sys->on_escalate)
        sys->on_escalate(a, status, sys->escalate_arg);
}

static void on_failure(fs_actor_t *a, fs_msg_t *m, int status)
{
    a->st.failures++;
    refuse(m, FS_EFAIL);
    if (a->stop_requested)
        return;
    if (!may_restart(a)) {
        escalate(a, status);
        return;
    }
    fs_warn("actor %s: handler failed on type %u (%s); restarting", a->name, m->type, fs_status_str(status));
    restart(a);
}

/* ---- dispatch ---------------------------------------------------------------------------- */

static void dispatch(fs_actor_t *a, fs_msg_t *m)
{
    if (m->deadline_ms && fs_now_ms() > m->deadline_ms) {
        a->st.expired++;
        return;
    }
    if (m->timer_id && !fsint_timer_accept(a, m->timer_id))
        return;
    int rc = a->spec.behaviour(a, a->state, m);
    a->st.processed++;
    if (rc != FS_OK)
        on_failure(a, m, rc < 0 ? rc : FS_EFAIL);
}

static void run_actor(fs_actor_system_t *sys, fs_actor_t *a)
{
    a->in_turn = true;
    for (int i = 0; i < sys->batch && a->head && a->status == ACTOR_RUNNING && !a->stop_requested; i++) {
        fs_msg_t *m = mbox_pop(a);
        dispatch(a, m);
        fsint_msg_free(m);
    }
    a->in_turn = false;
    if (a->stop_requested)
        stop_now(a);
}

/* One pass: completions first (they may refill mailboxes), then each actor queued at the start
 * of the pass gets one turn; actors queued during the pass wait for the next one. */
static void on_run(evutil_socket_t fd, short what, void *arg)
{
    fs_actor_system_t *sys = arg;
    sys->scheduled = false;
    sys->st.passes++;
    fsint_run_completions(sys);
    if (sys->seed)
        rq_shuffle(sys);
    for (size_t n = sys->rq_len; n > 0; n--) {
        fs_actor_t *a = rq_pop(sys);
        a->queued = false;
        if (a->status != ACTOR_RUNNING)
            continue;
        run_actor(sys, a);
        if (a->head && a->status == ACTOR_RUNNING) {
            a->queued = true;
            rq_push(sys, a);
        }
    }
    if (sys->rq_len || sys->done_head)
        fsint_schedule(sys);
}

/* ---- system -------------------------------------------------------------------------------- */

static uint64_t seed_from_env(void)
{
    const char *s = getenv("FS_ACTOR_SEED");
    return s && *s ? strtoull(s, NULL, 10) : 0;
}

fs_actor_system_t *fs_actor_system_new(struct event_base *base, const fs_actor_system_opts_t *opts)
{
    fs_actor_system_opts_t o = opts ? *opts : (fs_actor_system_opts_t){.worker = -1};
    fs_actor_system_t *sys = FS_NEW(fs_actor_system_t);
    sys->base = base;
    sys->run_ev = evtimer_new(base, on_run, sys);
    sys->batch = o.batch > 0 ? o.batch : fs_cfg && fs_cfg->actor_batch > 0 ? fs_cfg->actor_batch : FS_ACTOR_BATCH;
    sys->default_capacity = o.mailbox_capacity ? o.mailbox_capacity
                            : fs_cfg && fs_cfg->mailbox_capacity > 0 ? (size_t)fs_cfg->mailbox_capacity
                                                                     : FS_ACTOR_MAILBOX_CAPACITY;
    sys->seed = o.seed ? o.seed : seed_from_env();
    sys->rng = sys->seed;
    sys->st.seed = sys->seed;
    sys->worker = o.worker;
    sys->on_escalate = o.on_escalate;
    sys->escalate_arg = o.escalate_arg;
    sys->next_corr = 1;
    sys->next_timer = 1;
    if (sys->seed)
        fs_info("actor system: deterministic run-queue order, seed=%llu", (unsigned long long)sys->seed);
    return sys;
}

void fs_actor_system_free(fs_actor_system_t *sys)
{
    if (!sys)
        return;
    /* Newest first, as a supervisor tears down its children. */
    size_t n = 0;
    for (fs_actor_t *a = sys->actors; a; a = a->next_all)
        n++;
    fs_actor_t **all = fs_calloc(n, sizeof *all);
    n = 0;
    for (fs_actor_t *a = sys->actors; a; a = a->next_all)
        all[n++] = a;
    while (n > 0)
        stop_now(all[--n]);
    fsint_cancel_all_asks(sys);
    fsint_run_completions(sys);
    fsint_asks_free(sys);
    for (fs_actor_t *a = sys->actors, *next; a; a = next) {
        next = a->next_all;
        free(a->restart_times);
        free(a->name);
        free(a);
    }
    free(all);
    event_free(sys->run_ev);
    free(sys->rq);
    free(sys);
}

struct event_base *fs_actor_system_base(const fs_actor_system_t *sys)
{
    return sys->base;
}

int fs_actor_system_worker(const fs_actor_system_t *sys)
{
    return sys->worker;
}

void fs_actor_system_stats(const fs_actor_system_t *sys, fs_actor_system_stats_t *out)
{
    *out = sys->st;
}

void fs_actor_system_foreach(const fs_actor_system_t *sys, fs_actor_visit_fn fn, void *arg)
{
    for (fs_actor_t *a = sys->actors; a; a = a->next_all) {
        if (a->superseded)
            continue;
        fs_actor_stats_t st;
        fs_actor_get_stats(a, &st);
        fn(a->name, &st, arg);
    }
}

void fsint_system_set_remote(fs_actor_system_t *sys, fsint_remote_reply_fn fn, void *ctx)
{
    sys->remote_reply = fn;
    sys->remote_ctx = ctx;
}

/* ---- actors -------------------------------------------------------------------------------- */

static fs_actor_t *find(const fs_actor_system_t *sys, const char *name)
{
    for (fs_actor_t *a = sys->actors; a; a = a->next_all)
        if (!a->superseded && strcmp(a->name, name) == 0)
            return a;
    return NULL;
}

fs_actor_t *fs_actor_spawn(fs_actor_system_t *sys, const fs_actor_spec_t *spec)
{
    fs_actor_t *old = find(sys, spec->name);
    if (old && old->status == ACTOR_RUNNING)
        return NULL;
    if (old) /* a stopped shell gives up its name (and its place in the stats) */
        old->superseded = true;
    fs_actor_t *a = FS_NEW(fs_actor_t);
    a->sys = sys;
    a->spec = *spec;
    a->name = fs_strdup(spec->name);
    a->spec.name = a->name;
    a->capacity = spec->mailbox_capacity ? spec->mailbox_capacity : sys->default_capacity;
    int limit = restart_limit(a);
    a->restart_times = fs_calloc(limit > 0 ? (size_t)limit : 1, sizeof *a->restart_times);
    if (sys->actors_tail)
        sys->actors_tail->next_all = a;
    else
        sys->actors = a;
    sys->actors_tail = a;
    a->state = spec->init ? spec->init(a, spec->arg) : NULL;
    return a;
}

fs_actor_t *fs_actor_lookup(const fs_actor_system_t *sys, const char *name)
{
    fs_actor_t *a = find(sys, name);
    return a && a->status == ACTOR_RUNNING && !a->stop_requested ? a : NULL;
}

const char *fs_actor_name(const fs_actor_t *a)
{
    return a->name;
}

fs_actor_system_t *fs_actor_system(const fs_actor_t *a)
{
    return a->sys;
}

void fs_actor_get_stats(const fs_actor_t *a, fs_actor_stats_t *out)
{
    *out = a->st;
    out->depth = a->depth;
    out->capacity = a->capacity;
    out->running = a->status == ACTOR_RUNNING && !a->stop_requested;
}

void fs_actor_stop(fs_actor_t *a)
{
    if (a->in_turn)
        a->stop_requested = true;
    else
        stop_now(a);
}
