#include "bench/scenario.h"

#include "runtime/alloc.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_LINE    8192
#define MAX_QUERIES 1000000

/* Parse context: the scenario under construction and where we are in the text. */
typedef struct parser {
    fs_scenario_t *s;
    const char *file, *base_dir;
    int line;
    fs_scn_req_t *req; /* current [request] section, NULL before the first */
    char **err;
} parser_t;

static int fail(parser_t *p, const char *fmt, const char *arg)
{
    char *msg = fs_sprintf(fmt, arg);
    *p->err = fs_sprintf("%s:%d: %s", p->file, p->line, msg);
    free(msg);
    return -1;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

/* A '#' starts a comment at the beginning of a line or after whitespace, so that a '#' inside
 * a value such as "a#b" survives. */
static void strip_comment(char *s)
{
    for (char *c = s; *c; c++)
        if (*c == '#' && (c == s || isspace((unsigned char)c[-1]))) {
            *c = '\0';
            return;
        }
}

int fs_scn_parse_duration(const char *text, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || errno || v < 0)
        return -1;
    if (*end == '\0' || strcmp(end, "s") == 0)
        *out = v;
    else if (strcmp(end, "ms") == 0)
        *out = v / 1000.0;
    else if (strcmp(end, "m") == 0)
        *out = v * 60.0;
    else
        return -1;
    return 0;
}

static int parse_int(parser_t *p, const char *key, const char *v, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (end == v || *end || errno || n < lo || n > hi)
        return fail(p, "'%s' needs a whole number in range", key);
    *out = n;
    return 0;
}

static int parse_seconds(parser_t *p, const char *key, const char *v, double *out)
{
    if (fs_scn_parse_duration(v, out) != 0)
        return fail(p, "'%s' needs a duration such as 10s, 500ms or 2m", key);
    return 0;
}

static char *resolve(parser_t *p, const char *v)
{
    if (v[0] == '/' || !p->base_dir)
        return fs_strdup(v);
    return fs_sprintf("%s/%s", p->base_dir, v);
}

static int set_top(parser_t *p, const char *k, const char *v)
{
    fs_scenario_t *s = p->s;
    long n;
    if (strcmp(k, "name") == 0) {
        free(s->name);
        s->name = fs_strdup(v);
    } else if (strcmp(k, "description") == 0) {
        free(s->description);
        s->description = fs_strdup(v);
    } else if (strcmp(k, "protocol") == 0) {
        if (!fs_bench_proto_find(v))
            return fail(p, "unknown protocol '%s' (known: http, rpc)", v);
        free(s->protocol);
        s->protocol = fs_strdup(v);
    } else if (strcmp(k, "connections") == 0) {
        if (parse_int(p, k, v, 1, 100000, &n))
            return -1;
        s->connections = (int)n;
    } else if (strcmp(k, "threads") == 0) {
        if (parse_int(p, k, v, 0, 256, &n))
            return -1;
        s->threads = (int)n;
    } else if (strcmp(k, "reference_size") == 0) {
        if (parse_int(p, k, v, 0, 1L << 30, &n))
            return -1;
        s->reference_size = (size_t)n;
    } else if (strcmp(k, "rate") == 0) {
        if (parse_int(p, k, v, 0, 10000000, &n))
            return -1;
        s->rate = (double)n;
    } else if (strcmp(k, "duration") == 0) {
        return parse_seconds(p, k, v, &s->duration_s);
    } else if (strcmp(k, "warmup") == 0) {
        return parse_seconds(p, k, v, &s->warmup_s);
    } else if (strcmp(k, "timeout") == 0) {
        return parse_seconds(p, k, v, &s->timeout_s);
    } else if (strcmp(k, "queries") == 0) {
        free(s->queries_file);
        s->queries_file = resolve(p, v);
    } else {
        return fail(p, "unknown key '%s'", k);
    }
    return 0;
}

static bool valid_method(const char *v)
{
    if (!*v)
        return false;
    for (const char *c = v; *c; c++)
        if (!isupper((unsigned char)*c))
            return false;
    return true;
}

