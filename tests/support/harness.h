/* Test support: real HTTP over loopback (libcurl), the real server binary as a child process,
 * and the throwaway PostgreSQL/Redis that `make test` starts (DATABASE_URL, REDIS_URL). */
#ifndef FS_TEST_HARNESS_H
#define FS_TEST_HARNESS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct fs_test_resp {
    long status;       /* 0 when the request failed at transport level */
    char *body;
    size_t len;
    char *headers;     /* raw response header block */
    char error[256];   /* libcurl's message when status is 0 */
} fs_test_resp_t;

/* Sends one request. `headers` is a NULL-terminated list of "Name: value" (may be NULL).
 * `body` may be NULL. Timeout 10 s. Returns 0 when a response arrived. */
int fs_test_http(const char *method, const char *url, const char *body, const char *const *headers,
                 fs_test_resp_t *out);
void fs_test_resp_free(fs_test_resp_t *r);
/* The body parsed as JSON (NULL if it is not JSON); caller decrefs. */
json_t *fs_test_resp_json(const fs_test_resp_t *r);
/* A response header's value (case-insensitive name), copied into `buf`; NULL if absent. */
const char *fs_test_resp_header(const fs_test_resp_t *r, const char *name, char *buf, size_t size);

/* Sends raw bytes on a new TCP connection and returns what came back (until close or
 * `timeout_ms`), NUL-terminated; caller frees. */
char *fs_test_raw(int port, const char *data, size_t len, int timeout_ms);

int fs_test_free_port(void);
/* getenv, or fails the current test with a clear message when unset. */
const char *fs_test_env(const char *name);

typedef struct fs_test_server {
    pid_t pid;
    int port, rpc_port;
    char url[64];      /* http://127.0.0.1:PORT */
    char log_path[256];
} fs_test_server_t;

/* Starts `$FS_BINARY serve` with `workers` workers on free ports and waits until GET /health/live
 * answers. `extra_env` is a NULL-terminated list of NAME=value (may be NULL). The server's log
 * goes to a temporary file (kept in log_path for failure messages). Returns 0 on success. */
int fs_test_server_start(fs_test_server_t *s, int workers, const char *const *extra_env);
/* SIGTERM and wait (SIGKILL after 15 s). Returns the exit status as waitpid gives it. */
int fs_test_server_stop(fs_test_server_t *s);
/* Pids of the server's worker processes (children of the master). Returns the count. */
int fs_test_server_workers(const fs_test_server_t *s, pid_t *out, int max);

/* Runs a shell command; returns its exit status. */
int fs_test_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Milliseconds since an arbitrary origin (monotonic). */
double fs_test_now_ms(void);

#endif
