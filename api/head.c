/* Request head checks made before libevhtp sees a request.
 *
 * evhtp 1.2.18 closes the connection without a word on any parse error (gh #161) and its URI
 * parser misbehaves when a long request target spans two reads (#128, #131). So the server
 * holds the bytes of a new request until its whole head has arrived, checks them here, and
 * only then lets evhtp parse: evhtp always gets a complete, well-formed head in one read, and
 * what it would choke on gets a clear 4xx/5xx instead. This is a validator, not a parser: it
 * extracts nothing but the method and the verdict.
 */
#include "api/http_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The methods htparser knows (enum htp_method); anything else makes it fail silently. */
static const char *const known_methods[] = {"GET",    "HEAD",  "POST",    "PUT",      "DELETE",    "MKCOL",
                                            "COPY",   "MOVE",  "OPTIONS", "PROPFIND", "PROPPATCH", "LOCK",
                                            "UNLOCK", "TRACE", "CONNECT", "PATCH",    NULL};

#define MAX_METHOD 15

typedef struct {
    bool has_length, chunked;
    unsigned long long length;
} body_info_t;

static fs_head_rc_t reject(fs_head_verdict_t *v, int status, const char *detail)
{
    v->status = status;
    v->detail = detail;
    return FS_HEAD_REJECT;
}

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static size_t effective_max_uri(const fs_head_limits_t *lim)
{
    size_t m = lim->max_uri ? lim->max_uri : 4096;
    return m < FS_HTTP_URI_HARD_MAX ? m : FS_HTTP_URI_HARD_MAX;
}

/* The start of a request line that has no end yet: refuse garbage early instead of waiting
 * for a newline that may never come. */
static fs_head_rc_t check_partial(const char *line, size_t len, fs_head_verdict_t *v)
{
    for (size_t i = 0; i < len && i <= MAX_METHOD; i++) {
        if (line[i] == ' ')
            return i == 0 ? reject(v, 400, "Invalid request line") : FS_HEAD_NEED_MORE;
        if (line[i] < 'A' || line[i] > 'Z')
            return reject(v, 400, "Invalid request line");
    }
    return len > MAX_METHOD ? reject(v, 400, "Invalid request line") : FS_HEAD_NEED_MORE;
}

static fs_head_rc_t check_method(const char *m, size_t len, fs_head_verdict_t *v)
{
    if (len == 0 || len > MAX_METHOD)
        return reject(v, 400, "Invalid request line");
    for (size_t i = 0; i < len; i++)
        if (m[i] < 'A' || m[i] > 'Z')
            return reject(v, 400, "Invalid request line");
    memcpy(v->method, m, len);
    v->method[len] = '\0';
    for (const char *const *k = known_methods; *k; k++)
        if (strcmp(*k, v->method) == 0)
            return FS_HEAD_OK;
    return reject(v, 501, "Method Not Implemented");
}

static fs_head_rc_t check_target(const char *t, size_t len, const fs_head_limits_t *lim, fs_head_verdict_t *v)
{
    if (len > effective_max_uri(lim))
        return reject(v, 414, "URI too long");
    if (len == 0)
        return reject(v, 400, "Invalid request line");
    bool absolute =
        (len > 7 && strncasecmp(t, "http://", 7) == 0) || (len > 8 && strncasecmp(t, "https://", 8) == 0);
    if (t[0] != '/' && !absolute)
        return reject(v, 400, "Invalid request target");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c <= 0x20 || c >= 0x7f)
            return reject(v, 400, "Invalid character in request target");
    }
    return FS_HEAD_OK;
}

static fs_head_rc_t check_version(const char *s, size_t len, fs_head_verdict_t *v)
{
    if (len == 8 && (memcmp(s, "HTTP/1.1", 8) == 0 || memcmp(s, "HTTP/1.0", 8) == 0))
        return FS_HEAD_OK;
    if (len == 8 && memcmp(s, "HTTP/", 5) == 0 && s[5] >= '0' && s[5] <= '9' && s[6] == '.' && s[7] >= '0' &&
        s[7] <= '9')
        return reject(v, 505, "HTTP Version Not Supported");
    return reject(v, 400, "Invalid request line");
}

static fs_head_rc_t check_request_line(const char *line, size_t len, const fs_head_limits_t *lim,
                                       fs_head_verdict_t *v)
{
    const char *sp1 = memchr(line, ' ', len);
    if (!sp1)
        return reject(v, 400, "Invalid request line");
    fs_head_rc_t rc = check_method(line, (size_t)(sp1 - line), v);
    if (rc != FS_HEAD_OK)
        return rc;
    const char *sp2 = line + len;
    while (sp2 > sp1 && sp2[-1] != ' ')
        sp2--;
    sp2--; /* the last space */
    if (sp2 == sp1)
        return reject(v, 400, "Invalid request line");
    rc = check_target(sp1 + 1, (size_t)(sp2 - sp1 - 1), lim, v);
    if (rc != FS_HEAD_OK)
        return rc;
    return check_version(sp2 + 1, (size_t)(line + len - sp2 - 1), v);
}

