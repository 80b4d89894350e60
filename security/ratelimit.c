#include "security/ratelimit.h"

#include "runtime/alloc.h"
#include "runtime/config.h"
#include "runtime/log.h"
#include "storage/redis.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Both scripts take KEYS = {account, address}. */
static const char CHECK_SCRIPT[] = "local out = {}\n"
                                   "for i, k in ipairs(KEYS) do\n"
                                   "  out[2*i-1] = tonumber(redis.call('GET', k) or '0')\n"
                                   "  out[2*i] = redis.call('TTL', k)\n"
                                   "end\n"
                                   "return out\n";

/* A key that somehow lost its TTL (TTL -1) gets one again rather than locking forever. */
static const char FAIL_SCRIPT[] =
    "local out = {}\n"
    "for i, k in ipairs(KEYS) do\n"
    "  local n = redis.call('INCR', k)\n"
    "  if n == 1 or redis.call('TTL', k) < 0 then redis.call('EXPIRE', k, ARGV[1]) end\n"
    "  out[2*i-1] = n\n"
    "  out[2*i] = redis.call('TTL', k)\n"
    "end\n"
    "return out\n";

#define WARN_EVERY_S 10

typedef struct {
    fs_ratelimit_cb cb;
    void *arg;
} pending_t;

char *fs_ratelimit_account_key(const char *email)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(email, strlen(email), md, &n, EVP_sha256(), NULL);
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return fs_sprintf("fs:login:fail:account:%s", hex);
}

char *fs_ratelimit_address_key(const char *ip)
{
    return fs_sprintf("fs:login:fail:address:%s", ip && *ip ? ip : "unknown");
}

static void warn_unavailable(const char *why)
{
    static time_t last;
    time_t now = time(NULL);
    if (now - last < WARN_EVERY_S)
        return;
    last = now;
    fs_warn("login rate limiter: Redis unavailable (%s); failing open", why ? why : "bad reply");
}

static long long element(const redisReply *r, size_t i)
{
    return r->element[i]->type == REDIS_REPLY_INTEGER ? r->element[i]->integer : 0;
}

/* `r` holds {count, ttl} per scope; a scope is over its limit when count >= limit. */
static void judge(const redisReply *r, fs_ratelimit_verdict_t *v)
{
    static const char *const scopes[] = {"account", "address"};
    const long long limits[] = {fs_cfg->login_max_failures_per_account, fs_cfg->login_max_failures_per_ip};
    for (size_t i = 0; i < 2; i++) {
        long long count = element(r, 2 * i), ttl = element(r, 2 * i + 1);
        if (count < limits[i])
            continue;
        int wait = ttl > 0 ? (int)ttl : fs_cfg->login_failure_window_s;
        if (!v->limited || wait > v->retry_after_s) {
            v->retry_after_s = wait;
            v->scope = scopes[i];
        }
        v->limited = true;
    }
}

static void on_reply(redisReply *r, const char *error, void *arg)
{
    pending_t *p = arg;
    fs_ratelimit_verdict_t v = {0};
    bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements == 4;
    if (ok)
        judge(r, &v);
    else {
        v.unavailable = true;
        warn_unavailable(error ? error : r && r->type == REDIS_REPLY_ERROR ? r->str : NULL);
    }
    if (p->cb)
        p->cb(&v, p->arg);
    free(p);
}

static void run_script(fs_redis_t *r, const char *script, const char *email, const char *ip,
                       fs_ratelimit_cb cb, void *arg)
{
    pending_t *p = FS_NEW(pending_t);
    p->cb = cb;
    p->arg = arg;
    char *acct = fs_ratelimit_account_key(email), *addr = fs_ratelimit_address_key(ip);
    char window[16];
    snprintf(window, sizeof window, "%d", fs_cfg->login_failure_window_s);
    const char *argv[] = {"EVAL", script, "2", acct, addr, window};
    fs_redis_commandargv(r, on_reply, p, 6, argv, NULL);
    free(acct);
    free(addr);
}

void fs_ratelimit_login_check(fs_redis_t *r, const char *email, const char *ip, fs_ratelimit_cb cb, void *arg)
{
    run_script(r, CHECK_SCRIPT, email, ip, cb, arg);
}

void fs_ratelimit_login_failed(fs_redis_t *r, const char *email, const char *ip, fs_ratelimit_cb cb,
                               void *arg)
{
    run_script(r, FAIL_SCRIPT, email, ip, cb, arg);
}

void fs_ratelimit_login_succeeded(fs_redis_t *r, const char *email)
{
    char *acct = fs_ratelimit_account_key(email);
    const char *argv[] = {"DEL", acct};
    fs_redis_commandargv(r, NULL, NULL, 2, argv, NULL);
    free(acct);
}
