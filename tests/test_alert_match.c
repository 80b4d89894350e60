/* Alert matching: the in-memory index (order, updates, dates, cabins, currency, cooldown, the
 * shard hash against its SQL twin), then end to end with the real server: observations
 * appended to the Redis stream as price-ingest appends them, notifications written exactly
 * once within the cooldown, paused alerts, and an alert surviving a kill -9 of its worker. */
#include "actors/alert/alert.h"
#include "actors/alert/alert_index.h"
#include "actors/price_ingest/price_ingest.h"
#include "tests/accounts_helpers.h"
#include "tests/support/refdata_fixture.h"

#include <signal.h>

#define SECRET "test-secret-key-0123456789abcdef"

/*--- the index -------------------------------------------------------------------------------*/

static fs_alert_rec_t rec(uint8_t n, int32_t target)
{
    fs_alert_rec_t r = {.target_cents = target, .date_from = FS_ALERT_DATE_OPEN_FROM,
                        .date_to = FS_ALERT_DATE_OPEN_TO, .cabin = FS_ALERT_CABIN_ANY};
    r.id[0] = n;
    r.currency = fs_alert_currency_pack("EUR", 3);
    return r;
}

static fs_alert_obs_t obs(uint32_t route, int32_t price, const char *day, uint8_t cabin)
{
    return (fs_alert_obs_t){.route = route, .price_cents = price, .day = (uint16_t)fs_alert_day_parse(day, 10),
                            .currency = fs_alert_currency_pack("EUR", 3), .cabin = cabin};
}

Test(alert_index, codes_days_and_currency)
{
    uint32_t k = fs_alert_route_key("dub", "LHR");
    cr_assert_neq(k, 0);
    cr_assert_eq(k, fs_alert_route_key("DUB", "lhr"));
    char o[4], d[4];
    fs_alert_route_codes(k, o, d);
    cr_assert_str_eq(o, "DUB");
    cr_assert_str_eq(d, "LHR");
    cr_assert_neq(fs_alert_route_key("Q9D", "ZZR"), 0, "digits are valid in codes");
    cr_assert_eq(fs_alert_route_key("DU", "LHR"), 0);
    cr_assert_eq(fs_alert_route_key("DUB", "LH-"), 0);
    cr_assert_eq(fs_alert_route_key(NULL, "LHR"), 0);
    cr_assert_eq(fs_alert_day_parse("1970-01-02", 10), 1);
    cr_assert_eq(fs_alert_day_parse("2030-01-01", 10), 21915);
    cr_assert_eq(fs_alert_day_parse("2028-02-29", 10) + 1, fs_alert_day_parse("2028-03-01", 10));
    cr_assert_eq(fs_alert_day_parse("2027-02-29", 10), -1);
    cr_assert_eq(fs_alert_day_parse("2030-13-01", 10), -1);
    cr_assert_eq(fs_alert_day_parse("2030-1-01", 9), -1);
    cr_assert_eq(fs_alert_currency_pack("eur", 3), fs_alert_currency_pack("EUR", 3));
    cr_assert_eq(fs_alert_currency_pack("EU1", 3), 0);
    cr_assert_neq(fs_alert_currency_pack("USD", 3), fs_alert_currency_pack("EUR", 3));
}

