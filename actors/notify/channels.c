/* The HTTP channels of the notify actor: SendGrid v3 mail/send, Twilio Messages and the signed
 * webhook, all through the worker's libcurl multi client (runtime/http_client.h). */
#include "actors/notify/channels.h"

#include "runtime/alloc.h"
#include "runtime/http_client.h"

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_SENDGRID_URL "https://api.sendgrid.com"
#define DEFAULT_TWILIO_URL   "https://api.twilio.com"
#define SMS_MAX_BYTES        1500 /* Twilio refuses bodies over 1600 characters */
#define ERROR_BODY_CHARS     200

const char *const fsint_channel_names[FSINT_CH_COUNT] = {"email", "sms", "webhook"};

fsint_outcome_t fsint_http_outcome(int status)
{
    if (status >= 200 && status < 300)
        return FSINT_SENT;
    if (status == 0 || status == 408 || status == 425 || status == 429 || status >= 500)
        return FSINT_RETRY;
    return FSINT_DEAD;
}

char *fsint_webhook_signature(const char *secret, const char *timestamp, const char *body, size_t len)
{
    char *signed_part = fs_sprintf("%s.%.*s", timestamp, (int)len, body);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)signed_part, strlen(signed_part),
         mac, &mac_len);
    free(signed_part);
    char *out = fs_malloc(7 + 2 * mac_len + 1);
    memcpy(out, "sha256=", 7);
    for (unsigned int i = 0; i < mac_len; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", mac[i]);
    return out;
}

/* ---- one HTTP call ------------------------------------------------------------------------ */

typedef struct {
    fsint_sent_fn done;
    void *arg;
} call_t;

static void call_on_response(const fs_http_response_t *res, void *arg)
{
    call_t *c = arg;
    fsint_outcome_t out = res->error ? FSINT_RETRY : fsint_http_outcome(res->status);
    char *why = NULL;
    if (res->error)
        why = fs_sprintf("%s", res->error);
    else if (out != FSINT_SENT)
        why = fs_sprintf("HTTP %d: %.*s", res->status, ERROR_BODY_CHARS, res->body);
    c->done(out, why, c->arg);
    free(why);
    free(c);
}

static void post(const fsint_send_t *s, const char *url, const char *const *headers, const char *body,
                 fsint_sent_fn done, void *arg)
{
    call_t *c = FS_NEW(call_t);
    c->done = done;
    c->arg = arg;
    fs_http_request_t req = {
        .method = "POST",
        .url = url,
        .headers = headers,
        .body = body,
        .body_len = strlen(body),
        .timeout_ms = s->timeout_ms,
        .max_response_bytes = 1 << 20,
    };
    fs_http_client_send(s->http, &req, call_on_response, c);
}

static const char *base_url(const char *configured, const char *dflt)
{
    return configured && *configured ? configured : dflt;
}

/* A base URL with any trailing slashes removed, then `path`. Caller frees. */
static char *join_url(const char *base, const char *path)
{
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    return fs_sprintf("%.*s%s", (int)n, base, path);
}

/* ---- SendGrid ----------------------------------------------------------------------------- */

/* The v3 mail/send body (docs.sendgrid.com/api-reference/mail-send/mail-send): one recipient,
 * a plain-text part, and our ids in custom_args so the event webhook can be correlated. */
static char *sendgrid_body(const fsint_send_t *s)
{
    const fsint_message_t *m = s->msg;
    json_t *j = json_pack("{s:[{s:[{s:s}]}], s:{s:s}, s:s, s:[{s:s, s:s}], s:{s:s, s:s}}", "personalizations",
                          "to", "email", m->email, "from", "email", s->ch->email_from, "subject", m->title,
                          "content", "type", "text/plain", "value", m->body, "custom_args", "notification_id",
                          m->id, "idempotency_key", s->idempotency_key);
    char *out = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return out;
}

void fsint_send_sendgrid(const fsint_send_t *s, fsint_sent_fn done, void *arg)
{
    char *url = join_url(base_url(s->ch->sendgrid_base_url, DEFAULT_SENDGRID_URL), "/v3/mail/send");
    char *auth = fs_sprintf("Authorization: Bearer %s", s->ch->sendgrid_api_key);
    char *idem = fs_sprintf("Idempotency-Key: %s", s->idempotency_key);
    const char *headers[] = {auth, idem, "Content-Type: application/json", NULL};
    char *body = sendgrid_body(s);
    post(s, url, headers, body, done, arg);
    free(body);
    free(idem);
    free(auth);
    free(url);
}

