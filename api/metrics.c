/* GET /metrics — Prometheus text format.
 *
 * Families read from other modules (storage pools, memory, restarts kept by the master) are
 * refreshed by a collector just before rendering, so the hot paths only touch counters.
 * Every worker keeps its own registry; the worker answering a scrape gathers the others'
 * through their "metrics" actors and labels every series with worker="N", so one scrape of
 * the shared port shows the whole server.
 */
#include "api/routes.h"
#include "runtime/actor.h"
#include "runtime/alloc.h"
#include "runtime/metrics.h"
#include "runtime/shared.h"
#include "runtime/peer.h"
#include "runtime/worker.h"
#include "schemas/metrics.pb-c.h"
#include "storage/pg.h"
#include "storage/redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MSG_METRICS_DUMP_REQUEST = 10, MSG_METRICS_DUMP = 11 };
#define GATHER_TIMEOUT_MS 1000

static const char *const state_labels[] = {"state", NULL};
static const char *const actor_labels[] = {"actor", NULL};

static void set_gauge(fs_metrics_t *m, fs_metric_kind_t kind, const char *name, const char *help, double v)
{
    fs_metric_set(fs_metrics_simple(m, kind, name, help), v);
}

static void set_labelled(fs_metrics_t *m, fs_metric_kind_t kind, const char *name, const char *help,
                         const char *const *labels, const char *value, double v)
{
    const char *values[] = {value};
    fs_metric_set(fs_metrics_series(fs_metrics_family(m, kind, name, help, labels, NULL, 0), values), v);
}

static void collect_actor(const char *name, const fs_actor_stats_t *st, void *arg)
{
    fs_metrics_t *m = arg;
    set_labelled(m, FS_METRIC_GAUGE, "flightshark_actor_mailbox_depth", "Messages waiting in the actor's mailbox",
                 actor_labels, name, (double)st->depth);
    set_labelled(m, FS_METRIC_COUNTER, "flightshark_actor_processed_total", "Messages the actor handled",
                 actor_labels, name, (double)st->processed);
    set_labelled(m, FS_METRIC_COUNTER, "flightshark_actor_rejected_total",
                 "Messages refused because the mailbox was full", actor_labels, name, (double)st->rejected);
    set_labelled(m, FS_METRIC_COUNTER, "flightshark_actor_restarts_total", "Restarts after a failed message",
                 actor_labels, name, (double)st->restarts);
}

static void collect(fs_metrics_t *m, void *arg)
{
    fs_pg_stats_t pg;
    fs_pg_pool_stats(fs_worker->pg, &pg);
    const char *pg_help = "PostgreSQL pool connections by state";
    set_labelled(m, FS_METRIC_GAUGE, "flightshark_pg_connections", pg_help, state_labels, "connected", pg.connected);
    set_labelled(m, FS_METRIC_GAUGE, "flightshark_pg_connections", pg_help, state_labels, "busy", pg.busy);
    set_labelled(m, FS_METRIC_GAUGE, "flightshark_pg_connections", pg_help, state_labels, "configured", pg.size);
    set_gauge(m, FS_METRIC_GAUGE, "flightshark_pg_queued", "Queries waiting for a connection", (double)pg.queued);
    set_gauge(m, FS_METRIC_COUNTER, "flightshark_pg_queries_total", "Queries run", (double)pg.queries);
    set_gauge(m, FS_METRIC_COUNTER, "flightshark_pg_errors_total", "Queries that failed", (double)pg.errors);
    set_gauge(m, FS_METRIC_COUNTER, "flightshark_pg_reconnects_total", "PostgreSQL reconnections", (double)pg.reconnects);

    fs_redis_stats_t rs;
    fs_redis_get_stats(fs_worker->redis, &rs);
    set_gauge(m, FS_METRIC_GAUGE, "flightshark_redis_connected", "1 when Redis is connected", rs.connected);
    set_gauge(m, FS_METRIC_COUNTER, "flightshark_redis_commands_total", "Redis commands sent", (double)rs.commands);
    set_gauge(m, FS_METRIC_COUNTER, "flightshark_redis_errors_total", "Redis commands that failed", (double)rs.errors);
    set_gauge(m, FS_METRIC_COUNTER, "flightshark_redis_reconnects_total", "Redis reconnections", (double)rs.reconnects);

    fs_actor_system_foreach(fs_worker->actors, collect_actor, m);

    set_gauge(m, FS_METRIC_GAUGE, "flightshark_memory_allocated_bytes",
              "Bytes allocated by the application (jemalloc stats.allocated)", (double)fs_alloc_allocated_bytes());
    set_gauge(m, FS_METRIC_GAUGE, "flightshark_memory_resident_bytes",
              "Bytes in physically resident pages mapped by jemalloc (stats.resident)",
              (double)fs_alloc_resident_bytes());
    if (fs_shared)
        set_gauge(m, FS_METRIC_COUNTER, "flightshark_worker_restarts_total",
                  "Times the master replaced this worker slot after it died",
                  (double)atomic_load(&fs_shared->restarts[fs_worker->index]));
}

