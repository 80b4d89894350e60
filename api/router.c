/* Router: a tree of path segments. Each node has static children and at most one parameter
 * child; a route's handlers hang on the node where its pattern ends, one per method.
 *
 * Matching tries static children before the parameter child and backtracks, so
 * "/airports/popular" beats "/airports/{code}" and "/airports/popular/x" can still reach
 * "/airports/{code}/x". Segments are percent-decoded before they are compared, and a
 * parameter value never contains an unescaped '/'. A single trailing slash is ignored.
 */
#include "api/http_int.h"

#include "runtime/alloc.h"
#include "runtime/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct route_method {
    char *method;
    fs_handler_fn fn;
    char *route; /* the pattern as registered */
    char *names[FS_ROUTE_MAX_PARAMS];
    size_t n_names;
} route_method_t;

typedef struct node {
    char *seg; /* static text (decoded); NULL for the parameter child */
    struct node **kids;
    size_t n_kids;
    struct node *param;
    route_method_t *methods;
    size_t n_methods;
} node_t;

struct fs_router {
    node_t *root;
};

/* ---- UTF-8 and percent-decoding ----------------------------------------------------------- */

/* Rejects overlong forms, surrogates and code points above U+10FFFF (RFC 3629). */
bool fs_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str, *end = s + len;
    while (s < end) {
        unsigned c = *s;
        size_t n;
        unsigned min;
        if (c < 0x80) {
            s++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1, min = 0x80, c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2, min = 0x800, c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3, min = 0x10000, c &= 0x07;
        } else {
            return false;
        }
        if ((size_t)(end - s) <= n)
            return false;
        for (size_t i = 1; i <= n; i++) {
            if ((s[i] & 0xC0) != 0x80)
                return false;
            c = (c << 6) | (s[i] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return false;
        s += n + 1;
    }
    return true;
}

size_t fs_utf8_length(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

fs_decode_rc_t fs_http_decode(const char *s, size_t len, bool plus_is_space, char **out)
{
    char *d = fs_malloc(len + 1);
    size_t o = 0;
    *out = NULL;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%') {
            int hi = i + 2 < len ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < len ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(d);
                return FS_DECODE_BAD_ESCAPE;
            }
            d[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_is_space) {
            d[o++] = ' ';
        } else if (c == '\0') {
            free(d);
            return FS_DECODE_BAD_ESCAPE;
        } else {
            d[o++] = c;
        }
    }
    d[o] = '\0';
    if (!fs_utf8_valid(d, o)) {
        free(d);
        return FS_DECODE_BAD_UTF8;
    }
    *out = d;
    return FS_DECODE_OK;
}

/* ---- building the tree -------------------------------------------------------------------- */

fs_router_t *fs_router_new(void)
{
    fs_router_t *r = FS_NEW(fs_router_t);
    r->root = FS_NEW(node_t);
    return r;
}

static void node_free(node_t *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n_kids; i++)
        node_free(n->kids[i]);
    node_free(n->param);
    for (size_t i = 0; i < n->n_methods; i++) {
        route_method_t *m = &n->methods[i];
        free(m->method);
        free(m->route);
        for (size_t k = 0; k < m->n_names; k++)
            free(m->names[k]);
    }
    free(n->methods);
    free(n->kids);
    free(n->seg);
    free(n);
}

void fs_router_free(fs_router_t *r)
{
    if (!r)
        return;
    node_free(r->root);
    free(r);
}

static node_t *static_child(node_t *n, const char *seg, size_t len, bool create)
{
    for (size_t i = 0; i < n->n_kids; i++)
        if (strlen(n->kids[i]->seg) == len && memcmp(n->kids[i]->seg, seg, len) == 0)
            return n->kids[i];
    if (!create)
        return NULL;
    node_t *k = FS_NEW(node_t);
    k->seg = fs_strndup(seg, len);
    n->kids = fs_realloc(n->kids, (n->n_kids + 1) * sizeof *n->kids);
    n->kids[n->n_kids++] = k;
    return k;
}

/* Patterns are written by us, so a malformed one is a programming error: it aborts at start. */
static void bad_pattern(const char *pattern, const char *why)
{
    fprintf(stderr, "fs_router_add: %s in pattern '%s'\n", why, pattern);
    abort();
}

static route_method_t *method_slot(node_t *n, const char *method)
{
    for (size_t i = 0; i < n->n_methods; i++) {
        if (strcmp(n->methods[i].method, method) == 0) {
            fs_warn("route %s %s registered twice; the last one wins", method, n->methods[i].route);
            route_method_t *m = &n->methods[i];
            free(m->route);
            for (size_t k = 0; k < m->n_names; k++)
                free(m->names[k]);
            m->n_names = 0;
            return m;
        }
    }
    n->methods = fs_realloc(n->methods, (n->n_methods + 1) * sizeof *n->methods);
    route_method_t *m = &n->methods[n->n_methods++];
    memset(m, 0, sizeof *m);
    m->method = fs_strdup(method);
    return m;
}

