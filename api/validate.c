/* Request validation in the shape FastAPI (pydantic 2.5) gives to clients:
 *
 *   422 {"detail":[{"type":"int_parsing","loc":["query","limit"],"msg":"Input should be a valid
 *        integer, unable to parse string as an integer","input":"abc","url":"https://..."}]}
 *
 * Types and messages are pydantic-core's, so front ends that display them keep working. All
 * errors of a request are collected and answered together, as FastAPI does.
 */
#include "api/http_int.h"

#include "runtime/alloc.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PYDANTIC_URL "https://errors.pydantic.dev/2.5/v/"

struct fs_errors {
    json_t *list;
};

fs_errors_t *fs_errors_new(void)
{
    fs_errors_t *e = FS_NEW(fs_errors_t);
    e->list = json_array();
    return e;
}

static void errors_append(fs_errors_t *e, json_t *loc, const char *type, const char *msg, json_t *input,
                          json_t *ctx)
{
    json_t *err = json_object();
    char *url = fs_sprintf(PYDANTIC_URL "%s", type);
    json_object_set_new(err, "type", json_string(type));
    json_object_set_new(err, "loc", loc);
    json_object_set_new(err, "msg", json_string(msg));
    json_object_set_new(err, "input", input ? input : json_null());
    if (ctx)
        json_object_set_new(err, "ctx", ctx);
    json_object_set_new(err, "url", json_string(url));
    free(url);
    json_array_append_new(e->list, err);
}

void fs_errors_add(fs_errors_t *e, const char *loc_kind, const char *field, const char *type, const char *msg,
                   json_t *input, json_t *ctx)
{
    json_t *loc = json_array();
    json_array_append_new(loc, json_string(loc_kind));
    if (field)
        json_array_append_new(loc, json_string(field));
    errors_append(e, loc, type, msg, input, ctx);
}

bool fs_errors_any(const fs_errors_t *e)
{
    return json_array_size(e->list) > 0;
}

bool fs_errors_reply(fs_req_t *req, fs_errors_t *e)
{
    bool any = fs_errors_any(e);
    if (any) {
        json_t *body = json_object();
        json_object_set(body, "detail", e->list);
        fs_reply_json(req, 422, body);
    }
    json_decref(e->list);
    free(e);
    return any;
}

/* ---- query readers ------------------------------------------------------------------------- */

static void missing(fs_errors_t *e, const char *name)
{
    fs_errors_add(e, "query", name, "missing", "Field required", json_null(), NULL);
}

/* pydantic-core's str -> int: surrounding whitespace, a sign, digits, and a fraction of zeros
 * ("3.00") are accepted. Returns 1 on success, 0 if unparseable, -1 if out of range. */
static int parse_int(const char *s, long *out)
{
    while (isspace((unsigned char)*s))
        s++;
    const char *start = s;
    if (*s == '+' || *s == '-')
        s++;
    if (!isdigit((unsigned char)*s))
        return 0;
    while (isdigit((unsigned char)*s))
        s++;
    const char *digits_end = s;
    if (*s == '.') {
        s++;
        while (*s == '0')
            s++;
    }
    while (isspace((unsigned char)*s))
        s++;
    if (*s)
        return 0;
    char *num = fs_strndup(start, (size_t)(digits_end - start));
    errno = 0;
    long v = strtol(num, NULL, 10);
    int rc = errno == ERANGE ? -1 : 1;
    free(num);
    *out = v;
    return rc;
}