/* ---- the metrics actor: hands this worker's registry to the worker answering a scrape ---- */

static int metrics_behaviour(fs_actor_t *self, void *state, fs_msg_t *msg)
{
    if (msg->type != MSG_METRICS_DUMP_REQUEST)
        return FS_OK;
    Fs__Metrics__Dump *dump = fs_pb_new(&fs__metrics__dump__descriptor);
    size_t len;
    dump->text = fs_metrics_render(fs_worker->metrics, &len);
    dump->has_worker = true;
    dump->worker = (uint32_t)fs_worker->index;
    return fs_actor_reply(msg, MSG_METRICS_DUMP, &dump->base);
}

void fs_api_metrics_register_types(void)
{
    fs_msg_type_register(MSG_METRICS_DUMP_REQUEST, &fs__metrics__dump_request__descriptor);
    fs_msg_type_register(MSG_METRICS_DUMP, &fs__metrics__dump__descriptor);
}

void fs_api_metrics_spawn_actor(fs_actor_system_t *sys)
{
    fs_api_metrics_register_types();
    fs_actor_spawn(sys, &(fs_actor_spec_t){.name = "metrics", .behaviour = metrics_behaviour});
}

/* ---- merging the workers' texts ----------------------------------------------------------- */

typedef struct {
    char *name;
    char *header; /* HELP and TYPE lines */
    char *samples;
    size_t samples_len;
} family_t;

typedef struct {
    family_t *items;
    size_t n, cap;
} families_t;

static family_t *family_for(families_t *fs, const char *name, size_t len)
{
    for (size_t i = 0; i < fs->n; i++)
        if (strlen(fs->items[i].name) == len && memcmp(fs->items[i].name, name, len) == 0)
            return &fs->items[i];
    if (fs->n == fs->cap) {
        fs->cap = fs->cap ? fs->cap * 2 : 64;
        fs->items = fs_realloc(fs->items, fs->cap * sizeof(family_t));
    }
    family_t *f = &fs->items[fs->n++];
    *f = (family_t){.name = fs_strndup(name, len), .header = fs_strdup(""), .samples = fs_strdup("")};
    return f;
}

static void append(char **dst, size_t *dst_len, const char *src, size_t len)
{
    *dst = fs_realloc(*dst, *dst_len + len + 1);
    memcpy(*dst + *dst_len, src, len);
    *dst_len += len;
    (*dst)[*dst_len] = '\0';
}

/* Adds `worker="N"` as the first label of a sample line. */
static void append_sample(family_t *f, const char *line, size_t len, int worker)
{
    char label[32];
    size_t name_len = strcspn(line, "{ ");
    if (name_len > len)
        name_len = len;
    bool has_labels = name_len < len && line[name_len] == '{';
    int n = snprintf(label, sizeof label, has_labels ? "{worker=\"%d\"," : "{worker=\"%d\"}", worker);
    append(&f->samples, &f->samples_len, line, name_len);
    append(&f->samples, &f->samples_len, label, (size_t)n);
    size_t rest = name_len + (has_labels ? 1 : 0);
    append(&f->samples, &f->samples_len, line + rest, len - rest);
    append(&f->samples, &f->samples_len, "\n", 1);
}