void fs_router_add(fs_router_t *r, const char *method, const char *pattern, fs_handler_fn fn)
{
    if (!pattern || pattern[0] != '/')
        bad_pattern(pattern ? pattern : "(null)", "no leading '/'");
    node_t *n = r->root;
    char *names[FS_ROUTE_MAX_PARAMS] = {0};
    size_t n_names = 0, depth = 0;
    for (const char *p = pattern + 1; *p;) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0) {
            if (end && end[1] != '\0')
                bad_pattern(pattern, "empty segment");
            break;
        }
        if (++depth > FS_ROUTE_MAX_SEGMENTS)
            bad_pattern(pattern, "too many segments");
        if (p[0] == '{') {
            if (p[len - 1] != '}' || len < 3)
                bad_pattern(pattern, "unterminated parameter");
            if (n_names == FS_ROUTE_MAX_PARAMS)
                bad_pattern(pattern, "too many parameters");
            names[n_names++] = fs_strndup(p + 1, len - 2);
            if (!n->param)
                n->param = FS_NEW(node_t);
            n = n->param;
        } else {
            n = static_child(n, p, len, true);
        }
        p += len + (end ? 1 : 0);
    }
    route_method_t *m = method_slot(n, method);
    m->fn = fn;
    m->route = fs_strdup(pattern);
    memcpy(m->names, names, n_names * sizeof names[0]);
    m->n_names = n_names;
}

/* ---- matching ----------------------------------------------------------------------------- */

typedef struct {
    char **segs;
    size_t n;
    const char *method;
    size_t captured[FS_ROUTE_MAX_PARAMS]; /* segment index of each parameter on the current path */
    size_t n_captured;
    const route_method_t *found;
    size_t found_captured[FS_ROUTE_MAX_PARAMS];
    const node_t *other_methods; /* first node that matched the path but not the method */
} walk_t;

static const route_method_t *find_method(const node_t *n, const char *method)
{
    for (size_t i = 0; i < n->n_methods; i++)
        if (strcmp(n->methods[i].method, method) == 0)
            return &n->methods[i];
    if (strcmp(method, "HEAD") == 0)
        return find_method(n, "GET");
    return NULL;
}

static bool walk(const node_t *n, size_t i, walk_t *w)
{
    if (i == w->n) {
        if (n->n_methods == 0)
            return false;
        const route_method_t *m = find_method(n, w->method);
        if (!m) {
            if (!w->other_methods)
                w->other_methods = n;
            return false;
        }
        w->found = m;
        memcpy(w->found_captured, w->captured, sizeof w->captured);
        return true;
    }
    const char *seg = w->segs[i];
    for (size_t k = 0; k < n->n_kids; k++)
        if (strcmp(n->kids[k]->seg, seg) == 0 && walk(n->kids[k], i + 1, w))
            return true;
    if (n->param && seg[0] && w->n_captured < FS_ROUTE_MAX_PARAMS) {
        w->captured[w->n_captured++] = i;
        if (walk(n->param, i + 1, w))
            return true;
        w->n_captured--;
    }
    return false;
}

static void segs_free(char **segs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(segs[i]);
}

/* Splits and decodes; a trailing slash adds no empty segment ("/a/" is "/a"). */
static fs_route_status_t split_path(const char *path, char **segs, size_t *n)
{
    *n = 0;
    if (path[0] != '/')
        return FS_ROUTE_NOT_FOUND;
    for (const char *p = path + 1; *p;) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (!end && len == 0)
            break;
        if (*n == FS_ROUTE_MAX_SEGMENTS) {
            segs_free(segs, *n);
            return FS_ROUTE_NOT_FOUND;
        }
        fs_decode_rc_t rc = fs_http_decode(p, len, false, &segs[*n]);
        if (rc != FS_DECODE_OK) {
            segs_free(segs, *n);
            return rc == FS_DECODE_BAD_UTF8 ? FS_ROUTE_BAD_UTF8 : FS_ROUTE_BAD_ESCAPE;
        }
        (*n)++;
        if (!end)
            break;
        p = end + 1;
    }
    return FS_ROUTE_FOUND;
}

static void format_allow(const node_t *n, char *out, size_t size)
{
    size_t used = 0;
    bool has_head = false;
    out[0] = '\0';
    for (size_t i = 0; i < n->n_methods; i++) {
        has_head |= strcmp(n->methods[i].method, "HEAD") == 0;
    }
    for (size_t i = 0; i < n->n_methods && used < size; i++) {
        const char *m = n->methods[i].method;
        used += (size_t)snprintf(out + used, size - used, "%s%s", used ? ", " : "", m);
        if (strcmp(m, "GET") == 0 && !has_head && used < size)
            used += (size_t)snprintf(out + used, size - used, ", HEAD");
    }
}

fs_route_status_t fs_router_match(const fs_router_t *r, const char *method, const char *path,
                                  fs_route_match_t *m)
{
    memset(m, 0, sizeof *m);
    char *segs[FS_ROUTE_MAX_SEGMENTS];
    size_t n;
    fs_route_status_t rc = split_path(path, segs, &n);
    if (rc != FS_ROUTE_FOUND)
        return rc;
    walk_t w = {.segs = segs, .n = n, .method = method};
    if (walk(r->root, 0, &w)) {
        m->fn = w.found->fn;
        m->route = w.found->route;
        m->n_params = w.found->n_names;
        for (size_t k = 0; k < m->n_params; k++) {
            m->names[k] = w.found->names[k];
            m->values[k] = fs_strdup(segs[w.found_captured[k]]);
        }
        rc = FS_ROUTE_FOUND;
    } else if (w.other_methods) {
        m->route = w.other_methods->methods[0].route;
        format_allow(w.other_methods, m->allow, sizeof m->allow);
        rc = FS_ROUTE_NOT_ALLOWED;
    } else {
        rc = FS_ROUTE_NOT_FOUND;
    }
    segs_free(segs, n);
    return rc;
}

void fs_route_match_clear(fs_route_match_t *m)
{
    for (size_t k = 0; k < m->n_params; k++)
        free(m->values[k]);
    memset(m, 0, sizeof *m);
}
