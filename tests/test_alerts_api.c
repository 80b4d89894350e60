/* The alert endpoints over real HTTP against the real server, PostgreSQL and Redis, with the
 * full reference data: create (query string and JSON), every validation error, the per-user
 * limit, listing, delete and patch, and authentication. */
#include "tests/accounts_helpers.h"
#include "tests/support/refdata_fixture.h"

#define SECRET "test-secret-key-0123456789abcdef"
static const char *const server_env[] = {"SECRET_KEY=" SECRET, "ALERTS_PER_USER=3", NULL};
static fs_test_server_t srv;

static void start(void)
{
    fs_test_start_refdata_server(&srv, 2, server_env);
}

static void stop(void)
{
    if (srv.pid > 0)
        fs_test_server_stop(&srv);
}

/* A fresh user's access token (caller frees). */
static char *new_user(const char *tag)
{
    char email[128];
    static int seq;
    snprintf(email, sizeof email, "alerts-%s-%d-%d-%ld@example.com", tag, (int)getpid(), ++seq, (long)time(NULL));
    return fs_test_token(email, false, SECRET);
}

static long call(const char *method, const char *path, const char *body, const char *token, json_t **out)
{
    return acct_json(&srv, method, path, body, token, out);
}

/* Creates DUB->LHR at `price` through the query string; returns the id (caller frees). */
static char *create(const char *token, const char *route, double price)
{
    char path[160];
    snprintf(path, sizeof path, "/flights/alerts?%s&target_price=%.2f", route, price);
    json_t *j;
    cr_assert_eq(call("POST", path, NULL, token, &j), 200);
    char *id = fs_strdup(json_string_value(json_object_get(j, "id")));
    json_decref(j);
    return id;
}

static double num(json_t *o, const char *k)
{
    return json_number_value(json_object_get(o, k));
}

static const char *str(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

Test(alerts_api, endpoints_require_a_token, .init = start, .fini = stop)
{
    json_t *j;
    cr_assert_eq(call("POST", "/flights/alerts?origin=DUB&destination=LHR&target_price=50", NULL, NULL, &j), 401);
    cr_assert_str_eq(acct_detail(j), "Not authenticated");
    json_decref(j);
    cr_assert_eq(call("GET", "/users/me/alerts", NULL, NULL, NULL), 401);
    cr_assert_eq(call("PATCH", "/users/me/alerts/00000000-0000-4000-8000-000000000000", "{}", NULL, NULL), 401);
    cr_assert_eq(call("DELETE", "/users/me/alerts/00000000-0000-4000-8000-000000000000", NULL, NULL, NULL), 401);
    cr_assert_eq(call("GET", "/users/me/alerts", NULL, "not-a-token", NULL), 401);
    acct_assert_healthy(&srv);
}

Test(alerts_api, create_from_query_string_and_json, .init = start, .fini = stop)
{
    char *tok = new_user("create");
    json_t *j;
    cr_assert_eq(call("POST", "/flights/alerts?origin=dub&destination=lhr&target_price=49.5", NULL, tok, &j), 200);
    cr_assert_str_eq(str(j, "origin"), "DUB", "codes are upper-cased");
    cr_assert_str_eq(str(j, "destination"), "LHR");
    cr_assert_str_eq(str(j, "origin_code"), "DUB");
    cr_assert_float_eq(num(j, "target_price"), 49.5, 1e-9);
    cr_assert(json_is_true(json_object_get(j, "is_active")));
    cr_assert_str_eq(str(j, "message"), "Price alert created successfully");
    cr_assert_str_eq(str(j, "currency"), "EUR");
    cr_assert(json_is_null(json_object_get(j, "cabin_class")));
    cr_assert(json_is_null(json_object_get(j, "date_from")));
    cr_assert(json_is_null(json_object_get(j, "last_notified_at")));
    cr_assert_eq(strlen(str(j, "id")), 36);
    json_decref(j);

    cr_assert_eq(call("POST", "/flights/alerts",
                      "{\"origin\":\"CDG\",\"destination\":\"jfk\",\"target_price\":300,\"cabin_class\":\"Business\","
                      "\"date_from\":\"2030-05-01\",\"date_to\":\"2030-05-31\",\"currency\":\"usd\"}",
                      tok, &j),
                 200);
    cr_assert_str_eq(str(j, "origin"), "CDG");
    cr_assert_str_eq(str(j, "destination"), "JFK");
    cr_assert_float_eq(num(j, "target_price"), 300, 1e-9);
    cr_assert_str_eq(str(j, "cabin_class"), "business");
    cr_assert_str_eq(str(j, "date_from"), "2030-05-01");
    cr_assert_str_eq(str(j, "date_to"), "2030-05-31");
    cr_assert_str_eq(str(j, "currency"), "USD");

    /* the row is in the table as answered */
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM price_alerts WHERE id = '%s' AND origin_code = 'CDG' AND destination_code = 'JFK' "
             "AND cabin_class = 'business' AND currency = 'USD' AND date_to = '2030-05-31' AND target_price = 300",
             str(j, "id"));
    json_decref(j);
    PGconn *c = fs_test_db();
    cr_assert_eq(fs_test_scalar(c, sql), 1);
    PQfinish(c);
    free(tok);
    acct_assert_healthy(&srv);
}

