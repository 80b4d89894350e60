/* ingest-bench: rows/s of the price-ingest actor, driven directly (no RPC), against the
 * database in DATABASE_URL. bench/ingest-vs-copy.sh compares it with `psql \copy` of the
 * same rows into the same table.
 *
 *   ingest-bench [--rows N] [--msg ROWS] [--inflight K] [--batch ROWS] [--no-stream]
 *                [--tsv FILE] [--gen-only]
 *
 * Rows are generated deterministically (same N → same rows): distinct observation times over
 * the last 20 days, 60 airports, 8 airlines, 4 cabins. --tsv writes them as COPY text in the
 * column order of price_history (for psql); --gen-only stops there. Otherwise the rows are
 * sent as PriceBatch asks of --msg rows with wait_commit (K outstanding), and the clock runs
 * from the first send to the last reply, i.e. until every row is committed. The observation
 * messages are built inside the timed loop, as an RPC handler would unpack them. Prints one
 * JSON line. Migrates the database first. REDIS_URL, when set, enables the stream appends
 * (as in production) unless --no-stream.
 */
#include "actors/price_ingest/price_ingest.h"
#include "actors/price_ingest/rows.h"
#include "runtime/actor.h"
#include "runtime/alloc.h"
#include "runtime/log.h"
#include "schemas/prices.pb-c.h"
#include "storage/migrate.h"
#include "storage/pg.h"
#include "storage/redis.h"

#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DAY_MS 86400000LL

static struct {
    long rows, msg, inflight, batch;
    bool stream, gen_only;
    const char *tsv;
} opt = {.rows = 500000, .msg = 5000, .inflight = 4, .batch = 5000, .stream = true};

static struct {
    struct event_base *base;
    fs_price_ingest_t *pi;
    long next, replied_rows, outstanding, accepted, duplicates, invalid, errors;
    int64_t t0_ms;
} B;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static void airport(uint64_t k, char out[4])
{
    k %= 60;
    out[0] = (char)('B' + k / 26 % 26);
    out[1] = (char)('A' + k % 26);
    out[2] = (char)('X' + k % 3);
    out[3] = '\0';
}

/* Row i of the deterministic set (as an observation, heap-allocated). */
static Fs__Prices__PriceObservation *make_obs(long i)
{
    static const char *const airlines[] = {"IB", "VY", "FR", "U2", "LH", "AF", "BA", "KL"};
    static const char *const cabins[] = {"economy", "economy", "economy", "premium_economy", "business", "first"};
    uint64_t h = mix((uint64_t)i);
    Fs__Prices__PriceObservation *o = fs_pb_new(&fs__prices__price_observation__descriptor);
    int64_t span = 20 * DAY_MS;
    o->has_observed_at_ms = true;
    o->observed_at_ms = B.t0_ms - span + (int64_t)((double)span * (double)i / (double)opt.rows);
    char a[4], d[4], dep[11];
    airport(h, a);
    airport(h >> 8, d);
    if (strcmp(a, d) == 0)
        d[2] = d[2] == 'X' ? 'Q' : 'X';
    fs_price_format_date((int32_t)(o->observed_at_ms / DAY_MS + 1 + (int64_t)(h >> 20) % 300), dep);
    o->origin = fs_strdup(a);
    o->destination = fs_strdup(d);
    o->airline = fs_strdup(airlines[(h >> 16) % 8]);
    o->departure_date = fs_strdup(dep);
    o->cabin_class = fs_strdup(cabins[(h >> 24) % 6]);
    o->has_price = true;
    o->price = 20.0 + (double)((h >> 32) % 200000) / 100.0;
    o->currency = fs_strdup("EUR");
    o->source = fs_strdup("bench");
    return o;
}

static int write_tsv(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return -1;
    }
    char line[FS_PRICE_LINE_MAX];
    for (long i = 0; i < opt.rows; i++) {
        Fs__Prices__PriceObservation *o = make_obs(i);
        fs_price_row_t r;
        const char *why = fs_price_row_parse(&r, o, now_ms(), 1461);
        if (why) {
            fprintf(stderr, "row %ld invalid: %s\n", i, why);
            return -1;
        }
        size_t n = fs_price_row_copy_line(&r, 0, line);
        char *last_tab = memrchr(line, '\t', n); /* drop the seq column */
        fwrite(line, 1, (size_t)(last_tab - line), f);
        fputc('\n', f);
        protobuf_c_message_free_unpacked(&o->base, NULL);
    }
    return fclose(f);
}

static void send_more(void);

static void on_reply(int status, fs_msg_t *msg, void *arg)
{
    long rows = (long)(intptr_t)arg;
    Fs__Prices__PriceBatchReply *r = msg ? fs_msg_body(msg, &fs__prices__price_batch_reply__descriptor) : NULL;
    B.outstanding--;
    B.replied_rows += rows;
    if (status != FS_OK || !r || r->status != 0) {
        B.errors++;
        fprintf(stderr, "batch failed: %s %s\n", fs_status_str(status), r && r->error ? r->error : "");
    } else {
        B.accepted += r->accepted;
        B.duplicates += r->duplicates;
        B.invalid += r->invalid;
    }
    send_more();
    if (B.replied_rows >= opt.rows)
        event_base_loopexit(B.base, NULL);
}