void fs_query_int(fs_req_t *req, fs_errors_t *e, const char *name, long dflt, long min, long max, long *out)
{
    *out = dflt;
    const char *v = fs_req_query(req, name);
    if (!v)
        return;
    long n;
    int rc = parse_int(v, &n);
    if (rc == 0) {
        fs_errors_add(e, "query", name, "int_parsing",
                      "Input should be a valid integer, unable to parse string as an integer", json_string(v),
                      NULL);
        return;
    }
    if (rc < 0) {
        fs_errors_add(e, "query", name, "int_parsing_size",
                      "Unable to parse input string as an integer, exceeded maximum size", json_string(v),
                      NULL);
        return;
    }
    char msg[96];
    if (n < min) {
        snprintf(msg, sizeof msg, "Input should be greater than or equal to %ld", min);
        fs_errors_add(e, "query", name, "greater_than_equal", msg, json_string(v),
                      json_pack("{s:I}", "ge", (json_int_t)min));
        return;
    }
    if (n > max) {
        snprintf(msg, sizeof msg, "Input should be less than or equal to %ld", max);
        fs_errors_add(e, "query", name, "less_than_equal", msg, json_string(v),
                      json_pack("{s:I}", "le", (json_int_t)max));
        return;
    }
    *out = n;
}

void fs_query_bool(fs_req_t *req, fs_errors_t *e, const char *name, bool dflt, bool *out)
{
    static const char *const truthy[] = {"1", "on", "t", "true", "y", "yes", NULL};
    static const char *const falsy[] = {"0", "off", "f", "false", "n", "no", NULL};
    *out = dflt;
    const char *v = fs_req_query(req, name);
    if (!v)
        return;
    for (const char *const *t = truthy; *t; t++)
        if (strcasecmp(v, *t) == 0) {
            *out = true;
            return;
        }
    for (const char *const *f = falsy; *f; f++)
        if (strcasecmp(v, *f) == 0) {
            *out = false;
            return;
        }
    fs_errors_add(e, "query", name, "bool_parsing",
                  "Input should be a valid boolean, unable to interpret input", json_string(v), NULL);
}

static void length_error(fs_errors_t *e, const char *name, const char *v, bool too_short, size_t limit)
{
    char msg[96];
    snprintf(msg, sizeof msg, "String should have at %s %zu character%s", too_short ? "least" : "most", limit,
             limit == 1 ? "" : "s");
    json_t *ctx = json_pack("{s:I}", too_short ? "min_length" : "max_length", (json_int_t)limit);
    fs_errors_add(e, "query", name, too_short ? "string_too_short" : "string_too_long", msg, json_string(v),
                  ctx);
}

/* Writes *out only for a valid value, so the caller's initial value is the default. */
void fs_query_str(fs_req_t *req, fs_errors_t *e, const char *name, bool required, size_t min_len,
                  size_t max_len, const char **out)
{
    const char *v = fs_req_query(req, name);
    if (!v) {
        if (required)
            missing(e, name);
        return;
    }
    size_t n = fs_utf8_length(v);
    if (min_len && n < min_len)
        length_error(e, name, v, true, min_len);
    else if (max_len && n > max_len)
        length_error(e, name, v, false, max_len);
    else
        *out = v;
}

/* "'a', 'b' or 'c'", as pydantic lists the members of an enum. */
static char *expected_list(const char *const *allowed)
{
    size_t n = 0;
    while (allowed[n])
        n++;
    char *s = fs_strdup("");
    for (size_t i = 0; i < n; i++) {
        const char *sep = i == 0 ? "" : (i == n - 1 ? " or " : ", ");
        char *next = fs_sprintf("%s%s'%s'", s, sep, allowed[i]);
        free(s);
        s = next;
    }
    return s;
}

void fs_query_enum(fs_req_t *req, fs_errors_t *e, const char *name, const char *dflt,
                   const char *const *allowed, const char **out)
{
    *out = dflt;
    const char *v = fs_req_query(req, name);
    if (!v)
        return;
    for (const char *const *a = allowed; *a; a++)
        if (strcmp(v, *a) == 0) {
            *out = *a;
            return;
        }
    char *expected = expected_list(allowed);
    char *msg = fs_sprintf("Input should be %s", expected);
    fs_errors_add(e, "query", name, "enum", msg, json_string(v), json_pack("{s:s}", "expected", expected));
    free(msg);
    free(expected);
}

/* ---- dates --------------------------------------------------------------------------------- */

