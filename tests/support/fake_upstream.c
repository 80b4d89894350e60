/* A scriptable upstream HTTP server for tests (see fake_upstream.h): libevent's evhttp on a
 * thread of its own. The script and the request log are shared with the test thread under
 * one mutex; everything else belongs to the server thread. Stop is a byte on a pipe, so the
 * test process needs no libevent thread support. */
#include "tests/support/fake_upstream.h"

#include "runtime/alloc.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct answer {
    int status;
    char *body, *headers;
    int delay_ms;
    struct answer *next;
} answer_t;

typedef struct route {
    char *method; /* NULL = any */
    char *path;
    answer_t *standing;
    answer_t *queue;
    struct route *next;
} route_t;

typedef struct logged {
    fs_fake_request_t r;
    struct logged *next;
} logged_t;

typedef struct pending {
    fs_fake_upstream_t *f;
    struct evhttp_request *req;
    answer_t *a;
    struct event *ev;
    struct pending *prev, *next;
} pending_t;

struct fs_fake_upstream {
    pthread_t thread;
    pthread_mutex_t lock;
    route_t *routes;     /* under lock */
    logged_t *log_head, *log_tail; /* under lock */
    struct event_base *base;
    struct evhttp *http;
    struct event *stop_ev;
    int stop_pipe[2];
    pending_t *pending;  /* server thread only */
    int port;
    char url[40];
};

static answer_t *answer_copy(const fs_fake_answer_t *a)
{
    answer_t *c = FS_NEW(answer_t);
    c->status = a->status ? a->status : 200;
    c->body = fs_strdup(a->body ? a->body : "");
    c->headers = a->headers ? fs_strdup(a->headers) : NULL;
    c->delay_ms = a->delay_ms;
    return c;
}

static void answer_free(answer_t *a)
{
    if (!a)
        return;
    free(a->body);
    free(a->headers);
    free(a);
}

static void answers_free(answer_t *a)
{
    while (a) {
        answer_t *next = a->next;
        answer_free(a);
        a = next;
    }
}

/* ---- script (under lock) ------------------------------------------------------------------ */

static bool method_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static route_t *route_get(fs_fake_upstream_t *f, const char *method, const char *path)
{
    for (route_t *r = f->routes; r; r = r->next)
        if (method_eq(r->method, method) && strcmp(r->path, path) == 0)
            return r;
    route_t *r = FS_NEW(route_t);
    r->method = method ? fs_strdup(method) : NULL;
    r->path = fs_strdup(path);
    r->next = f->routes;
    f->routes = r;
    return r;
}

/* The answer for a request (a copy the server thread owns), or NULL for "no route". Routes
 * with an exact method win over any-method routes. */
static answer_t *route_take(fs_fake_upstream_t *f, const char *method, const char *path)
{
    route_t *best = NULL;
    for (route_t *r = f->routes; r; r = r->next) {
        if (strcmp(r->path, path) != 0 || (r->method && strcmp(r->method, method) != 0))
            continue;
        if (!r->queue && !r->standing)
            continue;
        if (!best || (r->method && !best->method))
            best = r;
    }
    if (!best)
        return NULL;
    if (best->queue) {
        answer_t *a = best->queue;
        best->queue = a->next;
        a->next = NULL;
        return a;
    }
    fs_fake_answer_t s = {best->standing->status, best->standing->body, best->standing->headers,
                          best->standing->delay_ms};
    return answer_copy(&s);
}

static void routes_free(route_t *r)
{
    while (r) {
        route_t *next = r->next;
        free(r->method);
        free(r->path);
        answer_free(r->standing);
        answers_free(r->queue);
        free(r);
        r = next;
    }
}

static void log_clear(fs_fake_upstream_t *f)
{
    for (logged_t *l = f->log_head; l;) {
        logged_t *next = l->next;
        free(l->r.method);
        free(l->r.path);
        free(l->r.query);
        free(l->r.headers);
        free(l->r.body);
        free(l);
        l = next;
    }
    f->log_head = f->log_tail = NULL;
}

/* ---- the server thread -------------------------------------------------------------------- */

static const char *method_name(enum evhttp_cmd_type t)
{
    switch (t) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return "OTHER";
    }
}

