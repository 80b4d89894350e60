/* Redis client on hiredis 0.14 async + its libevent adapter.
 *
 * Lifecycle of one client (see docs/STORAGE.md):
 *   DOWN --retry timer--> CONNECTING --handshake (AUTH, SELECT, PING) answered--> UP
 *   CONNECTING/UP --error, remote close, timeout--> DOWN (context gone, retry after backoff)
 *
 * hiredis sharp edges handled here (LIBRARY-NOTES hiredis 1-6):
 *  - No timeouts in 0.14: a connect timer and one timer per command. On expiry the context
 *    is freed with redisAsyncFree from our own timer callback, which runs every pending
 *    hiredis callback with a NULL reply (redisAsyncDisconnect would wait for the replies of
 *    a silent server forever).
 *  - A failed context is never reused: a new one is created from the backoff timer.
 *  - A context is never freed inside its own hiredis callbacks: from there we only note the
 *    loss (hiredis frees the context itself after an error) or defer the kill to `kill_ev`.
 *  - "Connected" means the handshake's PING was answered, not hiredis' connect callback
 *    (0.14 marks unix-socket contexts connected before any I/O and never calls it).
 *  - Every command carries our own callback, even when the caller passes none.
 */
#include "storage/redis.h"
#include "storage/resolve.h"

#include "runtime/alloc.h"
#include "runtime/log.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define RD_BACKOFF_MIN_MS 100
#define RD_BACKOFF_MAX_MS 5000
#define RD_DEFAULT_TIMEOUT_MS 2000
#define RD_DEFAULT_PORT 6379

typedef enum { RD_DOWN, RD_CONNECTING, RD_UP } rd_state_t;

typedef enum { CMD_USER, CMD_HANDSHAKE, CMD_HANDSHAKE_LAST, CMD_HEARTBEAT } cmd_kind_t;

typedef struct rd_cmd {
    struct rd_cmd *next; /* in r->failed only */
    fs_redis_t *r;
    fs_redis_cb cb;
    void *arg;
    cmd_kind_t kind;
    struct event *timer;
    bool timed_out;
    const char *error; /* for commands failed without reaching hiredis */
} rd_cmd_t;

struct fs_redis {
    struct event_base *base;
    char *ip; /* IP literal, or NULL with `path` */
    int port;
    char *path;
    char *user, *password;
    int db;
    int timeout_ms, heartbeat_ms;

    redisAsyncContext *ac;
    rd_state_t state;
    bool tried;   /* the first connect attempt has finished */
    bool ever_up; /* a later success is a reconnect */
    int failures; /* consecutive failed attempts: only the first is logged as a warning */
    int backoff_ms;
    bool hb_pending;
    const char *kill_reason; /* why the current context is being dropped */
    bool kill_scheduled;     /* kill_ev is active for the current context */

    struct event *retry_ev;   /* backoff, then a new context */
    struct event *connect_ev; /* connect + handshake deadline */
    struct event *hb_ev;      /* heartbeat */
    struct event *kill_ev;    /* drops the context outside hiredis callbacks */
    struct event *deliver_ev; /* runs callbacks of commands that never reached hiredis */
    struct event *free_ev;    /* fs_redis_free deferred out of a callback */
    rd_cmd_t *failed_head, *failed_tail;

    int in_cb; /* depth of user callbacks running */
    bool closing;
    char last_error[128];
    char bad_url[192]; /* set when REDIS_URL is unusable: every command fails with it */
    char *sub_channel; /* subscriber clients only */
    fs_redis_message_cb sub_cb;
    void *sub_arg;
    unsigned long long commands, errors, timeouts, reconnects;
    size_t pending;
};

static const char rd_err_down[] = "redis unavailable";
static const char rd_err_timeout[] = "redis command timed out";
static const char rd_err_closed[] = "redis client closed";
static const char rd_err_rejected[] = "redis command rejected (bad format or connection closing)";
static const char rd_err_subscriber[] = "redis subscriber clients take no commands";