/* ---- Twilio ------------------------------------------------------------------------------- */

static void form_add(char **form, const char *name, const char *value)
{
    char *enc = curl_easy_escape(NULL, value, 0);
    char *next = fs_sprintf("%s%s%s=%s", *form ? *form : "", *form ? "&" : "", name, enc);
    curl_free(enc);
    free(*form);
    *form = next;
}

/* Title and body on two lines, cut at a UTF-8 boundary to fit one Twilio message. */
static char *sms_text(const fsint_message_t *m)
{
    char *text = fs_sprintf("%s\n%s", m->title, m->body);
    size_t n = strlen(text);
    if (n > SMS_MAX_BYTES) {
        n = SMS_MAX_BYTES;
        while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
            n--;
        text[n] = '\0';
    }
    return text;
}

static char *basic_auth(const char *user, const char *password)
{
    char *plain = fs_sprintf("%s:%s", user, password);
    size_t n = strlen(plain);
    char *enc = fs_malloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)enc, (const unsigned char *)plain, (int)n);
    OPENSSL_cleanse(plain, n);
    free(plain);
    char *header = fs_sprintf("Authorization: Basic %s", enc);
    free(enc);
    return header;
}

/* POST /2010-04-01/Accounts/{sid}/Messages.json, form-encoded To, From, Body, basic auth.
 * Twilio has no idempotency key of its own; ours goes in Idempotency-Key (honoured by
 * proxies and stand-ins), so only a retry after a lost 2xx can repeat an SMS. */
void fsint_send_twilio(const fsint_send_t *s, fsint_sent_fn done, void *arg)
{
    char *sid = curl_easy_escape(NULL, s->ch->twilio_account_sid, 0);
    char *path = fs_sprintf("/2010-04-01/Accounts/%s/Messages.json", sid);
    curl_free(sid);
    char *url = join_url(base_url(s->ch->twilio_base_url, DEFAULT_TWILIO_URL), path);
    char *auth = basic_auth(s->ch->twilio_account_sid, s->ch->twilio_auth_token);
    char *idem = fs_sprintf("Idempotency-Key: %s", s->idempotency_key);
    const char *headers[] = {auth, idem, "Content-Type: application/x-www-form-urlencoded", NULL};
    char *text = sms_text(s->msg), *form = NULL;
    form_add(&form, "To", s->msg->phone);
    form_add(&form, "From", s->ch->twilio_from_number);
    form_add(&form, "Body", text);
    post(s, url, headers, form, done, arg);
    free(form);
    free(text);
    free(idem);
    free(auth);
    free(url);
    free(path);
}

/* ---- webhook ------------------------------------------------------------------------------ */

static char *webhook_body(const fsint_send_t *s)
{
    const fsint_message_t *m = s->msg;
    json_t *payload = json_loads(m->payload, 0, NULL);
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s}", "id", m->id, "idempotency_key",
                  s->idempotency_key, "user_id", m->user_id, "kind", m->kind, "title", m->title, "body",
                  m->body, "payload", payload ? payload : json_object(), "created_at", m->created_at);
    char *out = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return out;
}

/* The receiver checks X-Flightshark-Signature against the timestamp and the raw body, and
 * may refuse old timestamps (replay); Idempotency-Key is the same on every retry. */
void fsint_send_webhook(const fsint_send_t *s, fsint_sent_fn done, void *arg)
{
    char *body = webhook_body(s);
    char ts[24];
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL));
    char *sig = fsint_webhook_signature(s->ch->webhook_secret, ts, body, strlen(body));
    char *sig_h = fs_sprintf("X-Flightshark-Signature: %s", sig);
    char *ts_h = fs_sprintf("X-Flightshark-Timestamp: %s", ts);
    char *idem = fs_sprintf("Idempotency-Key: %s", s->idempotency_key);
    const char *headers[] = {sig_h, ts_h, idem, "Content-Type: application/json", NULL};
    post(s, s->ch->webhook_url, headers, body, done, arg);
    free(idem);
    free(ts_h);
    free(sig_h);
    free(sig);
    free(body);
}
