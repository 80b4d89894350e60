/* The actor runtime of one worker.
 *
 * An actor is a name, a behaviour function, private state built by an init callback, a bounded
 * mailbox and counters. One fs_actor_system_t per worker is bound to the worker's libevent
 * event_base and everything here runs on that loop's thread (the thread pool is the only other
 * thread; it never touches actors).
 *
 * Scheduling. Sending to an actor whose mailbox was empty puts it on the system's run queue.
 * One libevent callback (a zero-timeout timer, so the loop polls I/O before every pass) drains
 * the run queue: each actor gets at most `batch` messages per turn, actors that still have
 * messages go back to the tail, and the pass stops at the actor that was last when it began
 * (Pony's stop-at-starting-head), then returns to the loop. A flooded actor therefore never
 * starves other actors, timers or network I/O.
 *
 * Message lifetime rule. A message and its body belong to the runtime from the moment they
 * are sent (even when the send fails: the body is freed then). The handler sees them only for
 * the duration of the call; the runtime frees both after the handler returns. Copy what you
 * keep. To answer an ask later (after a database call), keep `msg->reply_to` (a plain value),
 * not the message.
 *
 * Bodies are protobuf-c messages (schemas/ *.proto, proto2 with `optional`). They are freed
 * with protobuf_c_message_free_unpacked(body, NULL), so build them on the heap with fs_pb_new()
 * and give every string, bytes, repeated array and sub-message its own malloc'd memory
 * (fs_strdup, fs_malloc); never point a field at a literal or at memory you keep.
 *
 * Errors are 0 (FS_OK) or a negative fs_status_t. Nothing is dropped silently: a full mailbox
 * refuses at once (FS_EFULL) and counts the rejection.
 */
#ifndef FS_ACTOR_H
#define FS_ACTOR_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

/* ---- status codes ----------------------------------------------------------------------- */

typedef enum fs_status {
    FS_OK = 0,
    FS_EFULL = -1,      /**< the mailbox (or a channel's output buffer) is full: try later */
    FS_ENOACTOR = -2,   /**< no actor by that name (locally or in the target worker) */
    FS_ETIMEOUT = -3,   /**< an ask's deadline passed before the reply came */
    FS_ESTOPPED = -4,   /**< the target actor stopped before handling the message */
    FS_ECANCELED = -5,  /**< the asking actor restarted or stopped, or the system is freed */
    FS_EFAIL = -6,      /**< the target's handler reported a failure */
    FS_EINVAL = -7,     /**< bad argument (not an ask, body of the wrong type, ...) */
    FS_EPROTO = -8,     /**< a frame or payload could not be decoded, or its type is unknown */
    FS_EUNAVAIL = -9,   /**< the target worker is not connected (dead, restarting) */
    FS_EEXIST = -10,    /**< the name or type id is already taken */
} fs_status_t;

/* A constant English name for a status ("mailbox full"); never NULL. */
const char *fs_status_str(int status);

/* ---- limits ----------------------------------------------------------------------------- */

#define FS_ACTOR_BATCH 64                  /**< messages per actor per turn (default) */
#define FS_ACTOR_MAILBOX_CAPACITY 4096     /**< mailbox bound when fs_cfg is unset */
#define FS_ACTOR_MAX_RESTARTS 5            /**< restarts allowed ... */
#define FS_ACTOR_RESTART_WINDOW_MS 10000   /**< ... within this window before escalation */
#define FS_WORKER_LOCAL (-1)               /**< "this worker" in addresses */

/* ---- types ------------------------------------------------------------------------------ */

typedef struct fs_actor fs_actor_t;
typedef struct fs_actor_system fs_actor_system_t;

/* Where the answer to an ask goes. A plain value: copy it to answer after the handler. */
typedef struct fs_reply_addr {
    int worker;       /**< FS_WORKER_LOCAL when the asker is in this worker, else its index */
    uint64_t corr_id; /**< 0 when the message is not an ask */
} fs_reply_addr_t;