static void ctx_open(fs_redis_t *r);

static struct timeval ms_tv(int ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    return tv;
}

/*--- command records -------------------------------------------------------------------*/

static void cmd_on_timeout(evutil_socket_t fd, short what, void *arg);

static rd_cmd_t *cmd_new(fs_redis_t *r, cmd_kind_t kind, fs_redis_cb cb, void *arg)
{
    rd_cmd_t *c = FS_NEW(rd_cmd_t);
    c->r = r;
    c->kind = kind;
    c->cb = cb;
    c->arg = arg;
    return c;
}

static void cmd_free(rd_cmd_t *c)
{
    if (c->timer)
        event_free(c->timer);
    free(c);
}

static void cmd_call(rd_cmd_t *c, redisReply *reply, const char *error)
{
    fs_redis_t *r = c->r;
    if (!c->cb)
        return;
    r->in_cb++;
    c->cb(reply, error, c->arg);
    r->in_cb--;
}

/* Fails a command that never reached hiredis; its callback runs from deliver_ev. */
static void cmd_fail_later(fs_redis_t *r, rd_cmd_t *c, const char *error)
{
    c->error = error;
    c->next = NULL;
    if (r->failed_tail)
        r->failed_tail->next = c;
    else
        r->failed_head = c;
    r->failed_tail = c;
    r->errors++;
    event_active(r->deliver_ev, EV_TIMEOUT, 1);
}

static void run_failed(fs_redis_t *r)
{
    rd_cmd_t *c;
    while ((c = r->failed_head)) {
        r->failed_head = c->next;
        if (!r->failed_head)
            r->failed_tail = NULL;
        cmd_call(c, NULL, c->error);
        cmd_free(c);
    }
}

static void on_deliver(evutil_socket_t fd, short what, void *arg)
{
    run_failed(arg);
}

/*--- the context -----------------------------------------------------------------------*/

static void schedule_retry(fs_redis_t *r)
{
    r->tried = true;
    r->state = RD_DOWN;
    r->hb_pending = false;
    evtimer_del(r->connect_ev);
    if (r->closing)
        return;
    int delay = r->backoff_ms + (int)(random() % (r->backoff_ms / 5 + 1));
    r->backoff_ms = r->backoff_ms * 2 > RD_BACKOFF_MAX_MS ? RD_BACKOFF_MAX_MS : r->backoff_ms * 2;
    struct timeval tv = ms_tv(delay);
    evtimer_add(r->retry_ev, &tv);
}

static void note_loss(fs_redis_t *r, const char *why)
{
    bool was_up = r->state == RD_UP;
    snprintf(r->last_error, sizeof r->last_error, "%s", why && *why ? why : "connection lost");
    if (was_up)
        fs_warn("redis: connection lost: %s", r->last_error);
    else if (!r->closing && r->failures++ == 0)
        fs_warn("redis: connect failed (retrying with backoff up to %d ms): %s", RD_BACKOFF_MAX_MS, r->last_error);
    else if (!r->closing)
        fs_debug("redis: connect failed again (retry in %d ms): %s", r->backoff_ms, r->last_error);
}

/* Drops the current context now; pending callbacks run with NULL and `reason`. Only from
 * our own timer/deferred callbacks, never from inside a hiredis callback. */
static void ctx_kill(fs_redis_t *r, const char *reason)
{
    redisAsyncContext *ac = r->ac;
    if (!ac)
        return;
    note_loss(r, reason);
    r->ac = NULL;
    r->kill_reason = reason;
    redisAsyncFree(ac);
    r->kill_reason = NULL;
    schedule_retry(r);
}