/* With `protocol = rpc` (set before the first [request]) a path is the method's name. */
static bool valid_rpc_method(const char *v)
{
    if (!isalpha((unsigned char)*v))
        return false;
    for (const char *c = v; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_' && *c != '.')
            return false;
    return true;
}

static int set_req(parser_t *p, const char *k, const char *v)
{
    fs_scn_req_t *r = p->req;
    long n;
    if (strcmp(k, "weight") == 0) {
        if (parse_int(p, k, v, 1, 1000000, &n))
            return -1;
        r->weight = (unsigned)n;
    } else if (strcmp(k, "method") == 0) {
        if (!valid_method(v))
            return fail(p, "method '%s' must be an upper-case token such as GET", v);
        free(r->method);
        r->method = fs_strdup(v);
    } else if (strcmp(k, "path") == 0) {
        if (strcmp(p->s->protocol, "rpc") == 0) {
            if (!valid_rpc_method(v))
                return fail(p, "path '%s' must be an RPC method name such as Ping", v);
        } else if (v[0] != '/' || strpbrk(v, " \t")) {
            return fail(p, "path '%s' must start with '/' and hold no spaces", v);
        }
        free(r->path);
        r->path = fs_strdup(v);
    } else if (strcmp(k, "header") == 0) {
        const char *colon = strchr(v, ':');
        if (!colon || colon == v)
            return fail(p, "header '%s' must look like 'Name: value'", v);
        r->headers = fs_realloc(r->headers, sizeof(char *) * (size_t)(r->nheaders + 1));
        r->headers[r->nheaders++] = fs_strdup(v);
    } else if (strcmp(k, "body") == 0) {
        free(r->body);
        r->body = fs_strdup(v);
    } else if (strcmp(k, "queries") == 0) {
        free(r->queries_file);
        r->queries_file = resolve(p, v);
    } else {
        return fail(p, "unknown key '%s' in [request]", k);
    }
    return 0;
}

static int finish_req(parser_t *p)
{
    if (!p->req)
        return 0;
    if (!p->req->path) {
        p->line = p->req->line;
        return fail(p, "[request] has no path%s", "");
    }
    if (!p->req->method)
        p->req->method = fs_strdup("GET");
    p->s->total_weight += p->req->weight;
    return 0;
}

static int open_req(parser_t *p)
{
    if (finish_req(p))
        return -1;
    fs_scenario_t *s = p->s;
    s->reqs = fs_realloc(s->reqs, sizeof(fs_scn_req_t) * (size_t)(s->nreqs + 1));
    p->req = &s->reqs[s->nreqs++];
    memset(p->req, 0, sizeof *p->req);
    p->req->weight = 1;
    p->req->line = p->line;
    return 0;
}

static int parse_line(parser_t *p, char *raw)
{
    strip_comment(raw);
    char *line = trim(raw);
    if (!*line)
        return 0;
    if (line[0] == '[') {
        if (strcmp(line, "[request]") != 0)
            return fail(p, "unknown section '%s' (only [request])", line);
        return open_req(p);
    }
    char *eq = strchr(line, '=');
    if (!eq)
        return fail(p, "expected 'key = value', got '%s'", line);
    *eq = '\0';
    char *k = trim(line), *v = trim(eq + 1);
    if (!*k)
        return fail(p, "missing key before '='%s", "");
    if (!*v)
        return fail(p, "'%s' has no value", k);
    return p->req ? set_req(p, k, v) : set_top(p, k, v);
}

static char *name_from_file(const char *file)
{
    const char *b = strrchr(file, '/');
    b = b ? b + 1 : file;
    const char *dot = strrchr(b, '.');
    return dot && dot != b ? fs_strndup(b, (size_t)(dot - b)) : fs_strdup(b);
}

static void set_defaults(fs_scenario_t *s, const char *file)
{
    memset(s, 0, sizeof *s);
    s->file = fs_strdup(file);
    s->protocol = fs_strdup("http");
    s->connections = 10;
    s->duration_s = 10;
    s->warmup_s = 1;
    s->timeout_s = 5;
}

int fs_scn_parse(const char *text, const char *file, const char *base_dir, fs_scenario_t *out, char **err)
{
    set_defaults(out, file);
    parser_t p = {.s = out, .file = file, .base_dir = base_dir, .err = err};
    const char *cur = text;
    int rc = 0;
    while (rc == 0 && *cur) {
        p.line++;
        const char *nl = strchr(cur, '\n');
        size_t len = nl ? (size_t)(nl - cur) : strlen(cur);
        if (len >= MAX_LINE) {
            rc = fail(&p, "line longer than %s bytes", "8191");
            break;
        }
        char buf[MAX_LINE];
        memcpy(buf, cur, len);
        buf[len] = '\0';
        rc = parse_line(&p, buf);
        cur = nl ? nl + 1 : cur + len;
    }
    if (rc == 0)
        rc = finish_req(&p);
    if (rc == 0 && out->nreqs == 0) {
        p.line++;
        rc = fail(&p, "no [request] section: a scenario needs at least one request%s", "");
    }
    if (rc == 0 && !out->name)
        out->name = name_from_file(file);
    if (rc != 0)
        fs_scn_free(out);
    return rc;
}

static char *slurp(const char *path, char **err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        *err = fs_sprintf("%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    size_t cap = 0, len = 0;
    for (;;) {
        if (cap - len < 4096)
            buf = fs_realloc(buf, cap = cap * 2 + 4096);
        size_t n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
        if (n == 0)
            break;
    }
    buf[len] = '\0';
    fclose(f);
    return buf;
}

int fs_scn_load(const char *path, fs_scenario_t *out, char **err)
{
    char *text = slurp(path, err);
    if (!text)
        return -1;
    char *copy = fs_strdup(path);
    int rc = fs_scn_parse(text, path, dirname(copy), out, err);
    free(copy);
    free(text);
    return rc;
}

void fs_scn_single(fs_scenario_t *out, const char *target)
{
    set_defaults(out, "<command line>");
    out->name = fs_strdup("adhoc");
    out->reqs = FS_NEW(fs_scn_req_t);
    out->nreqs = 1;
    out->reqs->weight = 1;
    out->reqs->method = fs_strdup("GET");
    out->reqs->path = fs_strdup(target);
    out->total_weight = 1;
}

long fs_scn_read_queries(const char *path, char ***out, char **err)
{
    char *text = slurp(path, err);
    if (!text)
        return -1;
    long n = 0;
    char **qs = NULL;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        line[strcspn(line, "\r")] = '\0';
        if (!*line || line[0] == '#')
            continue;
        if (n == MAX_QUERIES)
            break;
        qs = fs_realloc(qs, sizeof(char *) * (size_t)(n + 1));
        qs[n++] = fs_strdup(line);
    }
    free(text);
    if (n == 0) {
        *err = fs_sprintf("%s: no queries in the file", path);
        free(qs);
        return -1;
    }
    *out = qs;
    return n;
}

char *fs_scn_urlencode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = fs_malloc(strlen(s) * 3 + 1), *o = out;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (isalnum(*c) || strchr("-._~", *c)) {
            *o++ = (char)*c;
        } else {
            *o++ = '%';
            *o++ = hex[*c >> 4];
            *o++ = hex[*c & 15];
        }
    }
    *o = '\0';
    return out;
}