typedef struct fs_msg {
    uint32_t type;            /**< type id (see fs_msg_type_register) */
    ProtobufCMessage *body;   /**< may be NULL (timer ticks); freed by the runtime */
    int status;               /**< in a reply: FS_OK; otherwise always FS_OK */
    fs_actor_t *sender;       /**< local sending actor, or NULL */
    int sender_worker;        /**< worker the message came from (this one for local sends) */
    const char *sender_name;  /**< remote sender's actor name when it gave one, else NULL */
    fs_reply_addr_t reply_to; /**< corr_id != 0 when the sender asked and awaits a reply */
    int64_t deadline_ms;      /**< fs_now_ms() clock; 0 = none. Expired messages are skipped */
    uint64_t timer_id;        /**< non-zero for a timer tick: the id fs_actor_timer_start gave */
    /* private to the runtime */
    struct fs_msg *_next;
    fs_actor_system_t *_sys;
    char *_sender_name;
    bool _replied;
} fs_msg_t;

/* A behaviour handles one message. It returns FS_OK, or a negative status to report a
 * failure: the actor is then restarted with fresh state (its mailbox is kept), or the failure
 * escalates past the restart limit. An unanswered ask whose handler fails gets FS_EFAIL. */
typedef int (*fs_behaviour_fn)(fs_actor_t *self, void *state, fs_msg_t *msg);
/* Builds fresh state (called at spawn and at every restart); may return NULL. */
typedef void *(*fs_actor_init_fn)(fs_actor_t *self, void *arg);
/* Frees the state (at restart, stop, and when the system is freed). */
typedef void (*fs_actor_stop_fn)(fs_actor_t *self, void *state);

typedef struct fs_actor_spec {
    const char *name;            /**< unique in the system; copied */
    fs_behaviour_fn behaviour;   /**< required */
    fs_actor_init_fn init;       /**< may be NULL (state stays NULL) */
    fs_actor_stop_fn stop;       /**< may be NULL */
    void *arg;                   /**< passed to init every time */
    size_t mailbox_capacity;     /**< 0 = the system default */
    int restart_limit;           /**< 0 = FS_ACTOR_MAX_RESTARTS; < 0 = escalate at once */
    int restart_window_ms;       /**< 0 = FS_ACTOR_RESTART_WINDOW_MS */
} fs_actor_spec_t;

/* Called when an actor fails more often than its restart limit allows. The actor is already
 * stopped. A worker installs one that logs and leaves the loop (exit FS_EXIT_ESCALATED), so
 * the master restarts the whole worker. Without one, the failure is logged and the actor
 * stays stopped. */
typedef void (*fs_escalate_fn)(fs_actor_t *actor, int status, void *arg);

typedef struct fs_actor_system_opts {
    int batch;                /**< 0 = fs_cfg->actor_batch, else FS_ACTOR_BATCH */
    size_t mailbox_capacity;  /**< default per actor; 0 = fs_cfg->mailbox_capacity, else 4096 */
    uint64_t seed;            /**< != 0: shuffle the run-queue order with this seed (tests);
                                   0 falls back to $FS_ACTOR_SEED, else plain FIFO */
    int worker;               /**< this worker's index (for cross-worker addresses); -1 none */
    fs_escalate_fn on_escalate;
    void *escalate_arg;
} fs_actor_system_opts_t;

typedef struct fs_actor_stats {
    uint64_t processed;  /**< messages handed to the behaviour */
    uint64_t rejected;   /**< sends refused because the mailbox was full */
    uint64_t failures;   /**< behaviour calls that returned an error */
    uint64_t restarts;   /**< fresh states built after a failure */
    uint64_t expired;    /**< messages skipped because their deadline had passed */
    size_t depth;        /**< messages waiting now */
    size_t capacity;     /**< mailbox bound */
    bool running;        /**< false once stopped or escalated */
} fs_actor_stats_t;

typedef struct fs_actor_system_stats {
    uint64_t passes;        /**< run-queue passes (callbacks) */
    uint64_t asks;          /**< asks started */
    uint64_t ask_timeouts;  /**< asks completed with FS_ETIMEOUT */
    uint64_t late_replies;  /**< replies that found no pending ask (timed out, canceled) */
    size_t pending_asks;    /**< asks awaiting a reply now */
    uint64_t seed;          /**< the run-queue seed in use, 0 for FIFO */
} fs_actor_system_stats_t;