Test(alerts_api, validation_errors, .init = start, .fini = stop)
{
    char *tok = new_user("valid");
    json_t *j;
    cr_assert_eq(call("POST", "/flights/alerts?destination=LHR&target_price=10", NULL, tok, &j), 422);
    cr_assert(acct_has_error(j, "query/origin", "missing") || acct_has_error(j, "body/origin", "missing"));
    json_decref(j);
    cr_assert_eq(call("POST", "/flights/alerts?origin=DU&destination=LHRX&target_price=10", NULL, tok, &j), 422);
    cr_assert(acct_has_error(j, "query/origin", "string_too_short"));
    cr_assert(acct_has_error(j, "query/destination", "string_too_long"));
    json_decref(j);
    cr_assert_eq(call("POST", "/flights/alerts?origin=DUB&destination=LHR&target_price=0", NULL, tok, &j), 422);
    cr_assert(acct_has_error(j, "query/target_price", "greater_than"));
    json_decref(j);
    cr_assert_eq(call("POST", "/flights/alerts?origin=DUB&destination=LHR&target_price=-5", NULL, tok, NULL), 422);
    cr_assert_eq(call("POST", "/flights/alerts?origin=DUB&destination=LHR&target_price=abc", NULL, tok, &j), 422);
    cr_assert(acct_has_error(j, "query/target_price", "float_parsing"));
    json_decref(j);
    cr_assert_eq(call("POST", "/flights/alerts?origin=DUB&destination=LHR", NULL, tok, &j), 422);
    cr_assert(acct_has_error(j, "body/target_price", "missing"));
    json_decref(j);

    /* an unknown (or inactive) airport is 400 */
    cr_assert_eq(call("POST", "/flights/alerts?origin=ZZQ&destination=LHR&target_price=10", NULL, tok, &j), 400);
    cr_assert_str_eq(acct_detail(j), "Unknown airport code: ZZQ");
    json_decref(j);
    cr_assert_eq(call("POST", "/flights/alerts?origin=DUB&destination=Q0Q&target_price=10", NULL, tok, &j), 400);
    cr_assert_str_eq(acct_detail(j), "Unknown airport code: Q0Q");
    json_decref(j);

    /* JSON: dates, range, cabin, currency, shape */
    cr_assert_eq(call("POST", "/flights/alerts",
                      "{\"origin\":\"DUB\",\"destination\":\"LHR\",\"target_price\":10,\"date_from\":\"2030-02-30\"}",
                      tok, &j),
                 422);
    cr_assert(acct_has_error(j, "body/date_from", NULL));
    json_decref(j);
    cr_assert_eq(call("POST", "/flights/alerts",
                      "{\"origin\":\"DUB\",\"destination\":\"LHR\",\"target_price\":10,\"date_from\":\"2030-03-10\","
                      "\"date_to\":\"2030-03-01\"}",
                      tok, &j),
                 422);
    cr_assert(acct_has_error(j, "body/date_to", "value_error"));
    json_decref(j);
    cr_assert_eq(call("POST", "/flights/alerts",
                      "{\"origin\":\"DUB\",\"destination\":\"LHR\",\"target_price\":10,\"cabin_class\":\"coach\","
                      "\"currency\":\"EURO\"}",
                      tok, &j),
                 422);
    cr_assert(acct_has_error(j, "body/cabin_class", "literal_error"));
    cr_assert(acct_has_error(j, "body/currency", NULL));
    json_decref(j);
    cr_assert_eq(call("POST", "/flights/alerts", "[1,2]", tok, NULL), 422);
    cr_assert_eq(call("POST", "/flights/alerts", "{not json", tok, NULL), 422);

    /* nothing was stored by any of the above */
    cr_assert_eq(call("GET", "/users/me/alerts", NULL, tok, &j), 200);
    cr_assert_eq(json_array_size(j), 0);
    json_decref(j);
    free(tok);
    acct_assert_healthy(&srv);
}