static logged_t *record(struct evhttp_request *req)
{
    logged_t *l = FS_NEW(logged_t);
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *path = evhttp_uri_get_path(u), *query = evhttp_uri_get_query(u);
    l->r.method = fs_strdup(method_name(evhttp_request_get_command(req)));
    l->r.path = fs_strdup(path && *path ? path : "/");
    l->r.query = fs_strdup(query ? query : "");
    size_t hlen = 0;
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evkeyval *kv;
    for (kv = in->tqh_first; kv; kv = kv->next.tqe_next)
        hlen += strlen(kv->key) + strlen(kv->value) + 3;
    l->r.headers = fs_calloc(1, hlen + 1);
    char *p = l->r.headers;
    for (kv = in->tqh_first; kv; kv = kv->next.tqe_next)
        p += sprintf(p, "%s: %s\n", kv->key, kv->value);
    struct evbuffer *b = evhttp_request_get_input_buffer(req);
    l->r.body_len = evbuffer_get_length(b);
    l->r.body = fs_malloc(l->r.body_len + 1);
    evbuffer_copyout(b, l->r.body, l->r.body_len);
    l->r.body[l->r.body_len] = '\0';
    return l;
}

static void add_headers(struct evhttp_request *req, const char *lines, bool has_body)
{
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    bool has_type = false;
    for (const char *p = lines; p && *p;) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        char *line = fs_strndup(p, n), *colon = strchr(line, ':');
        if (colon) {
            *colon = '\0';
            const char *v = colon + 1;
            while (*v == ' ')
                v++;
            evhttp_add_header(out, line, v);
            has_type |= strcasecmp(line, "Content-Type") == 0;
        }
        free(line);
        p += n + (eol ? 1 : 0);
    }
    if (has_body && !has_type)
        evhttp_add_header(out, "Content-Type", "application/json");
}

static void reply(struct evhttp_request *req, const answer_t *a)
{
    add_headers(req, a->headers, a->body[0] != '\0');
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, a->body, strlen(a->body));
    evhttp_send_reply(req, a->status, NULL, b);
    evbuffer_free(b);
}

static void pending_unlink(pending_t *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        p->f->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    event_free(p->ev);
    answer_free(p->a);
    free(p);
}

static void on_delay(evutil_socket_t fd, short what, void *arg)
{
    pending_t *p = arg;
    reply(p->req, p->a);
    pending_unlink(p);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    fs_fake_upstream_t *f = arg;
    logged_t *l = record(req);
    pthread_mutex_lock(&f->lock);
    answer_t *a = route_take(f, l->r.method, l->r.path);
    if (f->log_tail)
        f->log_tail->next = l;
    else
        f->log_head = l;
    f->log_tail = l;
    pthread_mutex_unlock(&f->lock);
    if (!a) {
        fs_fake_answer_t none = {404, "{\"error\":\"no route\"}", NULL, 0};
        a = answer_copy(&none);
    }
    if (a->delay_ms <= 0) {
        reply(req, a);
        answer_free(a);
        return;
    }
    /* A client that gives up meanwhile leaves evhttp's request detached but alive until we
     * answer it (evhttp_connection_incoming_fail), so the later reply is safe. */
    pending_t *p = FS_NEW(pending_t);
    p->f = f;
    p->req = req;
    p->a = a;
    p->ev = evtimer_new(f->base, on_delay, p);
    p->next = f->pending;
    if (f->pending)
        f->pending->prev = p;
    f->pending = p;
    struct timeval tv = {a->delay_ms / 1000, (a->delay_ms % 1000) * 1000};
    evtimer_add(p->ev, &tv);
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    fs_fake_upstream_t *f = arg;
    while (f->pending) {
        fs_fake_answer_t bye = {503, "{\"error\":\"stopping\"}", NULL, 0};
        answer_t *a = answer_copy(&bye);
        reply(f->pending->req, a);
        answer_free(a);
        pending_unlink(f->pending);
    }
    event_base_loopbreak(f->base);
}

static void *serve(void *arg)
{
    fs_fake_upstream_t *f = arg;
    event_base_dispatch(f->base);
    return NULL;
}

/* ---- public ------------------------------------------------------------------------------- */

fs_fake_upstream_t *fs_fake_upstream_start(void)
{
    fs_fake_upstream_t *f = FS_NEW(fs_fake_upstream_t);
    pthread_mutex_init(&f->lock, NULL);
    f->base = event_base_new();
    f->http = evhttp_new(f->base);
    evhttp_set_allowed_methods(f->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(f->http, on_request, f);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(f->http, "127.0.0.1", 0);
    if (!bs || pipe(f->stop_pipe) != 0) {
        evhttp_free(f->http);
        event_base_free(f->base);
        free(f);
        return NULL;
    }
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &len);
    f->port = ntohs(sa.sin_port);
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d", f->port);
    f->stop_ev = event_new(f->base, f->stop_pipe[0], EV_READ, on_stop, f);
    event_add(f->stop_ev, NULL);
    pthread_create(&f->thread, NULL, serve, f);
    return f;
}

