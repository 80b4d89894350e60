/* The /users resource over real HTTP, and the `flightshark user` command that grants admin rights. */
#include "tests/accounts_helpers.h"

#include <sys/wait.h>

static fs_test_server_t srv;

static void start(void)
{
    static const char *const env[] = {ACCT_FAST_ARGON2, "LOGIN_MAX_FAILURES_PER_IP=1000000", NULL};
    cr_assert_eq(fs_test_server_start(&srv, 2, env), 0, "server did not start; see %s", srv.log_path);
}

static void stop(void)
{
    if (srv.pid > 0)
        fs_test_server_stop(&srv);
}

/* A registered, logged-in user: its e-mail, id and access token (caller frees). */
typedef struct {
    char *email, *id, *access;
} account_t;

static account_t new_account(const char *tag)
{
    account_t a = {acct_unique_email(tag), NULL, NULL};
    json_t *u = acct_register(&srv, a.email, "password-1");
    a.id = fs_strdup(json_string_value(json_object_get(u, "id")));
    json_decref(u);
    cr_assert_eq(acct_login(&srv, a.email, "password-1", &a.access, NULL), 200);
    return a;
}

static void free_account(account_t *a)
{
    free(a->email), free(a->id), free(a->access);
}

static long patch(const account_t *a, const char *body, json_t **out)
{
    return acct_json(&srv, "PATCH", "/users/me", body, a->access, out);
}

/* Runs `flightshark user ARGS` with `input` on stdin; returns the exit code, output in `out`. */
static int user_cli(const char *args, const char *input, char *out, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/fs-users-test-%d.out", (int)getpid());
    char *cmd = fs_sprintf(
        "cd /tmp && printf '%%s\\n' '%s' | ARGON2_MEMORY_KIB=7168 ARGON2_TIME_COST=5 '%s' user %s >%s 2>&1",
        input ? input : "", fs_test_env("FS_BINARY"), args, path);
    int rc = system(cmd);
    free(cmd);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(out, 1, size - 1, f) : 0;
    out[n] = '\0';
    if (f)
        fclose(f);
    remove(path);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* ---- profile ------------------------------------------------------------------------------ */

Test(users, me_requires_a_token, .init = start, .fini = stop)
{
    const char *paths[] = {"/users/me", "/users/me/recommendations",
                           "/users/00000000-0000-4000-8000-000000000000"};
    for (int i = 0; i < 3; i++) {
        json_t *j;
        cr_assert_eq(acct_json(&srv, "GET", paths[i], NULL, NULL, &j), 401, "%s", paths[i]);
        cr_assert_str_eq(acct_detail(j), "Not authenticated");
        json_decref(j);
    }
    cr_assert_eq(acct_json(&srv, "PATCH", "/users/me", "{}", NULL, NULL), 401);
    acct_assert_healthy(&srv);
}

Test(users, get_and_patch_profile, .init = start, .fini = stop)
{
    acct_airport("Q9D", true);
    account_t a = new_account("patch");
    json_t *me;
    cr_assert_eq(acct_json(&srv, "GET", "/users/me", NULL, a.access, &me), 200);
    cr_assert_str_eq(json_string_value(json_object_get(me, "email")), a.email);
    cr_assert(json_is_false(json_object_get(me, "is_admin")));
    json_decref(me);

    json_t *u;
    cr_assert_eq(patch(&a,
                       "{\"full_name\":\"Bea\",\"home_city\":\"Barcelona\",\"home_airport_code\":\"q9d\","
                       "\"preferences\":{\"currency\":\"eur\",\"cabin_class\":\"business\",\"max_stops\":1,"
                       "\"notifications\":{\"email\":true,\"push\":false},\"language\":\"pt-BR\",\"phone\":\"+353871234567\","
                       "\"tags\":[\"beach\",\"food\"],\"emergency_contacts\":[{\"email\":\"mum@example.com\","
                       "\"name\":\"Mum\"}]}}",
                       &u),
                 200);
    cr_assert_str_eq(json_string_value(json_object_get(u, "full_name")), "Bea");
    cr_assert_str_eq(json_string_value(json_object_get(u, "home_airport_code")), "Q9D");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(u, "preferences"), "phone")), "+353871234567");
    json_t *prefs = json_object_get(u, "preferences");
    cr_assert_str_eq(json_string_value(json_object_get(prefs, "currency")), "EUR", "normalized");
    cr_assert_eq(json_integer_value(json_object_get(prefs, "max_stops")), 1);
    cr_assert(json_is_true(json_object_get(json_object_get(prefs, "notifications"), "email")));
    cr_assert_eq(json_array_size(json_object_get(prefs, "tags")), 2);
    json_decref(u);

    /* only fields present are written; null clears; preferences are replaced wholesale */
    cr_assert_eq(
        patch(&a, "{\"home_city\":null,\"preferences\":{\"language\":\"en\",\"max_stops\":null}}", &u), 200);
    cr_assert_str_eq(json_string_value(json_object_get(u, "full_name")), "Bea");
    cr_assert(json_is_null(json_object_get(u, "home_city")));
    cr_assert_eq(json_object_size(json_object_get(u, "preferences")), 1);
    json_decref(u);
    cr_assert_eq(patch(&a, "{}", &u), 200);
    cr_assert_str_eq(json_string_value(json_object_get(u, "home_airport_code")), "Q9D");
    json_decref(u);

    /* what GET returns afterwards is what PATCH answered */
    cr_assert_eq(acct_json(&srv, "GET", "/users/me", NULL, a.access, &me), 200);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(me, "preferences"), "language")),
                     "en");
    cr_assert(json_is_null(json_object_get(me, "home_city")));
    json_decref(me);
    free_account(&a);
    acct_assert_healthy(&srv);
}

