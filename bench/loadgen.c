#include "bench/loadgen.h"

#include "runtime/alloc.h"

#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* After a refused connect, wait this long before the next attempt so that a server that is
 * down is probed at a bounded rate instead of in a busy loop. */
#define RECONNECT_DELAY_US 20000
/* Bytes read per event; the loop comes back for the rest (level-triggered). */
#define READ_CHUNK 65536

typedef struct worker worker_t;

typedef struct conn {
    worker_t *w;
    int fd;
    int idx;               /* global connection index: phase and seed */
    struct event *rd, *wr; /* wr: connect completion and partial writes */
    struct event *timer;   /* next scheduled send, or reconnect delay */
    struct event *tmo;     /* response timeout */
    bool connecting, inflight;
    bool send_pending; /* timer armed for request k-1, not yet sent */
    void *pstate;
    const fs_bench_buf_t *req;
    size_t woff;
    int64_t intended_us, sent_us;
    uint64_t k; /* open loop: index of the next scheduled request */
    uint64_t rng;
} conn_t;

struct worker {
    const fs_bench_opts_t *o;
    struct event_base *base;
    conn_t *conns;
    int nconns, first_conn;
    fs_hist_t *lat, *svc;
    fs_bench_result_t res; /* counters only; histograms above */
    int64_t t0, mstart, end;
    double interval_us; /* open loop, per connection */
    uint64_t quota, sent, finished;
    uint64_t all_responses;
    int64_t last_done_us;
    struct event *stop;
    pthread_t tid;
    char *err;
    char rbuf[READ_CHUNK];
};

static const char *const err_names[FS_BENCH_ERR__COUNT] = {"connect", "timeout", "non2xx",
                                                           "read",    "parse",   "closed"};

const char *fs_bench_err_name(fs_bench_err_t e)
{
    return e < FS_BENCH_ERR__COUNT ? err_names[e] : "?";
}

int64_t fs_bench_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static struct timeval tv_us(int64_t us)
{
    if (us < 0)
        us = 0;
    return (struct timeval){.tv_sec = us / 1000000, .tv_usec = us % 1000000};
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * UINT64_C(2685821657736338717);
}

static bool closed_loop(const worker_t *w)
{
    return w->o->rate <= 0;
}

static bool in_window(const worker_t *w, int64_t start_us, int64_t now)
{
    return start_us >= w->mstart && now <= w->end;
}

static void conn_connect(conn_t *c);
static void conn_schedule(conn_t *c);

static void finish_one(worker_t *w, int64_t now)
{
    w->last_done_us = now;
    if (w->o->requests && ++w->finished >= w->quota)
        event_base_loopbreak(w->base);
}