Test(alert_index, match_walks_targets_at_or_above_the_price_highest_first)
{
    fs_alert_index_t *idx = fs_alert_index_new();
    uint32_t r = fs_alert_route_key("DUB", "LHR"), other = fs_alert_route_key("LHR", "DUB");
    int32_t targets[] = {5000, 12000, 8000, 10000, 8000, 3000};
    for (uint8_t i = 0; i < 6; i++) {
        fs_alert_rec_t a = rec(i + 1, targets[i]);
        fs_alert_index_put(idx, r, &a);
    }
    fs_alert_rec_t x = rec(99, 99999);
    fs_alert_index_put(idx, other, &x);
    cr_assert_eq(fs_alert_index_count(idx), 7);
    cr_assert_eq(fs_alert_index_routes(idx), 2);

    fs_alert_rec_t *out[8];
    fs_alert_obs_t o = obs(r, 8000, "2030-01-01", 0);
    size_t n = fs_alert_index_match(idx, &o, 1000000, 0, out, 8);
    cr_assert_eq(n, 4, "12000, 10000, 8000, 8000 (equal target matches)");
    cr_assert_eq(out[0]->target_cents, 12000);
    cr_assert_eq(out[1]->target_cents, 10000);
    cr_assert_eq(out[2]->target_cents, 8000);
    cr_assert_eq(out[3]->target_cents, 8000);
    o.price_cents = 12001;
    cr_assert_eq(fs_alert_index_match(idx, &o, 1000000, 0, out, 8), 0, "above every target");
    o.price_cents = 1;
    cr_assert_eq(fs_alert_index_match(idx, &o, 1000000, 0, out, 2), 6, "count beyond max");
    o.route = fs_alert_route_key("CDG", "JFK");
    cr_assert_eq(fs_alert_index_match(idx, &o, 1000000, 0, out, 8), 0, "unknown route");

    /* update: same id, new target, re-sorted; remove */
    fs_alert_rec_t up = rec(6, 20000);
    fs_alert_index_put(idx, r, &up);
    cr_assert_eq(fs_alert_index_count(idx), 7, "replaced, not added");
    o = obs(r, 15000, "2030-01-01", 0);
    cr_assert_eq(fs_alert_index_match(idx, &o, 1000000, 0, out, 8), 1);
    cr_assert_eq(out[0]->id[0], 6);
    cr_assert(fs_alert_index_remove(idx, r, up.id));
    cr_assert_not(fs_alert_index_remove(idx, r, up.id), "already gone");
    cr_assert_eq(fs_alert_index_match(idx, &o, 1000000, 0, out, 8), 0);
    cr_assert_null(fs_alert_index_find(idx, r, up.id));
    cr_assert_not_null(fs_alert_index_find(idx, other, x.id));
    fs_alert_index_free(idx);
}

Test(alert_index, dates_cabins_currency_and_cooldown)
{
    fs_alert_index_t *idx = fs_alert_index_new();
    uint32_t r = fs_alert_route_key("CDG", "JFK");
    fs_alert_rec_t dated = rec(1, 50000);
    dated.date_from = (uint16_t)fs_alert_day_parse("2030-05-01", 10);
    dated.date_to = (uint16_t)fs_alert_day_parse("2030-05-31", 10);
    dated.cabin = 2; /* business */
    fs_alert_index_put(idx, r, &dated);
    fs_alert_rec_t usd = rec(2, 50000);
    usd.currency = fs_alert_currency_pack("USD", 3);
    fs_alert_index_put(idx, r, &usd);
    fs_alert_rec_t *out[4];
    fs_alert_obs_t o = obs(r, 40000, "2030-05-01", 2);
    cr_assert_eq(fs_alert_index_match(idx, &o, 1000000, 0, out, 4), 1, "first day, business, EUR");
    cr_assert_eq(out[0]->id[0], 1);
    o = obs(r, 40000, "2030-05-31", 2);
    cr_assert_eq(fs_alert_index_match(idx, &o, 1000000, 0, out, 4), 1, "last day");
    o = obs(r, 40000, "2030-06-01", 2);
    cr_assert_eq(fs_alert_index_match(idx, &o, 1000000, 0, out, 4), 0, "after the range");
    o = obs(r, 40000, "2030-04-30", 2);
    cr_assert_eq(fs_alert_index_match(idx, &o, 1000000, 0, out, 4), 0, "before the range");
    o = obs(r, 40000, "2030-05-10", 0);
    cr_assert_eq(fs_alert_index_match(idx, &o, 1000000, 0, out, 4), 0, "economy is not business");
    o.currency = fs_alert_currency_pack("USD", 3);
    cr_assert_eq(fs_alert_index_match(idx, &o, 1000000, 0, out, 4), 1, "the USD alert, any cabin");
    cr_assert_eq(out[0]->id[0], 2);

    /* cooldown: notified at t=1000 with 3600 s: blocked until t=4600 */
    out[0]->notified_s = 1000;
    cr_assert_eq(fs_alert_index_match(idx, &o, 4599, 3600, out, 4), 0);
    cr_assert_eq(fs_alert_index_match(idx, &o, 4600, 3600, out, 4), 1);
    fs_alert_index_free(idx);
}