/* Prometheus wants each family's samples together under one HELP/TYPE: group the lines of
 * every worker's text by family, keeping the order in which families first appear. */
static void merge_text(families_t *fs, const char *text, int worker)
{
    family_t *current = NULL;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > 7 && (strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0)) {
            const char *name = line + 7;
            size_t name_len = strcspn(name, " \n");
            current = family_for(fs, name, name_len);
            if (!strstr(current->header, line[2] == 'H' ? "# HELP " : "# TYPE ")) {
                size_t hl = strlen(current->header);
                append(&current->header, &hl, line, len);
                append(&current->header, &hl, "\n", 1);
            }
        } else if (len > 0 && line[0] != '#' && current) {
            append_sample(current, line, len, worker);
        }
        line = end ? end + 1 : line + len;
    }
}

static char *render_merged(char **texts, int n, size_t *out_len)
{
    families_t fs = {0};
    for (int i = 0; i < n; i++)
        if (texts[i])
            merge_text(&fs, texts[i], i);
    char *out = fs_strdup("");
    size_t len = 0;
    for (size_t i = 0; i < fs.n; i++) {
        append(&out, &len, fs.items[i].header, strlen(fs.items[i].header));
        append(&out, &len, fs.items[i].samples, fs.items[i].samples_len);
        free(fs.items[i].name);
        free(fs.items[i].header);
        free(fs.items[i].samples);
    }
    free(fs.items);
    *out_len = len;
    return out;
}

/* ---- GET /metrics --------------------------------------------------------------------------- */

typedef struct {
    fs_req_t *req;
    int pending;
    int count;
    char **texts;
} scrape_t;

static void finish_scrape(scrape_t *s)
{
    size_t len;
    char *text = render_merged(s->texts, s->count, &len);
    fs_reply_raw(s->req, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    free(text);
    for (int i = 0; i < s->count; i++)
        free(s->texts[i]);
    free(s->texts);
    free(s);
}

typedef struct {
    scrape_t *scrape;
    int worker;
} gather_t;

static void on_dump(int status, fs_msg_t *reply, void *arg)
{
    gather_t *g = arg;
    scrape_t *s = g->scrape;
    Fs__Metrics__Dump *dump = status == FS_OK ? fs_msg_body(reply, &fs__metrics__dump__descriptor) : NULL;
    if (dump && dump->text)
        s->texts[g->worker] = fs_strdup(dump->text);
    free(g);
    if (--s->pending == 0)
        finish_scrape(s);
}

/* Renders this worker's registry and asks every other worker's metrics actor for its own;
 * a worker that does not answer within GATHER_TIMEOUT_MS (restarting) is left out. */
static void get_metrics(fs_req_t *req)
{
    scrape_t *s = FS_NEW(scrape_t);
    s->req = req;
    s->count = fs_worker->count;
    s->texts = fs_calloc((size_t)s->count, sizeof(char *));
    size_t len;
    s->texts[fs_worker->index] = fs_metrics_render(fs_worker->metrics, &len);
    s->pending = 1;
    for (int i = 0; i < s->count; i++) {
        if (i == fs_worker->index)
            continue;
        gather_t *g = FS_NEW(gather_t);
        *g = (gather_t){.scrape = s, .worker = i};
        ProtobufCMessage *ask = fs_pb_new(&fs__metrics__dump_request__descriptor);
        if (fs_peer_ask(fs_worker->peer, NULL, i, "metrics", MSG_METRICS_DUMP_REQUEST, ask, GATHER_TIMEOUT_MS, on_dump,
                        g) == FS_OK)
            s->pending++;
        else
            free(g);
    }
    if (--s->pending == 0)
        finish_scrape(s);
}

void fs_api_metrics_routes(fs_router_t *r)
{
    fs_router_add(r, "GET", "/metrics", get_metrics);
}

/* Installed by the worker once its metrics registry exists. */
void fs_api_metrics_install(fs_metrics_t *m)
{
    fs_metrics_on_collect(m, collect, NULL);
}