void fs_fake_upstream_stop(fs_fake_upstream_t *f)
{
    if (!f)
        return;
    char b = 1;
    if (write(f->stop_pipe[1], &b, 1) != 1)
        abort();
    pthread_join(f->thread, NULL);
    evhttp_free(f->http);
    event_free(f->stop_ev);
    event_base_free(f->base);
    close(f->stop_pipe[0]);
    close(f->stop_pipe[1]);
    routes_free(f->routes);
    log_clear(f);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

int fs_fake_upstream_port(const fs_fake_upstream_t *f)
{
    return f->port;
}

const char *fs_fake_upstream_url(const fs_fake_upstream_t *f)
{
    return f->url;
}

void fs_fake_upstream_set(fs_fake_upstream_t *f, const char *method, const char *path, const fs_fake_answer_t *a)
{
    pthread_mutex_lock(&f->lock);
    route_t *r = route_get(f, method, path);
    answer_free(r->standing);
    r->standing = answer_copy(a);
    pthread_mutex_unlock(&f->lock);
}

void fs_fake_upstream_push(fs_fake_upstream_t *f, const char *method, const char *path, const fs_fake_answer_t *a)
{
    pthread_mutex_lock(&f->lock);
    route_t *r = route_get(f, method, path);
    answer_t **tail = &r->queue;
    while (*tail)
        tail = &(*tail)->next;
    *tail = answer_copy(a);
    pthread_mutex_unlock(&f->lock);
}

void fs_fake_upstream_json(fs_fake_upstream_t *f, const char *method, const char *path, int status, const char *body)
{
    fs_fake_answer_t a = {status, body, NULL, 0};
    fs_fake_upstream_set(f, method, path, &a);
}

void fs_fake_upstream_reset(fs_fake_upstream_t *f)
{
    pthread_mutex_lock(&f->lock);
    routes_free(f->routes);
    f->routes = NULL;
    log_clear(f);
    pthread_mutex_unlock(&f->lock);
}

int fs_fake_upstream_count(fs_fake_upstream_t *f, const char *path)
{
    int n = 0;
    pthread_mutex_lock(&f->lock);
    for (logged_t *l = f->log_head; l; l = l->next)
        n += !path || strcmp(l->r.path, path) == 0;
    pthread_mutex_unlock(&f->lock);
    return n;
}

fs_fake_request_t *fs_fake_upstream_last(fs_fake_upstream_t *f, const char *path)
{
    fs_fake_request_t *c = NULL;
    pthread_mutex_lock(&f->lock);
    const logged_t *last = NULL;
    for (logged_t *l = f->log_head; l; l = l->next)
        if (!path || strcmp(l->r.path, path) == 0)
            last = l;
    if (last) {
        c = FS_NEW(fs_fake_request_t);
        c->method = fs_strdup(last->r.method);
        c->path = fs_strdup(last->r.path);
        c->query = fs_strdup(last->r.query);
        c->headers = fs_strdup(last->r.headers);
        c->body = fs_malloc(last->r.body_len + 1);
        memcpy(c->body, last->r.body, last->r.body_len + 1);
        c->body_len = last->r.body_len;
    }
    pthread_mutex_unlock(&f->lock);
    return c;
}

void fs_fake_request_free(fs_fake_request_t *r)
{
    if (!r)
        return;
    free(r->method);
    free(r->path);
    free(r->query);
    free(r->headers);
    free(r->body);
    free(r);
}

static const char *copy_value(const char *v, size_t n, char *buf, size_t size)
{
    if (size == 0)
        return NULL;
    if (n >= size)
        n = size - 1;
    memcpy(buf, v, n);
    buf[n] = '\0';
    return buf;
}

const char *fs_fake_request_header(const fs_fake_request_t *r, const char *name, char *buf, size_t size)
{
    size_t nlen = strlen(name);
    for (const char *p = r->headers; *p;) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        if (n > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            const char *v = p + nlen + 1;
            while (*v == ' ')
                v++;
            return copy_value(v, (size_t)(p + n - v), buf, size);
        }
        p += n + (eol ? 1 : 0);
    }
    return NULL;
}

const char *fs_fake_request_param(const fs_fake_request_t *r, const char *name, char *buf, size_t size)
{
    size_t nlen = strlen(name);
    for (const char *p = r->query; *p;) {
        const char *amp = strchr(p, '&');
        size_t n = amp ? (size_t)(amp - p) : strlen(p);
        if (n >= nlen && strncmp(p, name, nlen) == 0 && (n == nlen || p[nlen] == '='))
            return copy_value(p + nlen + (n > nlen), n - nlen - (n > nlen), buf, size);
        p += n + (amp ? 1 : 0);
    }
    return NULL;
}