Test(alert_index, many_routes_grow_the_table_and_compact)
{
    fs_alert_index_t *idx = fs_alert_index_new();
    const char *L = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    size_t n = 0;
    for (int i = 0; i < 26; i++)
        for (int j = 0; j < 26; j++)
            for (int k = 0; k < 4; k++) {
                char o[4] = {L[i], L[j], 'A', 0}, d[4] = {L[j], L[i], 'Z', 0};
                fs_alert_rec_t a = rec((uint8_t)k, 1000 * (k + 1));
                a.id[1] = (uint8_t)i, a.id[2] = (uint8_t)j;
                fs_alert_index_put(idx, fs_alert_route_key(o, d), &a);
                n++;
            }
    cr_assert_eq(fs_alert_index_count(idx), n);
    cr_assert_eq(fs_alert_index_routes(idx), 676);
    size_t before = fs_alert_index_bytes(idx);
    fs_alert_index_compact(idx);
    cr_assert_leq(fs_alert_index_bytes(idx), before);
    fs_alert_rec_t *out[8];
    fs_alert_obs_t o = obs(fs_alert_route_key("QRA", "RQZ"), 2500, "2030-01-01", 0);
    cr_assert_eq(fs_alert_index_match(idx, &o, 1000000, 0, out, 8), 2);
    cr_assert_eq(out[0]->id[1], 'Q' - 'A');
    fs_alert_index_free(idx);
}

/* The shard of a route computed in C and by the SQL a shard loads with must agree. */
Test(alert_index, shard_hash_matches_its_sql)
{
    const char *routes[][2] = {{"DUB", "LHR"}, {"LHR", "DUB"}, {"JFK", "CDG"}, {"Q9D", "ZZR"}, {"AAA", "ZZZ"}};
    PGconn *c = fs_test_db();
    for (size_t i = 0; i < 5; i++)
        for (int n = 1; n <= 7; n++) {
            char sql[1024];
            snprintf(sql, sizeof sql, "SELECT %s %% %d FROM (SELECT '%s'::text AS o, '%s'::text AS d) t",
                     FS_ALERT_SHARD_SQL("o", "d"), n, routes[i][0], routes[i][1]);
            cr_assert_eq(fs_test_scalar(c, sql), fs_alert_owner(routes[i][0], routes[i][1], n), "%s-%s of %d",
                         routes[i][0], routes[i][1], n);
        }
    PQfinish(c);
}

/*--- end to end ------------------------------------------------------------------------------*/

static fs_test_server_t srv;

static const char *redis_sock(void)
{
    const char *url = fs_test_env("REDIS_URL");
    cr_assert(strncmp(url, "unix://", 7) == 0, "these tests need a unix-socket REDIS_URL");
    return url + 7;
}

/* Runs a command, returns its whole output (caller frees). */
static char *sh_out(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    char *buf = fs_calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, p);
    buf[n] = '\0';
    pclose(p);
    return buf;
}

/* Appends an observation as price-ingest does; returns the entry id (caller frees). */
static char *xadd(const char *o, const char *d, const char *price, const char *day, const char *cabin)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "redis-cli -s '%s' XADD %s '*' t %lld o %s d %s a FR dd %s c %s p %s cur EUR src test", redis_sock(),
             FS_PRICE_STREAM_KEY, (long long)time(NULL) * 1000, o, d, day, cabin, price);
    char *out = sh_out(cmd);
    out[strcspn(out, "\r\n")] = '\0';
    cr_assert(strchr(out, '-'), "XADD answered %s", out);
    return out;
}