Test(users, patch_validation, .init = start, .fini = stop)
{
    account_t a = new_account("patchval");
    struct {
        const char *body, *loc, *type;
    } cases[] = {
        {"{\"preferences\":{\"foo\":1}}", "body/preferences/foo", "extra_forbidden"},
        {"{\"preferences\":{\"currency\":\"EURO\"}}", "body/preferences/currency", "string_pattern_mismatch"},
        {"{\"preferences\":{\"currency\":978}}", "body/preferences/currency", "string_type"},
        {"{\"preferences\":{\"cabin_class\":\"luxury\"}}", "body/preferences/cabin_class", "literal_error"},
        {"{\"preferences\":{\"max_stops\":3}}", "body/preferences/max_stops", "less_than_equal"},
        {"{\"preferences\":{\"max_stops\":-1}}", "body/preferences/max_stops", "greater_than_equal"},
        {"{\"preferences\":{\"max_stops\":\"1\"}}", "body/preferences/max_stops", "int_type"},
        {"{\"preferences\":{\"notifications\":{\"fax\":true}}}", "body/preferences/notifications/fax",
         "extra_forbidden"},
        {"{\"preferences\":{\"notifications\":{\"sms\":1}}}", "body/preferences/notifications/sms",
         "bool_type"},
        {"{\"preferences\":{\"notifications\":true}}", "body/preferences/notifications", "dict_type"},
        {"{\"preferences\":{\"language\":\"english language\"}}", "body/preferences/language",
         "string_pattern_mismatch"},
        {"{\"preferences\":{\"tags\":\"beach\"}}", "body/preferences/tags", "list_type"},
        {"{\"preferences\":{\"phone\":\"0871234567\"}}", "body/preferences/phone", "string_pattern_mismatch"},
        {"{\"preferences\":{\"phone\":\"+35387123x567\"}}", "body/preferences/phone", "string_pattern_mismatch"},
        {"{\"preferences\":{\"tags\":[\"ok\",5]}}", "body/preferences/tags/1", "string_type"},
        {"{\"preferences\":{\"emergency_contacts\":[{\"email\":\"nope\"}]}}",
         "body/preferences/emergency_contacts/0", "value_error"},
        {"{\"preferences\":[1]}", "body/preferences", "dict_type"},
        {"{\"home_airport_code\":\"LONDON\"}", "body/home_airport_code", "string_too_long"},
        {"{\"home_airport_code\":\"Q9Y\"}", "body/home_airport_code", "value_error"},
        {"{\"full_name\":[]}", "body/full_name", "string_type"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *j;
        long st = patch(&a, cases[i].body, &j);
        cr_assert_eq(st, 422, "%s: %ld", cases[i].body, st);
        cr_assert(acct_has_error(j, cases[i].loc, cases[i].type), "%s: %s", cases[i].body, json_dumps(j, 0));
        json_decref(j);
    }
    json_t *j;
    cr_assert_eq(patch(&a, "{\"preferences\":{\"foo\":1,\"bar\":2,\"currency\":\"x\"}}", &j), 422);
    cr_assert_eq(json_array_size(json_object_get(j, "detail")), 3, "every error at once");
    json_decref(j);
    /* nothing was written by the refused requests */
    cr_assert_eq(acct_json(&srv, "GET", "/users/me", NULL, a.access, &j), 200);
    cr_assert_eq(json_object_size(json_object_get(j, "preferences")), 0);
    json_decref(j);
    free_account(&a);
    acct_assert_healthy(&srv);
}

Test(users, recommendations_answer_honestly, .init = start, .fini = stop)
{
    account_t a = new_account("reco");
    cr_assert_eq(patch(&a, "{\"home_city\":\"Dublin\",\"preferences\":{\"tags\":[\"beach\"]}}", NULL), 200);
    json_t *j;
    cr_assert_eq(acct_json(&srv, "GET", "/users/me/recommendations", NULL, a.access, &j), 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "user_home")), "Dublin");
    cr_assert(json_is_array(json_object_get(j, "recommendations")));
    cr_assert_eq(json_array_size(json_object_get(j, "recommendations")), 0);
    cr_assert(json_string_value(json_object_get(j, "reason")));
    json_decref(j);
    free_account(&a);
    acct_assert_healthy(&srv);
}