/* `tpl` with every `token` replaced by `q`; caller frees. */
static char *replace_all(const char *tpl, const char *token, const char *q)
{
    size_t qlen = strlen(q), tlen = strlen(token), n = 0;
    for (const char *c = strstr(tpl, token); c; c = strstr(c + tlen, token))
        n++;
    char *out = fs_malloc(strlen(tpl) + n * qlen + 1), *o = out;
    for (const char *c = tpl;;) {
        const char *hit = strstr(c, token);
        size_t len = hit ? (size_t)(hit - c) : strlen(c);
        memcpy(o, c, len);
        o += len;
        if (!hit)
            break;
        memcpy(o, q, qlen);
        o += qlen;
        c = hit + tlen;
    }
    *o = '\0';
    return out;
}

/* Every "{date+N}" replaced by the UTC date N days from now (YYYY-MM-DD), so scenarios of
 * future travel dates stay valid whenever they run. */
static char *expand_dates(char *s)
{
    /* "{month+N}": "month=M&year=Y" of the month N months from now */
    for (char *at = strstr(s, "{month+"); at; at = strstr(s, "{month+")) {
        char *end = strchr(at, '}');
        if (!end)
            break;
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        int months = tm.tm_year * 12 + tm.tm_mon + (int)strtol(at + 7, NULL, 10);
        char value[48], token[32];
        snprintf(value, sizeof value, "month=%d&year=%d", months % 12 + 1, months / 12 + 1900);
        snprintf(token, sizeof token, "%.*s", (int)(end - at + 1), at);
        char *next = replace_all(s, token, value);
        free(s);
        s = next;
    }
    for (char *at = strstr(s, "{date+"); at; at = strstr(s, "{date+")) {
        char *end = strchr(at, '}');
        if (!end)
            break;
        long days = strtol(at + 6, NULL, 10);
        time_t t = time(NULL) + days * 86400;
        struct tm tm;
        gmtime_r(&t, &tm);
        char date[16];
        strftime(date, sizeof date, "%Y-%m-%d", &tm);
        char token[32];
        snprintf(token, sizeof token, "%.*s", (int)(end - at + 1), at);
        char *next = replace_all(s, token, date);
        free(s);
        s = next;
    }
    return s;
}

