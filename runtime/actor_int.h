/* Private layout of the actor runtime, shared by runtime/actor.c, actor_ask.c, actor_timer.c
 * and msgtype.c. Nothing outside runtime/actor*.c includes this. */
#ifndef FS_ACTOR_INT_H
#define FS_ACTOR_INT_H

#include "runtime/actor.h"

struct event;

typedef struct fsint_timer {
    uint64_t id;
    fs_actor_t *actor;
    uint32_t type;
    int interval_ms;
    bool queued;     /* a tick of it waits in the mailbox */
    bool fired;      /* one-shot that fired: kept until its tick is handled */
    struct event *ev;
    struct fsint_timer *next;
} fsint_timer_t;

typedef struct fsint_ask {
    uint64_t corr_id;
    fs_actor_system_t *sys;
    fs_reply_fn cb;
    void *arg;
    fs_actor_t *owner;           /* the asking actor, or NULL */
    struct event *timer;
    bool done;                   /* on the completion list */
    int status;
    fs_msg_t *reply;
    struct fsint_ask *hnext;     /* hash chain (while pending) */
    struct fsint_ask *oprev, *onext; /* owner's list (until the continuation ran) */
    struct fsint_ask *cnext;     /* completion list */
} fsint_ask_t;

typedef enum { ACTOR_RUNNING, ACTOR_STOPPED } actor_status_t;

struct fs_actor {
    fs_actor_system_t *sys;
    char *name;
    fs_actor_spec_t spec;
    void *state;
    actor_status_t status;
    bool in_turn, queued, stop_requested, superseded;
    fs_msg_t *head, *tail;
    size_t depth, capacity;
    fs_actor_stats_t st;
    int64_t *restart_times;      /* ring of the last `restart_limit` restarts */
    int restart_next;
    fsint_timer_t *timers;
    fsint_ask_t *asks;           /* asks this actor made that have not completed */
    struct fs_actor *next_all;
};

struct fs_actor_system {
    struct event_base *base;
    struct event *run_ev;
    bool scheduled;
    fs_actor_t **rq;             /* ring buffer run queue */
    size_t rq_head, rq_len, rq_cap;
    fs_actor_t *actors, *actors_tail;
    int batch;
    size_t default_capacity;
    uint64_t seed, rng;
    int worker;
    fs_escalate_fn on_escalate;
    void *escalate_arg;
    uint64_t next_corr, next_timer;
    fsint_ask_t **buckets;
    size_t nbuckets;
    fsint_ask_t *done_head, *done_tail;
    fsint_remote_reply_fn remote_reply;
    void *remote_ctx;
    fs_actor_system_stats_t st;
};

void fsint_schedule(fs_actor_system_t *sys);
/* False when `type` is registered with a descriptor other than the body's. */
bool fsint_body_matches(uint32_t type, const ProtobufCMessage *body);
void fsint_run_completions(fs_actor_system_t *sys);
/* Completes every ask the actor made with FS_ECANCELED (synchronously). */
void fsint_cancel_owned_asks(fs_actor_t *a);
void fsint_cancel_all_asks(fs_actor_system_t *sys);
void fsint_asks_free(fs_actor_system_t *sys);
void fsint_timers_cancel_all(fs_actor_t *a);
/* Called before a tick is handled: false when its timer was canceled meanwhile. */
bool fsint_timer_accept(fs_actor_t *a, uint64_t timer_id);

#endif
