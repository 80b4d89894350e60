/* E-mail over SMTP with libcurl. runtime/http_client.c accepts only http and https, and an
 * SMTP exchange is a handful of short round trips, so each message is one blocking easy
 * transfer on the worker's thread pool (bounded by the send timeout); the loop only sees the
 * completion. */
#include "actors/notify/channels.h"

#include "runtime/alloc.h"
#include "runtime/threadpool.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    /* inputs, copied on the loop thread */
    char *url, *username, *password, *from, *to, *message;
    int timeout_ms;
    size_t sent; /* bytes of `message` handed to libcurl */
    /* results, written on the pool thread */
    fsint_outcome_t out;
    char errbuf[CURL_ERROR_SIZE]; /* libcurl's message */
    char error[CURL_ERROR_SIZE + 64];
    fsint_sent_fn done;
    void *arg;
} smtp_job_t;

/* A header value as itself when it is printable ASCII, else as an RFC 2047 encoded word
 * (which also keeps a CR or LF in a title from injecting headers). Caller frees. */
static char *header_value(const char *v)
{
    bool plain = true;
    for (const unsigned char *p = (const unsigned char *)v; *p && plain; p++)
        plain = *p >= 0x20 && *p < 0x7f;
    if (plain)
        return fs_strdup(v);
    size_t n = strlen(v);
    char *enc = fs_malloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)enc, (const unsigned char *)v, (int)n);
    char *out = fs_sprintf("=?UTF-8?B?%s?=", enc);
    free(enc);
    return out;
}

/* The body with every line ending as CRLF, as SMTP requires (libcurl does the dot-stuffing). */
static char *crlf_body(const char *body)
{
    size_t n = strlen(body), o = 0;
    char *out = fs_malloc(2 * n + 3);
    for (size_t i = 0; i < n; i++) {
        if (body[i] == '\n' && (i == 0 || body[i - 1] != '\r'))
            out[o++] = '\r';
        out[o++] = body[i];
    }
    memcpy(out + o, "\r\n", 3);
    return out;
}

/* RFC 5322 message. Message-ID is derived from the idempotency key, so a retried send carries
 * the same id and receiving systems that deduplicate on it show the message once. */
static char *build_message(const fsint_send_t *s)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    char *subject = header_value(s->msg->title), *body = crlf_body(s->msg->body);
    char msgid[160];
    snprintf(msgid, sizeof msgid, "%s", s->idempotency_key);
    for (char *p = msgid; *p; p++)
        if (*p == ':')
            *p = '.';
    char *m =
        fs_sprintf("Date: %s\r\nFrom: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@flightshark>\r\n"
                   "X-Idempotency-Key: %s\r\nMIME-Version: 1.0\r\n"
                   "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n%s",
                   date, s->ch->email_from, s->msg->email, subject, msgid, s->idempotency_key, body);
    free(subject);
    free(body);
    return m;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *arg)
{
    smtp_job_t *j = arg;
    size_t left = strlen(j->message) - j->sent, n = size * nitems < left ? size * nitems : left;
    memcpy(buf, j->message + j->sent, n);
    j->sent += n;
    return n;
}

static void smtp_configure(CURL *e, smtp_job_t *j, struct curl_slist *rcpt)
{
    curl_easy_setopt(e, CURLOPT_URL, j->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)j->timeout_ms);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, j->errbuf);
    /* smtp:// upgrades with STARTTLS when the server offers it; smtps:// is TLS from the start */
    curl_easy_setopt(e, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
    if (j->username) {
        curl_easy_setopt(e, CURLOPT_USERNAME, j->username);
        curl_easy_setopt(e, CURLOPT_PASSWORD, j->password ? j->password : "");
    }
    curl_easy_setopt(e, CURLOPT_MAIL_FROM, j->from);
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(e, CURLOPT_READDATA, j);
}

/* On the pool thread. A 5xx reply (unknown mailbox, refused sender, bad credentials) is
 * permanent; a 4xx reply or no reply at all is worth another attempt. */
static void smtp_work(void *arg)
{
    smtp_job_t *j = arg;
    CURL *e = curl_easy_init();
    char rcpt_addr[512];
    snprintf(rcpt_addr, sizeof rcpt_addr, "<%s>", j->to);
    struct curl_slist *rcpt = curl_slist_append(NULL, rcpt_addr);
    smtp_configure(e, j, rcpt);
    CURLcode rc = curl_easy_perform(e);
    long code = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(e);
    if (rc == CURLE_OK) {
        j->out = FSINT_SENT;
        return;
    }
    j->out = code >= 500 ? FSINT_DEAD : FSINT_RETRY;
    snprintf(j->error, sizeof j->error, "SMTP %ld: %s", code,
             j->errbuf[0] ? j->errbuf : curl_easy_strerror(rc));
}

static void smtp_job_free(smtp_job_t *j)
{
    free(j->url), free(j->username), free(j->from), free(j->to), free(j->message);
    if (j->password) {
        OPENSSL_cleanse(j->password, strlen(j->password));
        free(j->password);
    }
    free(j);
}

static void smtp_after(void *arg)
{
    smtp_job_t *j = arg;
    j->done(j->out, j->out == FSINT_SENT ? NULL : j->error, j->arg);
    smtp_job_free(j);
}

static char *dup_or_null(const char *s)
{
    return s && *s ? fs_strdup(s) : NULL;
}

bool fsint_send_smtp(const fsint_send_t *s, fsint_sent_fn done, void *arg)
{
    smtp_job_t *j = FS_NEW(smtp_job_t);
    j->url = fs_strdup(s->ch->smtp_url);
    j->username = dup_or_null(s->ch->smtp_username);
    j->password = dup_or_null(s->ch->smtp_password);
    j->from = fs_sprintf("<%s>", s->ch->email_from);
    j->to = fs_strdup(s->msg->email);
    j->message = build_message(s);
    j->timeout_ms = s->timeout_ms;
    j->done = done;
    j->arg = arg;
    if (fs_threadpool_submit(s->pool, smtp_work, smtp_after, j) == 0)
        return true;
    smtp_job_free(j);
    return false;
}
