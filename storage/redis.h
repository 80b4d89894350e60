/* Redis through hiredis 0.14 async and its libevent adapter.
 *
 * hiredis 0.14 has no connect or command timeouts, so this module keeps its own timers and
 * disconnects on expiry; a failed context is never reused: a fresh one is created from a
 * backoff timer. Connect by IP literal or unix socket only (redisAsyncConnect resolves names
 * with a blocking getaddrinfo), so host names in REDIS_URL are resolved once at start.
 * A PING heartbeat notices a silent peer. A client is one context; pub/sub and blocking
 * stream reads each need their own client (hiredis misroutes replies otherwise).
 */
#ifndef FS_REDIS_H
#define FS_REDIS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

struct event_base;
typedef struct fs_redis fs_redis_t;

typedef struct fs_redis_opts {
    const char *url;        /* redis://[:password@]host[:port][/db] or unix:///path */
    int timeout_ms;         /* connect, command and heartbeat timeout */
    int heartbeat_ms;       /* PING interval; 0 disables */
} fs_redis_opts_t;

/* `reply` is NULL when the command failed (disconnected, timed out, not connected);
 * `error` then says why. Valid only during the callback. */
typedef void (*fs_redis_cb)(redisReply *reply, const char *error, void *arg);

/* Never returns NULL: with an invalid REDIS_URL or an unresolvable host every command fails
 * with that reason. timeout_ms 0 means 2000. Commands issued before the first connect
 * attempt has finished wait for it; during a later outage they fail at once. */
fs_redis_t *fs_redis_new(struct event_base *base, const fs_redis_opts_t *opts);
/* Pending callbacks run with reply NULL. Safe to call from any loop callback but never
 * from inside a hiredis callback of the same client (it defers itself then). */
void fs_redis_free(fs_redis_t *r);

/* The callback runs exactly once (NULL `cb` is allowed: the reply is discarded safely). */
void fs_redis_command(fs_redis_t *r, fs_redis_cb cb, void *arg, const char *fmt, ...);
void fs_redis_commandargv(fs_redis_t *r, fs_redis_cb cb, void *arg, int argc, const char **argv,
                          const size_t *argvlen);

bool fs_redis_connected(const fs_redis_t *r);

/* ---- subscriber clients ----------------------------------------------------------------- */

/* Runs on the client's loop for every message on the channel (`payload`, `len`), and with
 * `payload` NULL each time the subscription is established: at start and again after every
 * reconnect. Messages published while the connection was down are lost (Redis pub/sub keeps
 * nothing), so an owner that must not miss one resynchronises on the NULL call. */
typedef void (*fs_redis_message_cb)(const char *channel, const char *payload, size_t len, void *arg);

/* A client of its own in pub/sub mode (hiredis 0.14 misroutes replies on a subscribed context,
 * LIBRARY-NOTES hiredis 4): same URL handling, handshake, timeouts and reconnect backoff as
 * fs_redis_new, then SUBSCRIBE `channel` after every (re)connect. It takes no commands
 * (fs_redis_command fails at once) and sends no heartbeat PING (a PING on a subscribed 0.14
 * context is misrouted, hiredis #351): TCP keepalive notices a dead peer instead. Never
 * returns NULL; free with fs_redis_free. */
fs_redis_t *fs_redis_subscriber_new(struct event_base *base, const fs_redis_opts_t *opts, const char *channel,
                                    fs_redis_message_cb cb, void *arg);

typedef struct fs_redis_stats {
    bool connected;
    unsigned long long commands, errors, timeouts, reconnects;
    size_t pending;
} fs_redis_stats_t;
void fs_redis_get_stats(const fs_redis_t *r, fs_redis_stats_t *out);

#endif