Test(alerts_api, per_user_limit, .init = start, .fini = stop)
{
    char *tok = new_user("limit"), *other = new_user("limit-other");
    for (int i = 0; i < 3; i++)
        free(create(tok, "origin=DUB&destination=LHR", 10 + i));
    json_t *j;
    cr_assert_eq(call("POST", "/flights/alerts?origin=DUB&destination=LHR&target_price=99", NULL, tok, &j), 409);
    cr_assert(strstr(acct_detail(j), "Alert limit reached: at most 3 alerts per user"), "%s", acct_detail(j));
    json_decref(j);
    /* another user is not affected; deleting one frees a place */
    free(create(other, "origin=DUB&destination=LHR", 10));
    cr_assert_eq(call("GET", "/users/me/alerts", NULL, tok, &j), 200);
    char path[96];
    snprintf(path, sizeof path, "/users/me/alerts/%s", str(json_array_get(j, 0), "id"));
    json_decref(j);
    cr_assert_eq(call("DELETE", path, NULL, tok, NULL), 200);
    free(create(tok, "origin=DUB&destination=LHR", 77));
    free(tok);
    free(other);
    acct_assert_healthy(&srv);
}

Test(alerts_api, list_is_newest_first_and_only_the_callers, .init = start, .fini = stop)
{
    char *a = new_user("list-a"), *b = new_user("list-b");
    char *first = create(a, "origin=DUB&destination=LHR", 20);
    char *second = create(a, "origin=LHR&destination=CDG", 30);
    char *theirs = create(b, "origin=DUB&destination=CDG", 40);
    json_t *j;
    cr_assert_eq(call("GET", "/users/me/alerts", NULL, a, &j), 200);
    cr_assert_eq(json_array_size(j), 2);
    json_t *e0 = json_array_get(j, 0), *e1 = json_array_get(j, 1);
    cr_assert_str_eq(str(e0, "id"), second, "newest first");
    cr_assert_str_eq(str(e1, "id"), first);
    cr_assert_str_eq(str(e0, "origin_code"), "LHR");
    cr_assert_str_eq(str(e0, "destination_code"), "CDG");
    cr_assert_float_eq(num(e0, "target_price"), 30, 1e-9);
    cr_assert(json_is_true(json_object_get(e0, "is_active")));
    cr_assert(json_is_null(json_object_get(e0, "last_notified_at")));
    cr_assert(strlen(str(e0, "created_at")) > 10);
    json_decref(j);
    cr_assert_eq(call("GET", "/users/me/alerts", NULL, b, &j), 200);
    cr_assert_eq(json_array_size(j), 1);
    cr_assert_str_eq(str(json_array_get(j, 0), "id"), theirs);
    json_decref(j);
    free(first), free(second), free(theirs), free(a), free(b);
    acct_assert_healthy(&srv);
}