static void send_more(void)
{
    while (B.outstanding < opt.inflight && B.next < opt.rows) {
        long n = opt.rows - B.next < opt.msg ? opt.rows - B.next : opt.msg;
        Fs__Prices__PriceBatch *b = fs_pb_new(&fs__prices__price_batch__descriptor);
        b->has_wait_commit = b->wait_commit = true;
        b->n_observations = (size_t)n;
        b->observations = fs_malloc((size_t)n * sizeof *b->observations);
        for (long i = 0; i < n; i++)
            b->observations[i] = make_obs(B.next + i);
        B.next += n;
        B.outstanding++;
        if (fs_actor_ask(fs_price_ingest_actor(B.pi), NULL, FS_MSG_PRICE_BATCH, &b->base, 600000, on_reply,
                         (void *)(intptr_t)n) != FS_OK) {
            fprintf(stderr, "ask refused\n");
            exit(1);
        }
    }
}

static void on_wait_up(evutil_socket_t fd, short what, void *arg)
{
    fs_price_ingest_stats_t st;
    fs_price_ingest_get_stats(B.pi, &st);
    if (st.db_up)
        event_base_loopexit(B.base, NULL);
}

static int parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--no-stream") == 0)
            opt.stream = false;
        else if (strcmp(a, "--gen-only") == 0)
            opt.gen_only = true;
        else if (v && strcmp(a, "--rows") == 0 && ++i)
            opt.rows = atol(v);
        else if (v && strcmp(a, "--msg") == 0 && ++i)
            opt.msg = atol(v);
        else if (v && strcmp(a, "--inflight") == 0 && ++i)
            opt.inflight = atol(v);
        else if (v && strcmp(a, "--batch") == 0 && ++i)
            opt.batch = atol(v);
        else if (v && strcmp(a, "--tsv") == 0 && ++i)
            opt.tsv = v;
        else {
            fprintf(stderr, "usage: ingest-bench [--rows N] [--msg ROWS] [--inflight K] [--batch ROWS] "
                            "[--no-stream] [--tsv FILE] [--gen-only]\n");
            return -1;
        }
    }
    return opt.rows > 0 && opt.msg > 0 && opt.inflight > 0 && opt.batch > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv) != 0)
        return 2;
    fs_log_set_level(FS_LOG_WARN);
    /* the time base is fixed per day, so the TSV and the ingest run of one script agree */
    B.t0_ms = now_ms() / DAY_MS * DAY_MS;
    if (opt.tsv && write_tsv(opt.tsv) != 0)
        return 1;
    if (opt.gen_only)
        return 0;
    const char *url = getenv("DATABASE_URL"), *redis_url = getenv("REDIS_URL");
    if (!url) {
        fprintf(stderr, "DATABASE_URL is not set\n");
        return 2;
    }
    char *err = NULL;
    PGconn *c = fs_pg_connect_blocking(url, &err);
    if (!c || fs_migrate_run(c, fs_migrate_default_dir(), NULL, &err) != 0) {
        fprintf(stderr, "database: %s\n", err);
        return 1;
    }
    PQfinish(c);

    B.base = event_base_new();
    fs_actor_system_t *sys = fs_actor_system_new(B.base, NULL);
    fs_redis_t *redis = NULL;
    if (opt.stream && redis_url)
        redis = fs_redis_new(B.base, &(fs_redis_opts_t){.url = redis_url, .timeout_ms = 5000});
    B.pi = fs_price_ingest_start(sys, &(fs_price_ingest_opts_t){
        .database_url = url, .redis = redis, .batch_rows = (int)opt.batch,
        .buffer_rows = (int)(opt.msg * opt.inflight * 2 + opt.batch), .retention_delay_ms = -1});
    struct event *wait_up = event_new(B.base, -1, EV_PERSIST, on_wait_up, NULL);
    event_add(wait_up, &(struct timeval){0, 10000});
    event_base_dispatch(B.base);
    event_free(wait_up);

    double t0 = mono_s();
    send_more();
    event_base_dispatch(B.base);
    double secs = mono_s() - t0;

    fs_price_ingest_stats_t st;
    fs_price_ingest_get_stats(B.pi, &st);
    printf("{\"rows\":%ld,\"seconds\":%.3f,\"rows_per_s\":%.0f,\"accepted\":%ld,\"duplicates\":%ld,"
           "\"invalid\":%ld,\"errors\":%ld,\"transactions\":%" PRIu64 ",\"msg_rows\":%ld,\"inflight\":%ld,"
           "\"batch_rows\":%ld,\"stream\":%s}\n",
           opt.rows, secs, (double)opt.rows / secs, B.accepted, B.duplicates, B.invalid, B.errors, st.batches,
           opt.msg, opt.inflight, opt.batch, redis ? "true" : "false");
    fs_price_ingest_free(B.pi);
    if (redis) {
        for (int i = 0; i < 100; i++) /* hand the last stream appends to Redis */
            event_base_loop(B.base, EVLOOP_NONBLOCK);
        fs_redis_free(redis);
    }
    fs_actor_system_free(sys);
    event_base_free(B.base);
    return B.errors ? 1 : 0;
}
