#include "api/accounts.h"

#include "runtime/alloc.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PYDANTIC_URL "https://errors.pydantic.dev/2.5/v/"

json_t *fs_acct_loc(const char *a, const char *b, const char *c)
{
    json_t *loc = json_pack("[s]", "body");
    const char *parts[] = {a, b, c};
    for (size_t i = 0; i < 3 && parts[i]; i++)
        json_array_append_new(loc, json_string(parts[i]));
    return loc;
}

void fs_acct_error(json_t *errs, json_t *loc, const char *type, const char *msg, json_t *input, json_t *ctx)
{
    char *url = fs_sprintf(PYDANTIC_URL "%s", type);
    json_t *e = json_pack("{s:s, s:o, s:s, s:O}", "type", type, "loc", loc, "msg", msg, "input",
                          input ? input : json_null());
    if (ctx)
        json_object_set_new(e, "ctx", ctx);
    json_object_set_new(e, "url", json_string(url));
    free(url);
    json_array_append_new(errs, e);
}

bool fs_acct_reply_errors(fs_req_t *req, json_t *errs)
{
    bool any = json_array_size(errs) > 0;
    if (any)
        fs_reply_json(req, 422, json_pack("{s:O}", "detail", errs));
    json_decref(errs);
    return any;
}

size_t fs_acct_utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static void length_error(json_t *errs, const char *name, json_t *v, bool too_short, size_t limit)
{
    char msg[96];
    snprintf(msg, sizeof msg, "String should have at %s %zu character%s", too_short ? "least" : "most", limit,
             limit == 1 ? "" : "s");
    fs_acct_error(errs, fs_acct_loc(name, NULL, NULL), too_short ? "string_too_short" : "string_too_long",
                  msg, v, json_pack("{s:I}", too_short ? "min_length" : "max_length", (json_int_t)limit));
}

void fs_acct_str(json_t *body, json_t *errs, const char *name, bool required, bool nullable, size_t min,
                 size_t max, const char **out, bool *present)
{
    json_t *v = json_object_get(body, name);
    *out = NULL;
    *present = v != NULL;
    if (!v) {
        if (required)
            fs_acct_error(errs, fs_acct_loc(name, NULL, NULL), "missing", "Field required", body, NULL);
        return;
    }
    if (json_is_null(v) && nullable)
        return;
    if (!json_is_string(v)) {
        fs_acct_error(errs, fs_acct_loc(name, NULL, NULL), "string_type", "Input should be a valid string", v,
                      NULL);
        return;
    }
    size_t n = fs_acct_utf8_len(json_string_value(v));
    if (n < min)
        length_error(errs, name, v, true, min);
    else if (max && n > max)
        length_error(errs, name, v, false, max);
    else
        *out = json_string_value(v);
}

static char *dup_or_null(const char *s)
{
    return s ? fs_strdup(s) : NULL;
}

/* Limits are the original's (api/app/schemas/user.py). */
void fs_acct_profile_read(json_t *body, json_t *errs, fs_acct_profile_t *p)
{
    const char *full_name, *home_city, *airport;
    fs_acct_str(body, errs, "full_name", false, true, 0, 255, &full_name, &p->full_name_set);
    fs_acct_str(body, errs, "home_city", false, true, 0, 100, &home_city, &p->home_city_set);
    fs_acct_str(body, errs, "home_airport_code", false, true, 3, 3, &airport, &p->airport_set);
    p->full_name = dup_or_null(full_name);
    p->home_city = dup_or_null(home_city);
    p->airport = dup_or_null(airport);
    for (char *c = p->airport; c && *c; c++)
        *c = (char)toupper((unsigned char)*c);
}

void fs_acct_profile_clear(fs_acct_profile_t *p)
{
    free(p->full_name);
    free(p->home_city);
    free(p->airport);
    memset(p, 0, sizeof *p);
}

void fs_acct_unknown_airport(json_t *errs, const char *code)
{
    char *msg = fs_sprintf("Value error, Unknown airport code '%s'", code);
    json_t *input = json_string(code);
    fs_acct_error(errs, fs_acct_loc("home_airport_code", NULL, NULL), "value_error", msg, input,
                  json_pack("{s:s}", "error", "Unknown airport code"));
    json_decref(input);
    free(msg);
}

long long fs_acct_now(void)
{
    return (long long)time(NULL);
}
