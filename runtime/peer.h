/* Cross-worker messaging through the master.
 *
 * Every worker slot has one unix stream socketpair made by the master before it forks the
 * worker: the master end is a channel of the master's fs_peer_hub_t, the worker end drives the
 * worker's fs_peer_t. A frame is a 4-byte big-endian length (at most FS_PEER_MAX_FRAME, checked
 * before anything is unpacked) followed by a packed fs.runtime.Envelope (schemas/runtime.proto)
 * whose payload is the packed message body, its type id resolved through the process-wide type
 * registry (fs_msg_type_register) on the receiving side.
 *
 * The hub reads only the routing fields of each envelope (target worker, kind, correlation id)
 * and forwards the frame bytes unchanged to the target slot. A frame it cannot deliver (slot
 * empty because the worker died and is restarting, output buffer full, no such slot) is
 * dropped and counted; if it was an ask, the hub answers the asker itself with FS_EUNAVAIL or
 * FS_EFULL so the asker does not wait for its deadline.
 *
 * Bad input never crashes either side: an envelope or payload that does not unpack, an unknown
 * type or actor is counted, logged and (for asks) answered with an error; a frame length over
 * the limit is counted and closes the channel, because a stream cannot be resynchronised after
 * a corrupt length (the worker's on_close hook then decides; the normal reaction is to exit so
 * the master restarts the worker with a fresh pair).
 *
 * Both sides bound each channel's output buffer (FS_PEER_MAX_OUTBUF): a send that would exceed
 * it fails at once with FS_EFULL. Processes using this must ignore SIGPIPE.
 */
#ifndef FS_PEER_H
#define FS_PEER_H

#include "runtime/actor.h"

#include <stdbool.h>
#include <stdint.h>

struct event_base;

#define FS_PEER_MAX_FRAME (16u << 20)  /**< bytes of one envelope, length prefix excluded */
#define FS_PEER_MAX_OUTBUF (64u << 20) /**< bytes queued for one channel before sends fail */

/* Makes a non-blocking, close-on-exec unix stream socketpair: fds[0] for the master's hub,
 * fds[1] for the worker. After fork the worker closes fds[0] and every other master-side fd
 * it inherited (fs_peer_hub_close_in_child), or the hub never sees EOF when a worker dies.
 * Returns 0, or -1 with errno set. */
int fs_peer_socketpair(int fds[2]);

/* ---- worker side ----------------------------------------------------------------------- */

typedef struct fs_peer fs_peer_t;

typedef struct fs_peer_stats {
    uint64_t frames_in, frames_out;
    uint64_t bad_frames;    /**< envelope or payload would not unpack */
    uint64_t oversized;     /**< length prefix over FS_PEER_MAX_FRAME (channel closed) */
    uint64_t unknown_type;  /**< type id not registered, or payload_type mismatch */
    uint64_t unknown_actor; /**< no running actor by the target name */
    uint64_t rejected;      /**< the target mailbox was full */
    uint64_t send_full;     /**< sends refused because the output buffer was full */
    bool connected;
} fs_peer_stats_t;

typedef void (*fs_peer_close_fn)(fs_peer_t *peer, void *arg);

/* Drives the worker end `fd` (owned from now on) on the system's event_base and delivers
 * incoming envelopes to the system's actors. The system's worker index (opts.worker) is this
 * worker's address. `on_close` (may be NULL) runs when the channel ends (master gone, or a
 * corrupt frame); sends then fail with FS_EUNAVAIL. */
fs_peer_t *fs_peer_new(fs_actor_system_t *sys, int fd, fs_peer_close_fn on_close, void *arg);

/* Sends to actor `actor` of worker `worker`. A target in this worker (its own index or
 * FS_WORKER_LOCAL) is delivered locally, by pointer. Takes ownership of `body`. For another
 * worker `type` must be registered with the body's descriptor (FS_EINVAL otherwise). Returns
 * FS_OK (queued on the channel: delivery errors of a plain send are only counted on the other
 * side), FS_EFULL, FS_EUNAVAIL (disconnected), FS_ENOACTOR (local target only), FS_EINVAL. */
int fs_peer_send(fs_peer_t *peer, fs_actor_t *from, int worker, const char *actor, uint32_t type,
                 ProtobufCMessage *body);

/* An ask to any worker; same contract as fs_actor_ask. Delivery errors on the other side
 * (FS_ENOACTOR, FS_EFULL, FS_EPROTO, FS_EUNAVAIL from the hub) reach `cb` as its status. */
int fs_peer_ask(fs_peer_t *peer, fs_actor_t *from, int worker, const char *actor, uint32_t type,
                ProtobufCMessage *body, int timeout_ms, fs_reply_fn cb, void *arg);

void fs_peer_get_stats(const fs_peer_t *peer, fs_peer_stats_t *out);

/* Closes the channel and detaches from the system (free it before the system). */
void fs_peer_free(fs_peer_t *peer);

/* ---- master side ----------------------------------------------------------------------- */

typedef struct fs_peer_hub fs_peer_hub_t;

typedef struct fs_peer_hub_stats {
    uint64_t routed;         /**< frames forwarded */
    uint64_t dropped_dead;   /**< target slot had no channel */
    uint64_t dropped_full;   /**< target channel's output buffer was full */
    uint64_t bad_target;     /**< target worker missing or out of range */
    uint64_t bad_frames;     /**< routing fields could not be read */
    uint64_t oversized;      /**< length over FS_PEER_MAX_FRAME (that channel closed) */
    uint64_t error_replies;  /**< asks the hub answered itself */
    int connected;           /**< slots with a channel now */
} fs_peer_hub_stats_t;

fs_peer_hub_t *fs_peer_hub_new(struct event_base *base, int slots);

/* Gives slot `slot` the master end `fd` (owned from now on), closing the slot's previous
 * channel if any: call it when (re)starting that slot's worker. Returns 0 or -1 (bad slot). */
int fs_peer_hub_attach(fs_peer_hub_t *hub, int slot, int fd);

/* Closes a slot's channel (its worker died); frames for it are dropped until the next attach. */
void fs_peer_hub_detach(fs_peer_hub_t *hub, int slot);

void fs_peer_hub_get_stats(const fs_peer_hub_t *hub, fs_peer_hub_stats_t *out);

/* In a freshly forked child: closes the inherited master-end fds without touching the
 * parent's event_base, and frees nothing else (the child must not use the hub). */
void fs_peer_hub_close_in_child(fs_peer_hub_t *hub);

void fs_peer_hub_free(fs_peer_hub_t *hub);

#endif