/* ---- admin: GET /users/{id} and the CLI ----------------------------------------------------- */

Test(users, admin_endpoint_follows_promote_and_demote, .init = start, .fini = stop)
{
    account_t a = new_account("admin"), b = new_account("target");
    char path[128], out[4096];
    snprintf(path, sizeof path, "/users/%s", b.id);
    json_t *j;
    cr_assert_eq(acct_json(&srv, "GET", path, NULL, a.access, &j), 403);
    cr_assert_str_eq(acct_detail(j), "Admin privileges required");
    json_decref(j);

    char *args = fs_sprintf("promote '%s'", a.email);
    cr_assert_eq(user_cli(args, NULL, out, sizeof out), 0, "%s", out);
    free(args);
    /* the same token: the guard reads is_admin from the database on every request */
    cr_assert_eq(acct_json(&srv, "GET", path, NULL, a.access, &j), 200);
    cr_assert_str_eq(json_string_value(json_object_get(j, "email")), b.email);
    json_decref(j);
    cr_assert_eq(acct_json(&srv, "GET", "/users/00000000-0000-4000-8000-000000000000", NULL, a.access, &j),
                 404);
    cr_assert_str_eq(acct_detail(j), "User not found");
    json_decref(j);
    cr_assert_eq(acct_json(&srv, "GET", "/users/not-a-uuid", NULL, a.access, &j), 422);
    cr_assert(acct_has_error(j, "path/user_id", "uuid_parsing"));
    json_decref(j);
    cr_assert_eq(acct_json(&srv, "GET", "/auth/me", NULL, a.access, &j), 200);
    cr_assert(json_is_true(json_object_get(j, "is_admin")));
    json_decref(j);

    args = fs_sprintf("demote '%s'", a.email);
    cr_assert_eq(user_cli(args, NULL, out, sizeof out), 0, "%s", out);
    free(args);
    cr_assert_eq(acct_json(&srv, "GET", path, NULL, a.access, NULL), 403);
    free_account(&a), free_account(&b);
    acct_assert_healthy(&srv);
}

Test(users, cli_create_user_and_admin, .init = start, .fini = stop)
{
    char out[4096];
    char *email = acct_unique_email("cli");
    char *spelled = fs_sprintf("'  %c%s '", email[0] - 32, email + 1);
    char *args = fs_sprintf("create %s", spelled);
    cr_assert_eq(user_cli(args, "a fine password", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "created user") && strstr(out, email), "%s", out);
    char *access;
    char *form_pw = "a+fine+password";
    cr_assert_eq(acct_login(&srv, email, form_pw, &access, NULL), 200, "the CLI's user can log in");
    json_t *j;
    cr_assert_eq(acct_json(&srv, "GET", "/auth/me", NULL, access, &j), 200);
    cr_assert(json_is_false(json_object_get(j, "is_admin")));
    json_decref(j);
    cr_assert_eq(user_cli(args, "a fine password", out, sizeof out), 1, "duplicate: %s", out);
    cr_assert(strstr(out, "already exists"), "%s", out);

    char *admin = acct_unique_email("cliadmin");
    char *admin_args = fs_sprintf("create --admin '%s'", admin);
    cr_assert_eq(user_cli(admin_args, "admin password", out, sizeof out), 0, "%s", out);
    char *admin_access;
    cr_assert_eq(acct_login(&srv, admin, "admin+password", &admin_access, NULL), 200);
    cr_assert_eq(acct_json(&srv, "GET", "/auth/me", NULL, admin_access, &j), 200);
    cr_assert(json_is_true(json_object_get(j, "is_admin")));
    json_decref(j);

    /* refusals */
    cr_assert_eq(user_cli("create 'someone@example.com'", "short", out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "8 to 100 characters"), "%s", out);
    cr_assert_eq(user_cli("create 'not-an-email'", "a fine password", out, sizeof out), 2, "%s", out);
    cr_assert_eq(user_cli("promote 'nobody-here@example.com'", NULL, out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "no user with e-mail"), "%s", out);
    cr_assert_eq(user_cli("frobnicate 'x@example.com'", NULL, out, sizeof out), 2, "%s", out);
    cr_assert_eq(user_cli("", NULL, out, sizeof out), 2, "%s", out);
    cr_assert_eq(user_cli("--help", NULL, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "usage: flightshark user"), "%s", out);

    /* deactivate: the account is refused at once */
    char *deact = fs_sprintf("deactivate '%s'", email);
    cr_assert_eq(user_cli(deact, NULL, out, sizeof out), 0, "%s", out);
    cr_assert_eq(acct_json(&srv, "GET", "/auth/me", NULL, access, NULL), 403);
    cr_assert_eq(acct_login(&srv, email, form_pw, NULL, NULL), 403);

    free(email), free(spelled), free(args), free(access), free(admin), free(admin_args), free(admin_access);
    free(deact);
    acct_assert_healthy(&srv);
}