static void on_kill(evutil_socket_t fd, short what, void *arg)
{
    fs_redis_t *r = arg;
    char why[sizeof r->last_error];
    r->kill_scheduled = false;
    snprintf(why, sizeof why, "%s", r->last_error[0] ? r->last_error : rd_err_down);
    ctx_kill(r, why);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    fs_redis_t *r = ac->data;
    if (status == REDIS_OK || r->ac != ac)
        return;
    /* hiredis frees this context when we return; pending commands get NULL replies */
    note_loss(r, ac->errstr);
    r->ac = NULL;
    schedule_retry(r);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    fs_redis_t *r = ac->data;
    if (r->ac != ac) /* dropped by ctx_kill, already handled */
        return;
    note_loss(r, ac->err ? ac->errstr : "server closed the connection");
    r->ac = NULL;
    schedule_retry(r);
}

static void subscribe(fs_redis_t *r);

static void handshake_done(fs_redis_t *r)
{
    evtimer_del(r->connect_ev);
    r->state = RD_UP;
    r->backoff_ms = RD_BACKOFF_MIN_MS;
    r->failures = 0;
    if (r->ever_up)
        r->reconnects++;
    r->ever_up = r->tried = true;
    if (r->path)
        fs_info("redis: connected to %s", r->path);
    else
        fs_info("redis: connected to %s port %d", r->ip, r->port);
    if (r->sub_channel)
        subscribe(r);
}

/* The reply (or NULL on failure) of one command issued to hiredis. */
static void on_reply(redisAsyncContext *ac, void *reply_ptr, void *priv)
{
    rd_cmd_t *c = priv;
    fs_redis_t *r = c->r;
    redisReply *reply = reply_ptr;
    r->pending--;
    const char *error = NULL;
    if (!reply) {
        error = c->timed_out ? rd_err_timeout : r->kill_reason ? r->kill_reason : ac->err ? ac->errstr : rd_err_down;
        r->errors++;
    } else if (reply->type == REDIS_REPLY_ERROR) {
        error = reply->str;
        r->errors++;
    }
    switch (c->kind) {
    case CMD_USER:
        cmd_call(c, reply, error);
        break;
    case CMD_HEARTBEAT:
        r->hb_pending = false;
        break;
    case CMD_HANDSHAKE:
    case CMD_HANDSHAKE_LAST:
        if (reply && error && r->ac == ac) { /* AUTH/SELECT refused: drop, retry later */
            if (!r->kill_scheduled)
                snprintf(r->last_error, sizeof r->last_error, "handshake refused: %s", error);
            r->kill_scheduled = true;
            event_active(r->kill_ev, EV_TIMEOUT, 1);
        } else if (reply && c->kind == CMD_HANDSHAKE_LAST && r->ac == ac) {
            handshake_done(r);
        }
        break;
    }
    cmd_free(c);
}

/* Every reply on the subscribed channel: hiredis 0.14 keeps this callback in its channel
 * table and calls it for the SUBSCRIBE confirmation, for each message, and once with NULL
 * when the context goes away (then there is nothing to do: the reconnect subscribes again). */
static void on_sub_reply(redisAsyncContext *ac, void *reply_ptr, void *priv)
{
    fs_redis_t *r = priv;
    redisReply *reply = reply_ptr;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 || r->ac != ac)
        return;
    redisReply *kind = reply->element[0], *chan = reply->element[1], *payload = reply->element[2];
    if (kind->type != REDIS_REPLY_STRING || chan->type != REDIS_REPLY_STRING)
        return;
    r->in_cb++;
    if (strcmp(kind->str, "message") == 0 && payload->type == REDIS_REPLY_STRING)
        r->sub_cb(chan->str, payload->str, payload->len, r->sub_arg);
    else if (strcmp(kind->str, "subscribe") == 0)
        r->sub_cb(chan->str, NULL, 0, r->sub_arg);
    r->in_cb--;
}

static void subscribe(fs_redis_t *r)
{
    if (redisAsyncCommand(r->ac, on_sub_reply, r, "SUBSCRIBE %s", r->sub_channel) != REDIS_OK)
        fs_warn("redis: cannot subscribe to %s", r->sub_channel);
}