static void conn_close(conn_t *c)
{
    event_del(c->rd);
    event_del(c->wr);
    event_del(c->tmo);
    event_del(c->timer);
    if (c->send_pending) {
        c->k--; /* the scheduled request was never sent: send it after reconnecting */
        c->send_pending = false;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->connecting = c->inflight = false;
}

static void on_reconnect_timer(evutil_socket_t fd, short what, void *arg)
{
    conn_connect(arg);
}

/* Counts a failure (when it falls in the window), closes the connection and opens a new one. */
static void conn_fail(conn_t *c, fs_bench_err_t kind)
{
    worker_t *w = c->w;
    int64_t now = fs_bench_now_us();
    bool counted = c->inflight || kind == FS_BENCH_ERR_CONNECT;
    int64_t start = c->inflight ? c->intended_us : now;
    if (counted && in_window(w, start, now))
        w->res.errors[kind]++;
    if (!c->inflight && kind == FS_BENCH_ERR_CONNECT && w->o->requests) {
        /* --requests: a failed connect uses up the request it was for, so that a dead target
         * ends the run after N attempts instead of at the time cap */
        w->sent++;
        finish_one(w, now);
    } else if (c->inflight) {
        finish_one(w, now);
    }
    conn_close(c);
    if (kind == FS_BENCH_ERR_CONNECT) {
        struct timeval tv = tv_us(RECONNECT_DELAY_US);
        event_assign(c->timer, w->base, -1, 0, on_reconnect_timer, c);
        event_add(c->timer, &tv);
    } else {
        conn_connect(c);
    }
}

static void conn_write(conn_t *c)
{
    while (c->woff < c->req->len) {
        ssize_t n = send(c->fd, c->req->data + c->woff, c->req->len - c->woff, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            event_add(c->wr, NULL);
            return;
        }
        if (n < 0) {
            conn_fail(c, FS_BENCH_ERR_READ);
            return;
        }
        c->woff += (size_t)n;
    }
}

static const fs_bench_buf_t *pick_request(conn_t *c)
{
    const fs_scenario_t *s = c->w->o->scn;
    uint64_t r = rng_next(&c->rng) % s->total_weight;
    const fs_scn_req_t *t = s->reqs;
    for (int i = 0; i < s->nreqs; i++) {
        t = &s->reqs[i];
        if (r < t->weight)
            break;
        r -= t->weight;
    }
    return &t->rendered[rng_next(&c->rng) % t->nrendered];
}

static void conn_send(conn_t *c, int64_t intended)
{
    worker_t *w = c->w;
    if (w->o->requests) {
        if (w->sent >= w->quota)
            return;
        w->sent++;
    }
    c->req = pick_request(c);
    c->woff = 0;
    c->sent_us = fs_bench_now_us();
    c->intended_us = intended ? intended : c->sent_us;
    if (c->sent_us > c->intended_us + 1000)
        w->res.late += in_window(w, c->intended_us, c->sent_us);
    c->inflight = true;
    w->o->proto->reset(c->pstate);
    struct timeval tv = tv_us((int64_t)(w->o->timeout_s * 1e6));
    event_add(c->tmo, &tv);
    conn_write(c);
}

static void arm_send_timer(conn_t *c, int64_t wait_us)
{
    c->send_pending = true;
    struct timeval tv = tv_us(wait_us);
    event_add(c->timer, &tv);
}

/* libevent computes a timer's expiry from the loop's cached time, which lags the clock by the
 * work done since the loop woke, so a timer may fire a little early: wait out the remainder
 * rather than send before the intended time. */
static void on_send_timer(evutil_socket_t fd, short what, void *arg)
{
    conn_t *c = arg;
    int64_t early = c->intended_us - fs_bench_now_us();
    if (early > 0) {
        arm_send_timer(c, early);
        return;
    }
    c->send_pending = false;
    conn_send(c, c->intended_us);
}

/* Closed loop: send now. Open loop: request k of connection i is due at
 * t0 + (i / connections + k) * interval; a request that is already late goes out at once and is
 * charged from its due time, which is the whole of the coordinated-omission correction. */
static void conn_schedule(conn_t *c)
{
    worker_t *w = c->w;
    if (closed_loop(w)) {
        conn_send(c, 0);
        return;
    }
    double phase = w->interval_us * (double)c->idx / (double)w->o->connections;
    int64_t due = w->t0 + (int64_t)(phase + (double)c->k * w->interval_us);
    c->k++;
    int64_t now = fs_bench_now_us();
    if (due <= now) {
        conn_send(c, due);
        return;
    }
    c->intended_us = due;
    event_assign(c->timer, w->base, -1, 0, on_send_timer, c);
    event_base_update_cache_time(w->base);
    arm_send_timer(c, due - fs_bench_now_us());
}

static void record(conn_t *c, const fs_proto_resp_t *resp, int64_t now)
{
    worker_t *w = c->w;
    w->all_responses++;
    if (!in_window(w, c->intended_us, now)) {
        if (c->intended_us < w->mstart)
            w->res.warmup_responses++;
        return;
    }
    w->res.responses++;
    w->res.bytes += resp->body_len;
    w->res.status_class[resp->status >= 100 && resp->status < 600 ? resp->status / 100 : 0]++;
    if (resp->ok)
        w->res.ok++;
    else
        w->res.errors[FS_BENCH_ERR_STATUS]++;
    fs_hist_record(w->lat, now > c->intended_us ? (uint64_t)(now - c->intended_us) : 0);
    fs_hist_record(w->svc, now > c->sent_us ? (uint64_t)(now - c->sent_us) : 0);
}

static void conn_complete(conn_t *c, const fs_proto_resp_t *resp)
{
    int64_t now = fs_bench_now_us();
    event_del(c->tmo);
    c->inflight = false;
    record(c, resp, now);
    finish_one(c->w, now);
    if (!resp->keep_alive) {
        conn_close(c);
        conn_connect(c);
        return;
    }
    conn_schedule(c);
}

static void on_eof(conn_t *c)
{
    fs_proto_resp_t resp = {0};
    if (c->inflight && c->w->o->proto->eof(c->pstate, &resp) == FS_PROTO_DONE) {
        conn_complete(c, &resp);
        return;
    }
    if (!c->inflight) {
        /* an idle keep-alive connection closed by the server: just reopen it */
        conn_close(c);
        conn_connect(c);
        return;
    }
    conn_fail(c, FS_BENCH_ERR_CLOSED);
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    conn_t *c = arg;
    worker_t *w = c->w;
    ssize_t n = read(fd, w->rbuf, sizeof w->rbuf);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            conn_fail(c, errno == ECONNRESET && !c->inflight ? FS_BENCH_ERR_CLOSED : FS_BENCH_ERR_READ);
        return;
    }
    if (n == 0) {
        on_eof(c);
        return;
    }
    if (!c->inflight) {
        conn_fail(c, FS_BENCH_ERR_PARSE);
        return;
    }
    fs_proto_resp_t resp = {0};
    size_t used = 0;
    fs_proto_rc_t rc = w->o->proto->feed(c->pstate, w->rbuf, (size_t)n, &used, &resp);
    if (rc == FS_PROTO_ERROR || (rc == FS_PROTO_DONE && used != (size_t)n)) {
        conn_fail(c, FS_BENCH_ERR_PARSE);
        return;
    }
    if (rc == FS_PROTO_DONE)
        conn_complete(c, &resp);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    conn_fail(arg, FS_BENCH_ERR_TIMEOUT);
}