/* ---- system ----------------------------------------------------------------------------- */

/* Creates a system on `base`; `opts` may be NULL for the defaults. */
fs_actor_system_t *fs_actor_system_new(struct event_base *base, const fs_actor_system_opts_t *opts);

/* Stops every actor (newest first: pending asks get FS_ECANCELED, queued asks to it
 * FS_ESTOPPED), completes the system's remaining asks with FS_ECANCELED, and frees it all.
 * Not from inside a handler or continuation. Free any fs_peer_t on it first. */
void fs_actor_system_free(fs_actor_system_t *sys);

struct event_base *fs_actor_system_base(const fs_actor_system_t *sys);
int fs_actor_system_worker(const fs_actor_system_t *sys);
void fs_actor_system_stats(const fs_actor_system_t *sys, fs_actor_system_stats_t *out);

/* Calls fn for every actor (running or stopped), in spawn order: for the metrics endpoint. */
typedef void (*fs_actor_visit_fn)(const char *name, const fs_actor_stats_t *stats, void *arg);
void fs_actor_system_foreach(const fs_actor_system_t *sys, fs_actor_visit_fn fn, void *arg);

/* Milliseconds of CLOCK_MONOTONIC: the clock of deadlines. */
int64_t fs_now_ms(void);

/* ---- actors ----------------------------------------------------------------------------- */

/* Creates an actor and runs spec->init. Returns NULL when the name is taken. The actor lives
 * (as a stopped shell once stopped) until the system is freed, so fs_actor_t pointers never
 * dangle; actors are meant to be long-lived. */
fs_actor_t *fs_actor_spawn(fs_actor_system_t *sys, const fs_actor_spec_t *spec);

/* A running actor by name, or NULL. */
fs_actor_t *fs_actor_lookup(const fs_actor_system_t *sys, const char *name);

const char *fs_actor_name(const fs_actor_t *a);
fs_actor_system_t *fs_actor_system(const fs_actor_t *a);
void fs_actor_get_stats(const fs_actor_t *a, fs_actor_stats_t *out);

/* Stops the actor: its timers are canceled, its own pending asks complete with FS_ECANCELED,
 * queued messages are freed (queued asks answered FS_ESTOPPED), then spec->stop runs. Called
 * on the actor itself from its handler, it takes effect when the handler returns. Idempotent. */
void fs_actor_stop(fs_actor_t *a);

/* ---- messages --------------------------------------------------------------------------- */

/* Queues a message for `to`. `from` (may be NULL) becomes msg->sender. Takes ownership of
 * `body` in every case. Returns FS_OK, FS_EFULL (mailbox full: counted as rejected),
 * FS_ESTOPPED, or FS_EINVAL when `type` is registered with another descriptor than the
 * body's. Never blocks and never runs the handler synchronously. */
int fs_actor_send(fs_actor_t *to, fs_actor_t *from, uint32_t type, ProtobufCMessage *body);

/* The continuation of an ask. Runs exactly once, on the loop, never inside fs_actor_ask or a
 * handler: with FS_OK and the reply (valid during the call only), or with an error and
 * reply == NULL (FS_ETIMEOUT, FS_EFULL/FS_ENOACTOR/FS_EUNAVAIL from a remote worker,
 * FS_ESTOPPED, FS_EFAIL, FS_ECANCELED). A cancellation (asking actor restarted or stopped)
 * runs synchronously before that actor's stop callback, so `arg` can be released. */
typedef void (*fs_reply_fn)(int status, fs_msg_t *reply, void *arg);

/* Sends with a fresh correlation id and a deadline `timeout_ms` from now. `from` may be NULL
 * (an HTTP handler asking); when it is an actor, the ask is canceled if that actor restarts or
 * stops. Returns FS_OK (then `cb` will run exactly once) or an error as fs_actor_send does
 * (then `cb` never runs). */
int fs_actor_ask(fs_actor_t *to, fs_actor_t *from, uint32_t type, ProtobufCMessage *body, int timeout_ms,
                 fs_reply_fn cb, void *arg);