static void cmd_on_timeout(evutil_socket_t fd, short what, void *arg)
{
    rd_cmd_t *c = arg;
    fs_redis_t *r = c->r;
    c->timed_out = true;
    r->timeouts++;
    ctx_kill(r, rd_err_timeout); /* runs on_reply(NULL) for c and every other pending command */
}

/* The command was accepted by hiredis: count it and start its deadline. */
static void cmd_arm(fs_redis_t *r, rd_cmd_t *c)
{
    r->pending++;
    c->timer = evtimer_new(r->base, cmd_on_timeout, c);
    struct timeval tv = ms_tv(r->timeout_ms);
    evtimer_add(c->timer, &tv);
}

/* Hands a command to hiredis with its own deadline. Returns 0, or -1 (c not consumed). */
static int cmd_issue(fs_redis_t *r, rd_cmd_t *c, int argc, const char **argv, const size_t *argvlen)
{
    if (redisAsyncCommandArgv(r->ac, on_reply, c, argc, argv, argvlen) != REDIS_OK)
        return -1;
    cmd_arm(r, c);
    return 0;
}

static void issue_internal(fs_redis_t *r, cmd_kind_t kind, int argc, const char **argv)
{
    rd_cmd_t *c = cmd_new(r, kind, NULL, NULL);
    if (cmd_issue(r, c, argc, argv, NULL) < 0)
        cmd_free(c);
}

/* AUTH and SELECT when configured, then PING; the PING's answer marks the client up.
 * hiredis keeps order, so user commands queued behind them run authenticated. */
static void send_handshake(fs_redis_t *r)
{
    if (r->password) {
        const char *auth_user[] = {"AUTH", r->user, r->password};
        const char *auth[] = {"AUTH", r->password};
        if (r->user)
            issue_internal(r, CMD_HANDSHAKE, 3, auth_user);
        else
            issue_internal(r, CMD_HANDSHAKE, 2, auth);
    }
    if (r->db) {
        char db[16];
        snprintf(db, sizeof db, "%d", r->db);
        const char *sel[] = {"SELECT", db};
        issue_internal(r, CMD_HANDSHAKE, 2, sel);
    }
    const char *ping[] = {"PING"};
    issue_internal(r, CMD_HANDSHAKE_LAST, 1, ping);
}

static void ctx_open(fs_redis_t *r)
{
    redisAsyncContext *ac = r->path ? redisAsyncConnectUnix(r->path) : redisAsyncConnect(r->ip, r->port);
    if (!ac)
        abort(); /* hiredis returns NULL only when out of memory */
    if (ac->err) {
        note_loss(r, ac->errstr);
        redisAsyncFree(ac); /* never attached, never connected: no callbacks */
        schedule_retry(r);
        return;
    }
    ac->data = r;
    if (r->sub_channel && !r->path)
        redisEnableKeepAlive(&ac->c); /* 15 s probes (REDIS_KEEPALIVE_INTERVAL) */
    redisLibeventAttach(ac, r->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    r->state = RD_CONNECTING;
    struct timeval tv = ms_tv(r->timeout_ms);
    evtimer_add(r->connect_ev, &tv);
    send_handshake(r);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    ctx_open(arg);
}

static void on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
    fs_redis_t *r = arg;
    r->timeouts++;
    ctx_kill(r, "redis connect timeout");
}

static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    fs_redis_t *r = arg;
    if (r->state != RD_UP || r->hb_pending || !r->ac)
        return;
    const char *ping[] = {"PING"};
    rd_cmd_t *c = cmd_new(r, CMD_HEARTBEAT, NULL, NULL);
    if (cmd_issue(r, c, 1, ping, NULL) < 0)
        cmd_free(c);
    else
        r->hb_pending = true;
}

/*--- REDIS_URL -------------------------------------------------------------------------*/