static void on_connected(conn_t *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) {
        conn_fail(c, FS_BENCH_ERR_CONNECT);
        return;
    }
    c->connecting = false;
    event_add(c->rd, NULL);
    /* open loop: the schedule continues where it was; requests missed while reconnecting go
     * out at once and carry their delay */
    if (closed_loop(c->w))
        conn_send(c, 0);
    else
        conn_schedule(c);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    conn_t *c = arg;
    if (c->connecting)
        on_connected(c);
    else
        conn_write(c);
}

static void conn_connect(conn_t *c)
{
    worker_t *w = c->w;
    if (w->o->requests && w->sent >= w->quota)
        return;
    c->fd = socket(w->o->addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        conn_fail(c, FS_BENCH_ERR_CONNECT);
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    event_assign(c->rd, w->base, c->fd, EV_READ | EV_PERSIST, on_read, c);
    event_assign(c->wr, w->base, c->fd, EV_WRITE, on_write, c);
    c->connecting = true;
    if (connect(c->fd, w->o->addr, w->o->addrlen) == 0 || errno == EINPROGRESS) {
        event_add(c->wr, NULL);
        return;
    }
    conn_fail(c, FS_BENCH_ERR_CONNECT);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    event_base_loopbreak(((worker_t *)arg)->base);
}

static int worker_setup(worker_t *w)
{
    struct event_config *cfg = event_config_new();
    /* open-loop schedules need sub-millisecond timers (timerfd instead of epoll's ms timeout) */
    if (!closed_loop(w))
        event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    w->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!w->base) {
        w->err = fs_strdup("event_base_new failed");
        return -1;
    }
    w->lat = fs_hist_new();
    w->svc = fs_hist_new();
    for (int i = 0; i < w->nconns; i++) {
        conn_t *c = &w->conns[i];
        c->w = w;
        c->fd = -1;
        c->idx = w->first_conn + i;
        c->rng = (w->o->seed ^ (UINT64_C(0x9E3779B97F4A7C15) * (uint64_t)(c->idx + 1))) | 1;
        c->pstate = fs_calloc(1, w->o->proto->state_size);
        c->rd = event_new(w->base, -1, 0, on_read, c);
        c->wr = event_new(w->base, -1, 0, on_write, c);
        c->timer = evtimer_new(w->base, on_reconnect_timer, c);
        c->tmo = evtimer_new(w->base, on_timeout, c);
    }
    return 0;
}

static void worker_teardown(worker_t *w)
{
    for (int i = 0; w->base && i < w->nconns; i++) {
        conn_t *c = &w->conns[i];
        conn_close(c);
        event_free(c->rd);
        event_free(c->wr);
        event_free(c->timer);
        event_free(c->tmo);
        free(c->pstate);
    }
    if (w->stop)
        event_free(w->stop);
    if (w->base)
        event_base_free(w->base);
    free(w->conns);
}
static void *worker_main(void *arg)
{
    worker_t *w = arg;
    if (worker_setup(w) != 0)
        return NULL;
    w->stop = evtimer_new(w->base, on_stop, w);
    struct timeval tv = tv_us(w->end - fs_bench_now_us());
    event_add(w->stop, &tv);
    for (int i = 0; i < w->nconns; i++)
        conn_connect(&w->conns[i]);
    if (!w->o->requests || w->quota > 0)
        event_base_dispatch(w->base);
    return NULL;
}