/* The request text for query `q`: "{q}" takes it URL-encoded, "{rawq}" as written (a query
 * line that is itself "a=1&b=2"); then dates are expanded. Caller frees. */
static char *substitute(const char *tpl, const char *q)
{
    char *enc = fs_scn_urlencode(q);
    char *once = replace_all(tpl, "{q}", enc);
    char *twice = replace_all(once, "{rawq}", q);
    free(enc);
    free(once);
    return expand_dates(twice);
}

static bool uses_query(const char *s)
{
    return s && (strstr(s, "{q}") || strstr(s, "{rawq}"));
}

static int render_one(fs_scn_req_t *r, const fs_bench_proto_t *proto, const char *authority, const char *q,
                      fs_bench_buf_t *out, char **err)
{
    char *target = substitute(r->path, q ? q : "");
    char *body = r->body ? substitute(r->body, q ? q : "") : NULL;
    fs_proto_req_t pr = {.method = r->method,
                         .target = target,
                         .body = body,
                         .headers = (const char *const *)r->headers,
                         .nheaders = r->nheaders,
                         .authority = authority};
    int rc = proto->render(&pr, out, err);
    free(target);
    free(body);
    return rc;
}

static void free_queries(char **qs, long n)
{
    for (long i = 0; i < n; i++)
        free(qs[i]);
    free(qs);
}

static int render_req(fs_scenario_t *s, fs_scn_req_t *r, const fs_bench_proto_t *proto, const char *authority,
                      char **err)
{
    bool templated = uses_query(r->path) || uses_query(r->body);
    const char *file = r->queries_file ? r->queries_file : s->queries_file;
    char **qs = NULL;
    long nq = 1;
    if (templated) {
        if (!file) {
            *err = fs_sprintf("%s:%d: the request uses {q} but no 'queries' file is set", s->file, r->line);
            return -1;
        }
        if ((nq = fs_scn_read_queries(file, &qs, err)) < 0)
            return -1;
    }
    r->rendered = fs_calloc((size_t)nq, sizeof(fs_bench_buf_t));
    r->nrendered = (size_t)nq;
    int rc = 0;
    for (long i = 0; rc == 0 && i < nq; i++)
        rc = render_one(r, proto, authority, qs ? qs[i] : NULL, &r->rendered[i], err);
    free_queries(qs, templated ? nq : 0);
    return rc;
}

int fs_scn_render(fs_scenario_t *s, const fs_bench_proto_t *proto, const char *authority, char **err)
{
    for (int i = 0; i < s->nreqs; i++)
        if (render_req(s, &s->reqs[i], proto, authority, err) != 0)
            return -1;
    return 0;
}

char *fs_scn_first_target(const fs_scenario_t *s, char **err)
{
    const fs_scn_req_t *r = &s->reqs[0];
    if (!uses_query(r->path))
        return substitute(r->path, "");
    const char *file = r->queries_file ? r->queries_file : s->queries_file;
    if (!file) {
        *err = fs_sprintf("%s:%d: the request uses {q} but no 'queries' file is set", s->file, r->line);
        return NULL;
    }
    char **qs;
    long n = fs_scn_read_queries(file, &qs, err);
    if (n < 0)
        return NULL;
    char *target = substitute(r->path, qs[0]);
    free_queries(qs, n);
    return target;
}

static void free_req(fs_scn_req_t *r)
{
    free(r->method);
    free(r->path);
    free(r->body);
    free(r->queries_file);
    for (int i = 0; i < r->nheaders; i++)
        free(r->headers[i]);
    free(r->headers);
    for (size_t i = 0; i < r->nrendered; i++)
        free(r->rendered[i].data);
    free(r->rendered);
}

void fs_scn_free(fs_scenario_t *s)
{
    for (int i = 0; i < s->nreqs; i++)
        free_req(&s->reqs[i]);
    free(s->reqs);
    free(s->name);
    free(s->description);
    free(s->protocol);
    free(s->file);
    free(s->queries_file);
    memset(s, 0, sizeof *s);
}