static char *url_part(CURLU *u, CURLUPart part, unsigned flags)
{
    char *v = NULL;
    if (curl_url_get(u, part, &v, flags) != CURLUE_OK || !v)
        return NULL;
    char *out = v[0] ? fs_strdup(v) : NULL;
    curl_free(v);
    return out;
}

/* redis://[[user]:password@]host[:port][/db] through libcurl's URL parser. */
static int parse_tcp_url(fs_redis_t *r, const char *url, char **err)
{
    CURLU *u = curl_url();
    int rc = -1;
    if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
        *err = fs_sprintf("invalid REDIS_URL");
        goto out;
    }
    char *host = url_part(u, CURLUPART_HOST, 0), *port = url_part(u, CURLUPART_PORT, 0);
    char *path = url_part(u, CURLUPART_PATH, 0);
    r->user = url_part(u, CURLUPART_USER, CURLU_URLDECODE);
    r->password = url_part(u, CURLUPART_PASSWORD, CURLU_URLDECODE);
    r->port = port ? atoi(port) : RD_DEFAULT_PORT;
    r->db = path && path[1] ? atoi(path + 1) : 0;
    if (host && host[0] == '[') { /* IPv6 literal */
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = '\0';
    }
    if (!host)
        *err = fs_sprintf("REDIS_URL has no host");
    else if (path && path[1] && strspn(path + 1, "0123456789") != strlen(path + 1))
        *err = fs_sprintf("REDIS_URL database must be a number, got '%s'", path + 1);
    else if ((r->ip = fs_resolve_ip(host, "redis", err)))
        rc = 0;
    free(host);
    free(port);
    free(path);
out:
    curl_url_cleanup(u);
    return rc;
}

static int parse_url(fs_redis_t *r, const char *url, char **err)
{
    if (!url || !url[0]) {
        *err = fs_strdup("REDIS_URL is empty");
        return -1;
    }
    if (strncmp(url, "unix://", 7) == 0) {
        r->path = fs_strdup(url + 7);
        if (r->path[0] != '/') {
            *err = fs_sprintf("REDIS_URL unix socket path must be absolute: %s", url);
            return -1;
        }
        return 0;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        *err = fs_sprintf("REDIS_URL must start with redis:// or unix:// (rediss:// is not supported)");
        return -1;
    }
    return parse_tcp_url(r, url, err);
}

/*--- public API ------------------------------------------------------------------------*/

static void redis_destroy(fs_redis_t *r);

static void on_free(evutil_socket_t fd, short what, void *arg)
{
    redis_destroy(arg);
}

/* Never returns NULL. With an invalid URL or an unresolvable host the client never connects
 * and every command fails with that reason (logged once here). */
static fs_redis_t *client_new(struct event_base *base, const fs_redis_opts_t *opts, const char *channel,
                              fs_redis_message_cb cb, void *arg)
{
    fs_redis_t *r = FS_NEW(fs_redis_t);
    char *err = NULL;
    r->base = base;
    r->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : RD_DEFAULT_TIMEOUT_MS;
    r->heartbeat_ms = channel ? 0 : opts->heartbeat_ms;
    r->sub_channel = channel ? fs_strdup(channel) : NULL;
    r->sub_cb = cb;
    r->sub_arg = arg;
    r->backoff_ms = RD_BACKOFF_MIN_MS;
    r->retry_ev = evtimer_new(base, on_retry, r);
    r->connect_ev = evtimer_new(base, on_connect_timeout, r);
    r->kill_ev = event_new(base, -1, 0, on_kill, r);
    r->deliver_ev = event_new(base, -1, 0, on_deliver, r);
    r->free_ev = event_new(base, -1, 0, on_free, r);
    r->hb_ev = event_new(base, -1, EV_PERSIST, on_heartbeat, r);
    if (parse_url(r, opts->url, &err) < 0) {
        fs_error("redis: %s", err);
        snprintf(r->bad_url, sizeof r->bad_url, "redis unavailable: %s", err);
        free(err);
        r->tried = true;
        return r;
    }
    if (r->heartbeat_ms > 0) {
        struct timeval tv = ms_tv(r->heartbeat_ms);
        evtimer_add(r->hb_ev, &tv);
    }
    ctx_open(r);
    return r;
}