Test(alerts_api, delete_own_only, .init = start, .fini = stop)
{
    char *a = new_user("del-a"), *b = new_user("del-b");
    char *mine = create(a, "origin=DUB&destination=LHR", 20), *theirs = create(b, "origin=DUB&destination=LHR", 20);
    char path[96];
    json_t *j;
    snprintf(path, sizeof path, "/users/me/alerts/%s", theirs);
    cr_assert_eq(call("DELETE", path, NULL, a, &j), 404, "another user's alert");
    cr_assert_str_eq(acct_detail(j), "Alert not found");
    json_decref(j);
    cr_assert_eq(call("DELETE", "/users/me/alerts/not-a-uuid", NULL, a, &j), 404);
    cr_assert_str_eq(acct_detail(j), "Alert not found");
    json_decref(j);
    cr_assert_eq(call("DELETE", "/users/me/alerts/00000000-0000-4000-8000-000000000000", NULL, a, NULL), 404);
    snprintf(path, sizeof path, "/users/me/alerts/%s", mine);
    cr_assert_eq(call("DELETE", path, NULL, a, &j), 200);
    cr_assert_str_eq(str(j, "message"), "Alert deleted successfully");
    json_decref(j);
    cr_assert_eq(call("DELETE", path, NULL, a, NULL), 404, "already gone");
    cr_assert_eq(call("GET", "/users/me/alerts", NULL, b, &j), 200);
    cr_assert_eq(json_array_size(j), 1, "the other user's alert is untouched");
    json_decref(j);
    free(mine), free(theirs), free(a), free(b);
    acct_assert_healthy(&srv);
}

Test(alerts_api, patch_pause_resume_and_target, .init = start, .fini = stop)
{
    char *a = new_user("patch-a"), *b = new_user("patch-b");
    char *id = create(a, "origin=DUB&destination=LHR", 20);
    char path[96];
    snprintf(path, sizeof path, "/users/me/alerts/%s", id);
    json_t *j;
    cr_assert_eq(call("PATCH", path, "{\"is_active\":false}", a, &j), 200);
    cr_assert(json_is_false(json_object_get(j, "is_active")));
    cr_assert_float_eq(num(j, "target_price"), 20, 1e-9, "untouched");
    json_decref(j);
    cr_assert_eq(call("PATCH", path, "{\"is_active\":true,\"target_price\":150.25,\"cabin_class\":\"first\"}", a, &j),
                 200);
    cr_assert(json_is_true(json_object_get(j, "is_active")));
    cr_assert_float_eq(num(j, "target_price"), 150.25, 1e-9);
    cr_assert_str_eq(str(j, "cabin_class"), "first");
    json_decref(j);
    cr_assert_eq(call("PATCH", path, "{\"date_from\":\"2030-01-10\",\"date_to\":\"2030-01-20\"}", a, &j), 200);
    cr_assert_str_eq(str(j, "date_to"), "2030-01-20");
    json_decref(j);
    /* clearing with null; a merged range that ends before it starts is 422 */
    cr_assert_eq(call("PATCH", path, "{\"cabin_class\":null}", a, &j), 200);
    cr_assert(json_is_null(json_object_get(j, "cabin_class")));
    json_decref(j);
    cr_assert_eq(call("PATCH", path, "{\"date_to\":\"2030-01-01\"}", a, &j), 422);
    cr_assert(acct_has_error(j, "body/date_to", "value_error"));
    json_decref(j);
    cr_assert_eq(call("PATCH", path, "{\"target_price\":0}", a, &j), 422);
    cr_assert(acct_has_error(j, "body/target_price", "greater_than"));
    json_decref(j);
    cr_assert_eq(call("PATCH", path, "{\"is_active\":\"yes\",\"origin\":\"CDG\"}", a, &j), 422);
    cr_assert(acct_has_error(j, "body/is_active", "bool_type"));
    cr_assert(acct_has_error(j, "body/origin", "extra_forbidden"));
    json_decref(j);
    cr_assert_eq(call("PATCH", path, "{\"is_active\":false}", b, NULL), 404, "another user's alert");
    cr_assert_eq(call("PATCH", "/users/me/alerts/xyz", "{\"is_active\":false}", a, NULL), 404);
    cr_assert_eq(call("GET", "/users/me/alerts", NULL, a, &j), 200);
    cr_assert(json_is_true(json_object_get(json_array_get(j, 0), "is_active")), "b's PATCH changed nothing");
    cr_assert_float_eq(num(json_array_get(j, 0), "target_price"), 150.25, 1e-9);
    json_decref(j);
    free(id), free(a), free(b);
    acct_assert_healthy(&srv);
}