static int id_cmp(const char *a, const char *b)
{
    unsigned long long ams = strtoull(a, NULL, 10), bms = strtoull(b, NULL, 10);
    unsigned long long aseq = strtoull(strchr(a, '-') + 1, NULL, 10), bseq = strtoull(strchr(b, '-') + 1, NULL, 10);
    return ams != bms ? (ams < bms ? -1 : 1) : aseq != bseq ? (aseq < bseq ? -1 : 1) : 0;
}

/* Has the group delivered `id` and has every delivered entry been acknowledged? */
static bool group_done(const char *xinfo, const char *group, const char *id)
{
    const char *g = strstr(xinfo, group);
    if (!g)
        return false;
    const char *p = strstr(g, "\npending\n"), *l = strstr(g, "\nlast-delivered-id\n");
    if (!p || !l)
        return false;
    long pending = strtol(p + 9, NULL, 10);
    char last[64];
    sscanf(l + 19, "%63s", last);
    return pending == 0 && strchr(last, '-') && id_cmp(last, id) >= 0;
}

/* Waits until both shards have read and acknowledged entry `id` (so its matches are written). */
static void wait_processed(const char *id)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "redis-cli -s '%s' XINFO GROUPS %s", redis_sock(), FS_PRICE_STREAM_KEY);
    double end = fs_test_now_ms() + 15000;
    while (fs_test_now_ms() < end) {
        char *x = sh_out(cmd);
        bool done = group_done(x, "alerts-shard-0-of-2", id) && group_done(x, "alerts-shard-1-of-2", id);
        free(x);
        if (done)
            return;
        usleep(50 * 1000);
    }
    cr_assert_fail("entry %s was not processed by both shards within 15 s; see %s", id, srv.log_path);
}

/* The pid of the newest log line saying `text`, from the worker `role`; 0 when none. */
static int log_pid(const char *role, const char *text)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "grep -F '\"role\":\"%s\"' %s | grep -F '%s' | tail -n 1 | sed -E 's/.*\"pid\":([0-9]+).*/\\1/'",
             role, srv.log_path, text);
    char *out = sh_out(cmd);
    int pid = atoi(out);
    free(out);
    return pid;
}

/* Waits until shard `k` of 2 runs in a process other than `not_pid` and reads the stream. */
static int wait_shard_reading(int k, int not_pid)
{
    char role[32], text[64];
    snprintf(role, sizeof role, "worker-%d", k);
    snprintf(text, sizeof text, "alert shard %d of 2 reading", k);
    double end = fs_test_now_ms() + 20000;
    while (fs_test_now_ms() < end) {
        int pid = log_pid(role, text);
        if (pid > 0 && pid != not_pid)
            return pid;
        usleep(50 * 1000);
    }
    return 0;
}

static long notifications(const char *alert_id)
{
    PGconn *c = fs_test_db();
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM notifications WHERE alert_id = '%s'", alert_id);
    long n = fs_test_scalar(c, sql);
    PQfinish(c);
    return n;
}

static char *create_alert(const char *token, const char *body)
{
    json_t *j;
    cr_assert_eq(acct_json(&srv, "POST", "/flights/alerts", body, token, &j), 200);
    char *id = fs_strdup(json_string_value(json_object_get(j, "id")));
    json_decref(j);
    return id;
}

static void stop(void)
{
    if (srv.pid > 0)
        fs_test_server_stop(&srv);
}