fs_redis_t *fs_redis_new(struct event_base *base, const fs_redis_opts_t *opts)
{
    return client_new(base, opts, NULL, NULL, NULL);
}

fs_redis_t *fs_redis_subscriber_new(struct event_base *base, const fs_redis_opts_t *opts, const char *channel,
                                    fs_redis_message_cb cb, void *arg)
{
    return client_new(base, opts, channel, cb, arg);
}

static void redis_destroy(fs_redis_t *r)
{
    r->closing = true;
    evtimer_del(r->retry_ev);
    if (r->ac) {
        redisAsyncContext *ac = r->ac;
        r->ac = NULL;
        r->kill_reason = rd_err_closed;
        redisAsyncFree(ac);
    }
    run_failed(r);
    event_free(r->retry_ev);
    event_free(r->connect_ev);
    event_free(r->kill_ev);
    event_free(r->deliver_ev);
    event_free(r->free_ev);
    event_free(r->hb_ev);
    free(r->ip);
    free(r->path);
    free(r->user);
    free(r->password);
    free(r->sub_channel);
    free(r);
}

void fs_redis_free(fs_redis_t *r)
{
    if (!r)
        return;
    if (r->in_cb > 0) { /* inside one of our callbacks: finish on the next loop pass */
        r->closing = true;
        event_active(r->free_ev, EV_TIMEOUT, 1);
        return;
    }
    redis_destroy(r);
}

/* A user command may go to hiredis when a context exists and is either up or in the very
 * first connect attempt (hiredis then queues it behind the handshake). Otherwise it fails
 * at once (from deliver_ev): during a reconnect nothing queues up. */
static rd_cmd_t *cmd_admit(fs_redis_t *r, fs_redis_cb cb, void *arg)
{
    rd_cmd_t *c = cmd_new(r, CMD_USER, cb, arg);
    r->commands++;
    if (r->closing)
        cmd_fail_later(r, c, rd_err_closed);
    else if (r->sub_channel)
        cmd_fail_later(r, c, rd_err_subscriber);
    else if (r->bad_url[0])
        cmd_fail_later(r, c, r->bad_url);
    else if (!r->ac || (r->state == RD_CONNECTING && r->tried))
        cmd_fail_later(r, c, rd_err_down);
    else
        return c;
    return NULL;
}

void fs_redis_commandargv(fs_redis_t *r, fs_redis_cb cb, void *arg, int argc, const char **argv,
                          const size_t *argvlen)
{
    rd_cmd_t *c = cmd_admit(r, cb, arg);
    if (c && cmd_issue(r, c, argc, argv, argvlen) < 0)
        cmd_fail_later(r, c, rd_err_rejected);
}

void fs_redis_command(fs_redis_t *r, fs_redis_cb cb, void *arg, const char *fmt, ...)
{
    rd_cmd_t *c = cmd_admit(r, cb, arg);
    if (!c)
        return;
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAsyncCommand(r->ac, on_reply, c, fmt, ap);
    va_end(ap);
    if (rc == REDIS_OK)
        cmd_arm(r, c);
    else
        cmd_fail_later(r, c, rd_err_rejected);
}

bool fs_redis_connected(const fs_redis_t *r)
{
    return r->state == RD_UP;
}

void fs_redis_get_stats(const fs_redis_t *r, fs_redis_stats_t *out)
{
    memset(out, 0, sizeof *out);
    out->connected = r->state == RD_UP;
    out->commands = r->commands;
    out->errors = r->errors;
    out->timeouts = r->timeouts;
    out->reconnects = r->reconnects;
    out->pending = r->pending;
}