static void split(worker_t *ws, int nthreads, const fs_bench_opts_t *o, int64_t t0)
{
    int first = 0;
    for (int i = 0; i < nthreads; i++) {
        worker_t *w = &ws[i];
        w->o = o;
        w->nconns = o->connections / nthreads + (i < o->connections % nthreads);
        w->first_conn = first;
        first += w->nconns;
        w->conns = fs_calloc((size_t)w->nconns, sizeof(conn_t));
        w->t0 = t0;
        if (o->requests) {
            w->quota = o->requests / (uint64_t)nthreads + ((uint64_t)i < o->requests % (uint64_t)nthreads);
            w->mstart = t0;
        } else {
            w->mstart = t0 + (int64_t)(o->warmup_s * 1e6);
        }
        w->end = w->mstart + (int64_t)(o->duration_s * 1e6);
        if (o->rate > 0)
            w->interval_us = 1e6 * o->connections / o->rate;
    }
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void merge(worker_t *ws, int n, fs_bench_result_t *out)
{
    out->latency = fs_hist_new();
    out->service = fs_hist_new();
    int64_t last = ws[0].t0;
    for (int i = 0; i < n; i++) {
        const fs_bench_result_t *r = &ws[i].res;
        fs_hist_merge(out->latency, ws[i].lat);
        fs_hist_merge(out->service, ws[i].svc);
        out->responses += r->responses;
        out->ok += r->ok;
        out->bytes += r->bytes;
        out->warmup_responses += r->warmup_responses;
        out->all_responses += ws[i].all_responses;
        out->late += r->late;
        for (int k = 0; k < 6; k++)
            out->status_class[k] += r->status_class[k];
        for (int k = 0; k < FS_BENCH_ERR__COUNT; k++)
            out->errors[k] += r->errors[k];
        if (ws[i].last_done_us > last)
            last = ws[i].last_done_us;
    }
    out->elapsed_s = ws[0].o->requests ? (double)(last - ws[0].t0) / 1e6 : ws[0].o->duration_s;
}

static int check_opts(const fs_bench_opts_t *o, char **err)
{
    if (o->connections < 1) {
        *err = fs_strdup("connections must be at least 1");
        return -1;
    }
    if (o->duration_s <= 0 || o->timeout_s <= 0) {
        *err = fs_strdup("duration and timeout must be positive");
        return -1;
    }
    if (o->scn->total_weight == 0 || !o->scn->reqs[0].rendered) {
        *err = fs_strdup("scenario is not rendered");
        return -1;
    }
    return 0;
}

int fs_bench_run(const fs_bench_opts_t *o, fs_bench_result_t *out, char **err)
{
    memset(out, 0, sizeof *out);
    if (check_opts(o, err) != 0)
        return -1;
    int nthreads = o->threads < 1 ? 1 : o->threads;
    if (nthreads > o->connections)
        nthreads = o->connections;
    worker_t *ws = fs_calloc((size_t)nthreads, sizeof(worker_t));
    double cpu0 = cpu_seconds();
    split(ws, nthreads, o, fs_bench_now_us());
    for (int i = 0; i < nthreads; i++)
        pthread_create(&ws[i].tid, NULL, worker_main, &ws[i]);
    int rc = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(ws[i].tid, NULL);
        if (ws[i].err && rc == 0) {
            *err = ws[i].err;
            ws[i].err = NULL;
            rc = -1;
        }
    }
    if (rc == 0) {
        merge(ws, nthreads, out);
        out->cpu_s = cpu_seconds() - cpu0;
    }
    for (int i = 0; i < nthreads; i++) {
        fs_hist_free(ws[i].lat);
        fs_hist_free(ws[i].svc);
        free(ws[i].err);
        worker_teardown(&ws[i]);
    }
    free(ws);
    return rc;
}

void fs_bench_result_free(fs_bench_result_t *r)
{
    fs_hist_free(r->latency);
    fs_hist_free(r->service);
    r->latency = r->service = NULL;
}

uint64_t fs_bench_error_total(const fs_bench_result_t *r)
{
    uint64_t n = 0;
    for (int k = 0; k < FS_BENCH_ERR__COUNT; k++)
        n += r->errors[k];
    return n;
}
