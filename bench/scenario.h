/* Scenarios: what to send, how hard and for how long, read from a small text file.
 *
 * Format (one `key = value` per line, `#` starts a comment, blank lines ignored):
 *
 *     name        = airports-search        # defaults to the file name without .scn
 *     description = autocomplete as users type
 *     protocol    = http                   # or rpc (bench/proto_rpc.c): then, in each [request],
 *                                          # path = the method, body = its message as JSON
 *     connections = 32
 *     threads     = 2                      # generator threads (0 or absent: decided by the CLI)
 *     duration    = 10s                    # s, ms, m; plain numbers are seconds
 *     warmup      = 2s                     # results of the first 2 s are discarded
 *     rate        = 0                      # requests/s in total; 0 = closed loop (max throughput)
 *     timeout     = 5s                     # per request
 *     reference_size = 900                 # body bytes nginx serves if no live response is measured
 *     queries     = autocomplete-queries.txt  # default query list for {q} (path relative to the file)
 *
 *     [request]                            # one section per request template
 *     weight  = 3                          # share of the mix (default 1)
 *     method  = GET                        # default GET
 *     path    = /airports/search?q={q}&limit=10
 *     header  = Accept: application/json   # repeatable
 *     body    = {"q": "{q}"}               # optional; {q} is substituted raw in bodies
 *     queries = codes.txt                  # overrides the default list for this template
 *
 * `{q}` in a path is replaced by each line of the query list, percent-encoded; every template
 * is rendered once per query before the run, so the generator only copies bytes. A query list
 * has one query per line; blank lines and lines starting with `#` are skipped.
 * Errors name the file and line: "scenarios/x.scn:12: unknown key 'foo'".
 */
#ifndef FS_BENCH_SCENARIO_H
#define FS_BENCH_SCENARIO_H

#include "bench/proto.h"

#include <stddef.h>

typedef struct fs_scn_req {
    unsigned weight;
    char *method, *path, *body; /** body may be NULL */
    char **headers;
    int nheaders;
    char *queries_file;       /** resolved path, NULL: the scenario's default list */
    int line;                 /** where the [request] section starts, for messages */
    fs_bench_buf_t *rendered; /** one per query (one if the template has no {q}) */
    size_t nrendered;
} fs_scn_req_t;

typedef struct fs_scenario {
    char *name, *description, *protocol;
    char *file; /** where it was read from ("<inline>" otherwise) */
    int connections, threads;
    double duration_s, warmup_s, rate, timeout_s;
    size_t reference_size;
    char *queries_file;
    fs_scn_req_t *reqs;
    int nreqs;
    unsigned total_weight;
} fs_scenario_t;

/* Reads and validates a scenario file. Returns 0, or -1 with *err = "FILE:LINE: why" (caller
 * frees). On error *out holds nothing to free. */
int fs_scn_load(const char *path, fs_scenario_t *out, char **err);
/* Same from text; `file` names it in messages, relative query lists resolve against `base_dir`. */
int fs_scn_parse(const char *text, const char *file, const char *base_dir, fs_scenario_t *out, char **err);
/* A scenario with one GET of `target`, closed loop, other fields zero (CLI ad-hoc runs). */
void fs_scn_single(fs_scenario_t *out, const char *target);
/* Reads the query lists and renders every request with `proto`. Returns 0 or -1 with *err. */
int fs_scn_render(fs_scenario_t *s, const fs_bench_proto_t *proto, const char *authority, char **err);
void fs_scn_free(fs_scenario_t *s);
/* The target (path and query) of the first request with the first query substituted, as the
 * run sends it; used to fetch one real response and size nginx's static file. Caller frees;
 * NULL with *err when the query list cannot be read. */
char *fs_scn_first_target(const fs_scenario_t *s, char **err);

/* "10s", "250ms", "2m", "1.5" (seconds) → seconds. Returns 0, or -1 when malformed. */
int fs_scn_parse_duration(const char *text, double *out);
/* Reads a query list (see above). Returns the count, or -1 with *err. *out is NULL-free'd by
 * the caller: free each string and the array. */
long fs_scn_read_queries(const char *path, char ***out, char **err);
/* Percent-encodes everything outside RFC 3986 unreserved characters; caller frees. */
char *fs_scn_urlencode(const char *s);

#endif
