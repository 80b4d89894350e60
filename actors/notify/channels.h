/* Internal to actors/notify: one provider call per function, each answering once on the loop
 * with an outcome. The actor (notify.c) decides what an outcome means for the row. */
#ifndef FS_NOTIFY_CHANNELS_H
#define FS_NOTIFY_CHANNELS_H

#include "actors/notify/notify.h"

#include <stdbool.h>
#include <stddef.h>

typedef enum fsint_outcome {
    FSINT_SKIP = 0, /* not attempted this round */
    FSINT_SENT,     /* the provider accepted it (2xx, SMTP 250) */
    FSINT_RETRY,    /* transient: 429, 5xx, timeout, connection failure, SMTP 4xx */
    FSINT_DEAD,     /* permanent: any other 4xx, SMTP 5xx, nothing to send to */
} fsint_outcome_t;

enum { FSINT_CH_EMAIL, FSINT_CH_SMS, FSINT_CH_WEBHOOK, FSINT_CH_COUNT };
/* "email", "sms", "webhook": the values of notification_deliveries.channel. */
extern const char *const fsint_channel_names[FSINT_CH_COUNT];

/* What the channels need of one notification; every string is NUL-terminated, never NULL
 * except email and phone (NULL = the user has none). */
typedef struct fsint_message {
    const char *id, *user_id, *kind, *title, *body, *payload, *created_at;
    const char *email, *phone;
} fsint_message_t;

/* `error` is NULL when sent; otherwise a short reason ("HTTP 503: ...", "timeout"). */
typedef void (*fsint_sent_fn)(fsint_outcome_t out, const char *error, void *arg);

typedef struct fsint_send {
    const fs_notify_channels_t *ch;
    fs_http_client_t *http;
    fs_threadpool_t *pool;
    int timeout_ms;
    const fsint_message_t *msg;
    const char *idempotency_key; /* stable across retries: "<notification id>:<channel>" */
} fsint_send_t;

/* Each starts one call and answers `done` exactly once, never before it returns. */
void fsint_send_sendgrid(const fsint_send_t *s, fsint_sent_fn done, void *arg);
void fsint_send_twilio(const fsint_send_t *s, fsint_sent_fn done, void *arg);
void fsint_send_webhook(const fsint_send_t *s, fsint_sent_fn done, void *arg);
/* Runs on s->pool (libcurl's SMTP is a blocking easy transfer here). Returns false, without
 * ever calling `done`, when the pool's queue is full (the caller counts that as a retry). */
bool fsint_send_smtp(const fsint_send_t *s, fsint_sent_fn done, void *arg);

/* What an HTTP status means: 2xx sent; 408, 425, 429, 5xx and 0 (no answer) retry; else dead. */
fsint_outcome_t fsint_http_outcome(int status);

/* "sha256=" + lower-case hex HMAC-SHA256(secret, timestamp "." body). Caller frees. */
char *fsint_webhook_signature(const char *secret, const char *timestamp, const char *body, size_t len);

#endif