Test(alert_match, triggers_once_within_cooldown_and_survives_a_worker_restart, .fini = stop, .timeout = 120)
{
    static const char *const env[] = {"SECRET_KEY=" SECRET, "ALERT_COOLDOWN_HOURS=6", NULL};
    fs_test_start_refdata_server(&srv, 2, env);
    int pid0 = wait_shard_reading(0, 0), pid1 = pid0 ? wait_shard_reading(1, 0) : 0;
    if (!pid0 || !pid1)
        cr_skip_test("the alert shards are not started by this build's worker (runtime/worker.c wiring)");

    char email[96];
    snprintf(email, sizeof email, "alert-match-%d-%ld@example.com", (int)getpid(), (long)time(NULL));
    char *tok = fs_test_token(email, false, SECRET);
    char *a = create_alert(tok, "{\"origin\":\"DUB\",\"destination\":\"LHR\",\"target_price\":100}");

    /* above the target: nothing; at or below: exactly one row, with the observation in it */
    char *e = xadd("DUB", "LHR", "150.00", "2030-03-01", "economy");
    wait_processed(e);
    free(e);
    cr_assert_eq(notifications(a), 0);
    e = xadd("DUB", "LHR", "80.00", "2030-03-01", "economy");
    wait_processed(e);
    cr_assert_eq(notifications(a), 1);
    PGconn *c = fs_test_db();
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM notifications n JOIN price_alerts p ON p.id = n.alert_id WHERE n.alert_id = '%s' "
             "AND n.user_id = p.user_id AND (n.payload->>'price')::numeric = 80 AND n.payload->>'carrier' = 'FR' "
             "AND n.payload->>'travel_date' = '2030-03-01' AND n.idempotency_key = '%s:%s' "
             "AND n.title LIKE '%%DUB to LHR%%' AND p.last_notified_at > now() - interval '1 minute'",
             a, a, e);
    cr_assert_eq(fs_test_scalar(c, sql), 1, "notification content");
    free(e);

    /* within the cooldown: still one */
    e = xadd("DUB", "LHR", "70.00", "2030-03-02", "economy");
    wait_processed(e);
    free(e);
    cr_assert_eq(notifications(a), 1, "no second notification within the cooldown");

    /* a paused alert never triggers; resumed, it does */
    char *b = create_alert(tok, "{\"origin\":\"LHR\",\"destination\":\"CDG\",\"target_price\":100,"
                                "\"cabin_class\":\"business\"}");
    char path[96];
    snprintf(path, sizeof path, "/users/me/alerts/%s", b);
    cr_assert_eq(acct_json(&srv, "PATCH", path, "{\"is_active\":false}", tok, NULL), 200);
    e = xadd("LHR", "CDG", "50.00", "2030-03-01", "business");
    wait_processed(e);
    free(e);
    cr_assert_eq(notifications(b), 0, "paused");
    cr_assert_eq(acct_json(&srv, "PATCH", path, "{\"is_active\":true}", tok, NULL), 200);
    e = xadd("LHR", "CDG", "50.00", "2030-03-01", "economy");
    wait_processed(e);
    free(e);
    cr_assert_eq(notifications(b), 0, "economy does not match a business alert");
    e = xadd("LHR", "CDG", "50.00", "2030-03-01", "business");
    wait_processed(e);
    free(e);
    cr_assert_eq(notifications(b), 1, "resumed");

    /* the alert survives a kill -9 of the worker that owns its route: once the cooldown is
     * over (moved back in SQL), the restarted shard loads it and a match triggers again */
    snprintf(sql, sizeof sql, "UPDATE price_alerts SET last_notified_at = now() - interval '7 hours' WHERE id = '%s'",
             a);
    fs_test_exec(c, sql);
    int owner = fs_alert_owner("DUB", "LHR", 2);
    int victim = owner == 0 ? pid0 : pid1;
    cr_assert_eq(kill(victim, SIGKILL), 0);
    cr_assert_neq(wait_shard_reading(owner, victim), 0, "shard %d did not come back; see %s", owner, srv.log_path);
    e = xadd("DUB", "LHR", "60.00", "2030-03-03", "economy");
    wait_processed(e);
    free(e);
    cr_assert_eq(notifications(a), 2, "triggered again after the restart");
    PQfinish(c);
    free(a), free(b), free(tok);
}