static void trim(const char **s, size_t *len)
{
    while (*len && (**s == ' ' || **s == '\t'))
        (*s)++, (*len)--;
    while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}

static fs_head_rc_t check_body_header(const char *name, size_t nlen, const char *val, size_t vlen,
                                      body_info_t *b, fs_head_verdict_t *v)
{
    trim(&val, &vlen);
    if (nlen == 14 && strncasecmp(name, "content-length", 14) == 0) {
        if (vlen == 0 || vlen > 18)
            return reject(v, 400, "Invalid Content-Length");
        unsigned long long n = 0;
        for (size_t i = 0; i < vlen; i++) {
            if (val[i] < '0' || val[i] > '9')
                return reject(v, 400, "Invalid Content-Length");
            n = n * 10 + (unsigned)(val[i] - '0');
        }
        if (b->has_length && b->length != n)
            return reject(v, 400, "Conflicting Content-Length");
        b->has_length = true;
        b->length = n;
    } else if (nlen == 17 && strncasecmp(name, "transfer-encoding", 17) == 0) {
        if (vlen != 7 || strncasecmp(val, "chunked", 7) != 0)
            return reject(v, 501, "Unsupported Transfer-Encoding");
        b->chunked = true;
    }
    return FS_HEAD_OK;
}

static fs_head_rc_t check_header(const char *h, size_t len, body_info_t *b, fs_head_verdict_t *v)
{
    if (len > FS_HTTP_HEADER_LINE_MAX)
        return reject(v, 431, "Request header fields too large");
    if (h[0] == ' ' || h[0] == '\t')
        return reject(v, 400, "Obsolete line folding is not supported");
    const char *colon = memchr(h, ':', len);
    if (!colon || colon == h)
        return reject(v, 400, "Invalid header line");
    for (const char *p = h; p < colon; p++)
        if (!is_tchar((unsigned char)*p))
            return reject(v, 400, "Invalid header name");
    const char *val = colon + 1;
    size_t vlen = (size_t)(h + len - val);
    for (size_t i = 0; i < vlen; i++) {
        unsigned char c = (unsigned char)val[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return reject(v, 400, "Invalid character in header value");
    }
    return check_body_header(h, (size_t)(colon - h), val, vlen, b, v);
}

static fs_head_rc_t check_body(const body_info_t *b, const fs_head_limits_t *lim, fs_head_verdict_t *v)
{
    if (b->has_length && b->chunked)
        return reject(v, 400, "Both Content-Length and Transfer-Encoding");
    if (b->has_length && lim->max_body && b->length > lim->max_body)
        return reject(v, 413, "Request body too large");
    v->body_len = b->chunked ? -1 : (long long)b->length;
    return FS_HEAD_OK;
}

static fs_head_rc_t check_headers(const char *buf, size_t len, const char *p, const fs_head_limits_t *lim,
                                  fs_head_verdict_t *v)
{
    const char *end = buf + len;
    body_info_t body = {0};
    for (size_t n = 0;; n++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) {
            if ((size_t)(end - p) > FS_HTTP_HEADER_LINE_MAX ||
                len > FS_HTTP_HEAD_MAX + effective_max_uri(lim))
                return reject(v, 431, "Request header fields too large");
            return FS_HEAD_NEED_MORE;
        }
        size_t hl = (size_t)(nl - p);
        if (hl && p[hl - 1] == '\r')
            hl--;
        if (hl == 0) {
            v->head_len = (size_t)(nl + 1 - buf);
            return check_body(&body, lim, v);
        }
        if (n == FS_HTTP_MAX_HEADERS)
            return reject(v, 431, "Request header fields too large");
        fs_head_rc_t rc = check_header(p, hl, &body, v);
        if (rc != FS_HEAD_OK)
            return rc;
        p = nl + 1;
    }
}

fs_head_rc_t fs_http_head_check(const char *buf, size_t len, const fs_head_limits_t *lim,
                                fs_head_verdict_t *v)
{
    memset(v, 0, sizeof *v);
    size_t i = 0;
    while (i < len && (buf[i] == '\r' || buf[i] == '\n'))
        i++;
    v->skip = i;
    const char *line = buf + i;
    size_t avail = len - i;
    if (avail == 0)
        return FS_HEAD_NEED_MORE;
    const char *nl = memchr(line, '\n', avail);
    if (!nl) {
        fs_head_rc_t rc = check_partial(line, avail, v);
        if (rc == FS_HEAD_NEED_MORE && avail > effective_max_uri(lim) + MAX_METHOD + 16)
            return reject(v, 414, "URI too long");
        return rc;
    }
    size_t line_len = (size_t)(nl - line);
    if (line_len && line[line_len - 1] == '\r')
        line_len--;
    fs_head_rc_t rc = check_request_line(line, line_len, lim, v);
    if (rc != FS_HEAD_OK)
        return rc;
    return check_headers(buf, len, nl + 1, lim, v);
}
