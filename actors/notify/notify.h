/* The `notify` actor: delivers the rows of the `notifications` outbox (written by the alert
 * actors) over the channels enabled by configuration — e-mail (SendGrid v3 or SMTP), SMS
 * (Twilio) and a signed webhook — with retries, exponential backoff, a dead-letter state and
 * idempotency keys. docs/NOTIFICATIONS.md describes the outbox and its guarantees.
 *
 * One actor per host, in worker 0 (FS_NOTIFY_WORKER). Rows are claimed with
 * `FOR UPDATE SKIP LOCKED` and a lease (next_attempt_at pushed past the longest send), so
 * several hosts, or a second worker, can run the actor on one database without sending a row
 * twice; a process that dies mid-send leaves its rows pending and they are retried when the
 * lease expires. Nothing blocks the loop: the database through the worker's pool, HTTP through
 * the worker's libcurl multi client, SMTP (libcurl easy, blocking) on the worker's thread pool.
 *
 * Worker wiring (worker 0 only; after start_storage and start_flights, which create wk->pg,
 * wk->pool and wk->http_client):
 *   start:                 fs_notify_opts_t o; fs_notify_opts_from_config(&o, fs_cfg);
 *                          o.pg = wk->pg; o.http = wk->http_client; o.pool = wk->pool;
 *                          notify = fs_notify_start(wk->actors, &o);
 *   SIGTERM (drain start): fs_notify_drain(notify);
 *   drain tick:            leave the loop only when fs_notify_idle(notify) too (or the drain
 *                          deadline passed);
 *   after the loop:        fs_notify_free(notify) before fs_actor_system_free, and before
 *                          fs_http_client_free / fs_threadpool_free / fs_pg_pool_free.
 * A send still in flight at fs_notify_free is never recorded: its row stays pending and is
 * sent again (same idempotency key) after the lease, by the next start.
 */
#ifndef FS_NOTIFY_H
#define FS_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

typedef struct fs_actor fs_actor_t;
typedef struct fs_actor_system fs_actor_system_t;
typedef struct fs_pg_pool fs_pg_pool_t;
typedef struct fs_http_client fs_http_client_t;
typedef struct fs_threadpool fs_threadpool_t;
typedef struct fs_config fs_config_t;
typedef struct fs_notify fs_notify_t;

#define FS_NOTIFY_ACTOR  "notify"
#define FS_NOTIFY_WORKER 0

/* Local to the worker (timer ticks, no body): never registered, never cross workers. */
enum {
    FS_MSG_NOTIFY_TICK = 600, /* poll the outbox */
};

/* Channel settings. NULL or "" = not set. A channel is enabled when its required settings
 * are present: e-mail needs EMAIL_FROM and SENDGRID_API_KEY (preferred) or SMTP_URL; SMS
 * needs the three TWILIO_* credentials; the webhook needs WEBHOOK_URL and WEBHOOK_SECRET. */
typedef struct fs_notify_channels {
    const char *email_from;         /* EMAIL_FROM */
    const char *sendgrid_api_key;   /* SENDGRID_API_KEY (secret) */
    const char *sendgrid_base_url;  /* SENDGRID_BASE_URL, default https://api.sendgrid.com */
    const char *smtp_url;           /* SMTP_URL: smtp://host:port or smtps://host:port */
    const char *smtp_username;      /* SMTP_USERNAME */
    const char *smtp_password;      /* SMTP_PASSWORD (secret) */
    const char *twilio_account_sid; /* TWILIO_ACCOUNT_SID */
    const char *twilio_auth_token;  /* TWILIO_AUTH_TOKEN (secret) */
    const char *twilio_from_number; /* TWILIO_FROM_NUMBER */
    const char *twilio_base_url;    /* TWILIO_BASE_URL, default https://api.twilio.com */
    const char *webhook_url;        /* WEBHOOK_URL */
    const char *webhook_secret;     /* WEBHOOK_SECRET (secret) */
} fs_notify_channels_t;

/* Zero numeric fields take the default named. Strings are copied by fs_notify_start. */
typedef struct fs_notify_opts {
    fs_pg_pool_t *pg;       /* required */
    fs_http_client_t *http; /* required for SendGrid, Twilio and the webhook */
    fs_threadpool_t *pool;  /* required for SMTP */
    int poll_ms;            /* NOTIFY_POLL_MS (500) */
    int batch;              /* NOTIFY_BATCH (32): rows claimed at once, and in flight */
    int max_attempts;       /* NOTIFY_MAX_ATTEMPTS (8): attempts before dead */
    int backoff_base_ms;    /* NOTIFY_BACKOFF_BASE_MS (30000): first retry delay */
    int backoff_cap_ms;     /* NOTIFY_BACKOFF_CAP_MS (3600000): longest delay */
    int send_timeout_ms;    /* NOTIFY_SEND_TIMEOUT_MS (15000): one provider call */
    int lease_ms;           /* NOTIFY_LEASE_MS (4 x send timeout + 60000) */
    fs_notify_channels_t ch;
} fs_notify_opts_t;

/* Fills `o` (zeroing it first) from the settings named above, through fs_config_extra (the
 * environment, .env, config/flightshark.conf). `cfg` may be NULL (environment only). The
 * strings point into `cfg` or the environment: start the actor before either changes. */
void fs_notify_opts_from_config(fs_notify_opts_t *o, const fs_config_t *cfg);

/* Spawns FS_NOTIFY_ACTOR in `sys`; it polls every poll_ms. Returns NULL when the name is
 * taken or opts->pg is NULL. Logs which channels are enabled (never a secret). */
fs_notify_t *fs_notify_start(fs_actor_system_t *sys, const fs_notify_opts_t *opts);

fs_actor_t *fs_notify_actor(const fs_notify_t *n);

/* Polls the outbox now (e.g. after writing a notification in this worker). */
void fs_notify_wake(fs_notify_t *n);

/* Graceful shutdown: claims no more rows; sends in flight complete and are recorded. */
void fs_notify_drain(fs_notify_t *n);

/* Nothing claimed, sending or being recorded. */
bool fs_notify_idle(const fs_notify_t *n);

/* Stops the actor. Sends still in flight are abandoned unrecorded (their rows stay pending
 * and are retried after the lease). Safe before fs_http_client_free / fs_threadpool_free /
 * fs_pg_pool_free, whose late completions it tolerates. NULL is fine. Not from a handler. */
void fs_notify_free(fs_notify_t *n);

typedef struct fs_notify_stats {
    uint64_t claimed;         /* rows claimed */
    uint64_t sent;            /* channel deliveries that succeeded */
    uint64_t retried;         /* channel attempts that failed and will be retried */
    uint64_t dead;            /* channels given up (4xx, or max attempts) */
    uint64_t none;            /* notifications with no channel to deliver on */
    uint64_t db_errors;       /* claim or record queries that failed */
    uint32_t inflight;        /* notifications being sent or recorded */
    bool email, sms, webhook; /* enabled channels */
} fs_notify_stats_t;
void fs_notify_get_stats(const fs_notify_t *n, fs_notify_stats_t *out);

#endif