/* Answers the ask `msg` (during its handler). Takes ownership of `body`. Returns FS_OK, or
 * FS_EINVAL when msg is not an ask or was already answered. A reply that comes after the
 * asker's deadline is counted (late_replies) and freed. */
int fs_actor_reply(fs_msg_t *msg, uint32_t type, ProtobufCMessage *body);

/* Answers an ask later, from a copied reply address, with a status (FS_OK with a body, or an
 * error with body NULL). Takes ownership of `body`. */
int fs_actor_reply_to(fs_actor_system_t *sys, fs_reply_addr_t to, int status, uint32_t type,
                      ProtobufCMessage *body);

/* ---- timers ----------------------------------------------------------------------------- */

/* Delivers a message of `type` (body NULL, msg->timer_id set) to `a` after `delay_ms`, then
 * every `interval_ms` when it is > 0. A periodic tick is skipped while the previous one is
 * still queued; a tick that finds the mailbox full is counted as rejected. Timers belong to
 * the actor's current incarnation: a restart or stop cancels them (init sets them again).
 * Returns a timer id (never 0), or 0 when the actor is stopped. */
uint64_t fs_actor_timer_start(fs_actor_t *a, uint32_t type, int delay_ms, int interval_ms);

/* Cancels a timer; no tick of it is handled afterwards, even one already queued.
 * Returns FS_OK, or FS_EINVAL when the id is unknown (fired one-shot, already canceled). */
int fs_actor_timer_cancel(fs_actor_t *a, uint64_t timer_id);

/* ---- message types ---------------------------------------------------------------------- */

/* Type ids 1..99 are the runtime's own; modules take ranges above (see docs/RUNTIME.md). */
enum { FS_MSG_PING = 1, FS_MSG_PONG = 2, FS_MSG_ECHO = 3 };

/* Maps a type id to its protobuf-c descriptor, process-wide, so a receiving worker can unpack
 * a payload. Register at start, before forking. Returns FS_OK (also when registered again with
 * the same descriptor) or FS_EEXIST. Types used only inside a worker need no registration. */
int fs_msg_type_register(uint32_t type, const ProtobufCMessageDescriptor *desc);
const ProtobufCMessageDescriptor *fs_msg_type_descriptor(uint32_t type);
/* Registers the runtime's Ping, Pong and Echo. */
void fs_runtime_register_types(void);

/* A zeroed, initialised message of that descriptor on the heap. */
void *fs_pb_new(const ProtobufCMessageDescriptor *desc);
/* Frees a body as the runtime does (NULL is fine). */
void fs_pb_free(ProtobufCMessage *body);
/* msg->body when it is a `desc`, else NULL: the checked cast for handlers. */
void *fs_msg_body(const fs_msg_t *msg, const ProtobufCMessageDescriptor *desc);

/* ---- internal: shared by runtime/actor*.c and runtime/peer.c only ------------------------ */

/* Sends an answer to another worker (installed by fs_peer_new). Takes ownership of body. */
typedef int (*fsint_remote_reply_fn)(void *ctx, fs_reply_addr_t to, int status, uint32_t type,
                                     ProtobufCMessage *body);
void fsint_system_set_remote(fs_actor_system_t *sys, fsint_remote_reply_fn fn, void *ctx);
fs_msg_t *fsint_msg_new(fs_actor_system_t *sys, uint32_t type, ProtobufCMessage *body);
void fsint_msg_free(fs_msg_t *m);
/* Queues a prepared message; on error the caller still owns (and frees) `m`. */
int fsint_actor_push(fs_actor_t *to, fs_msg_t *m);
/* Registers a pending ask; returns its correlation id. */
uint64_t fsint_ask_register(fs_actor_system_t *sys, fs_actor_t *owner, int timeout_ms, fs_reply_fn cb, void *arg);
/* Forgets a pending ask whose message could not be sent (cb never runs). */
void fsint_ask_forget(fs_actor_system_t *sys, uint64_t corr_id);
/* Completes a pending ask (reply may be NULL on error; ownership passes). */
void fsint_ask_complete(fs_actor_system_t *sys, uint64_t corr_id, int status, fs_msg_t *reply);

#endif
