/* The load generator engine: N keep-alive connections spread over T threads, each thread one
 * libevent loop. Closed loop sends the next request as soon as the previous response arrives;
 * open loop sends on a fixed schedule (rate/connections per connection) and measures latency
 * from the *intended* send time, so a stalled server is charged for the requests it delayed
 * (coordinated-omission correction, as in wrk2). Results in the warm-up window are discarded.
 */
#ifndef FS_BENCH_LOADGEN_H
#define FS_BENCH_LOADGEN_H

#include "bench/hist.h"
#include "bench/proto.h"
#include "bench/scenario.h"

#include <stdint.h>

typedef enum {
    FS_BENCH_ERR_CONNECT = 0, /* connect() failed or was refused */
    FS_BENCH_ERR_TIMEOUT,     /* no complete response within the timeout */
    FS_BENCH_ERR_STATUS,      /* complete response, but not a success (HTTP: not 2xx) */
    FS_BENCH_ERR_READ,        /* read/write failed (ECONNRESET, ...) */
    FS_BENCH_ERR_PARSE,       /* malformed response, or bytes nobody asked for */
    FS_BENCH_ERR_CLOSED,      /* peer closed with a request outstanding */
    FS_BENCH_ERR__COUNT
} fs_bench_err_t;

/* "connect", "timeout", "non2xx", "read", "parse", "closed". */
const char *fs_bench_err_name(fs_bench_err_t e);

typedef struct fs_bench_opts {
    const fs_scenario_t *scn; /** rendered (fs_scn_render) */
    const fs_bench_proto_t *proto;
    const struct sockaddr *addr; /** target address */
    unsigned addrlen;
    int connections, threads;    /** threads is capped at connections */
    double duration_s, warmup_s; /** measured window follows the warm-up */
    double rate;                 /** total requests/s; 0 = closed loop */
    double timeout_s;
    uint64_t requests; /** > 0: closed loop, stop after this many (no warm-up, no duration) */
    uint64_t seed;     /** request mix; same seed, same sequence per connection */
} fs_bench_opts_t;

typedef struct fs_bench_result {
    fs_hist_t *latency;        /** µs; from the intended send time in open loop */
    fs_hist_t *service;        /** µs; from the actual send time (equals latency in closed loop) */
    uint64_t responses;        /** complete responses in the window (any status) */
    uint64_t ok;               /** of which successes */
    uint64_t status_class[6];  /** [1..5]: HTTP 1xx..5xx; [0]: other */
    uint64_t bytes;            /** body bytes received */
    uint64_t warmup_responses; /** discarded */
    uint64_t errors[FS_BENCH_ERR__COUNT];
    uint64_t late;          /** open loop: requests sent after their intended time */
    double elapsed_s;       /** length of the measured window */
    double cpu_s;           /** user + system CPU the generator used (whole run, warm-up included) */
    uint64_t all_responses; /** every response, warm-up included (for CPU per request) */
} fs_bench_result_t;

/* Runs the load. Blocking: call it from a plain thread, never from an event loop. Returns 0 with
 * *out filled (free with fs_bench_result_free), or -1 with *err set (caller frees). Connection
 * failures are results (errors[CONNECT]), not a failure of the run. */
int fs_bench_run(const fs_bench_opts_t *opts, fs_bench_result_t *out, char **err);
void fs_bench_result_free(fs_bench_result_t *r);
uint64_t fs_bench_error_total(const fs_bench_result_t *r);

/* Monotonic clock in microseconds. */
int64_t fs_bench_now_us(void);

#endif