static bool digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return false;
    return true;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* A time part that pydantic accepts for a date: midnight exactly ("T00:00", "T00:00:00",
 * "T00:00:00.000", optionally "Z"). */
static bool zero_time(const char *t)
{
    if (!strchr("Tt _", t[0]))
        return false;
    t++;
    if (strncmp(t, "00:00", 5) != 0)
        return false;
    t += 5;
    if (strncmp(t, ":00", 3) == 0) {
        t += 3;
        if (*t == '.')
            for (t++; *t == '0'; t++)
                ;
    }
    if (*t == 'Z' || *t == 'z')
        t++;
    return *t == '\0';
}

/* Returns NULL and fills y/m/d, or the speedate error text that pydantic puts in the message. */
static const char *parse_date(const char *s, int *y, int *m, int *d, const char **type)
{
    size_t len = strlen(s);
    *type = "date_from_datetime_parsing";
    if (len < 10)
        return "input is too short";
    if (!digits(s, 4))
        return "invalid character in year";
    if (s[4] != '-')
        return "invalid date separator, expected `-`";
    if (!digits(s + 5, 2))
        return "invalid character in month";
    if (s[7] != '-')
        return "invalid date separator, expected `-`";
    if (!digits(s + 8, 2))
        return "invalid character in day";
    *y = atoi(s);
    *m = (s[5] - '0') * 10 + (s[6] - '0');
    *d = (s[8] - '0') * 10 + (s[9] - '0');
    if (*m < 1 || *m > 12)
        return "month value is outside expected range of 1-12";
    if (*d < 1 || *d > days_in_month(*y, *m))
        return "day value is outside expected range";
    if (len == 10)
        return NULL;
    if (!strchr("Tt _", s[10]))
        return "invalid datetime separator, expected `T`, `t`, `_` or space";
    if (zero_time(s + 10))
        return NULL;
    *type = "date_from_datetime_inexact";
    return "";
}

void fs_query_date(fs_req_t *req, fs_errors_t *e, const char *name, bool required, int *y, int *m, int *d,
                   bool *present)
{
    *present = false;
    const char *v = fs_req_query(req, name);
    if (!v) {
        if (required)
            missing(e, name);
        return;
    }
    int yy, mm, dd;
    const char *type;
    const char *err = parse_date(v, &yy, &mm, &dd, &type);
    if (!err) {
        *y = yy, *m = mm, *d = dd;
        *present = true;
        return;
    }
    if (strcmp(type, "date_from_datetime_inexact") == 0) {
        fs_errors_add(e, "query", name, type,
                      "Datetimes provided to dates should have zero time - e.g. be exact dates",
                      json_string(v), NULL);
        return;
    }
    char *msg = fs_sprintf("Input should be a valid date or datetime, %s", err);
    fs_errors_add(e, "query", name, type, msg, json_string(v), json_pack("{s:s}", "error", err));
    free(msg);
}

/* ---- JSON bodies --------------------------------------------------------------------------- */

json_t *fs_req_json_or_reply(fs_req_t *req)
{
    size_t len;
    const char *body = fs_req_body(req, &len);
    fs_errors_t *e = fs_errors_new();
    if (len == 0) {
        fs_errors_add(e, "body", NULL, "missing", "Field required", json_null(), NULL);
        fs_errors_reply(req, e);
        return NULL;
    }
    json_error_t err;
    json_t *j = json_loadb(body, len, JSON_DECODE_ANY, &err);
    if (!j) {
        json_t *loc = json_pack("[s,I]", "body", (json_int_t)err.position);
        errors_append(e, loc, "json_invalid", "JSON decode error", json_object(),
                      json_pack("{s:s}", "error", err.text));
        fs_errors_reply(req, e);
        return NULL;
    }
    if (!json_is_object(j)) {
        fs_errors_add(e, "body", NULL, "model_attributes_type",
                      "Input should be a valid dictionary or object to extract fields from", j, NULL);
        fs_errors_reply(req, e);
        return NULL;
    }
    fs_errors_reply(req, e);
    return j;
}
