/* The internal RPC server of a worker (docs/RPC.md, schemas/rpc.proto).
 *
 * One per worker, on the slot's RPC listening socket handed over by the master (SO_REUSEPORT,
 * like the HTTP one), driven by the worker's loop with bufferevents. A frame is a 4-byte
 * big-endian length and a packed fs.rpc.RpcRequest; the length is checked against the limit
 * before a byte of the envelope is read or unpacked, and the envelope is unpacked into an arena
 * that belongs to the call.
 *
 * Bad input never takes the worker down:
 *   - a length over the limit: an error response (id 0, RESOURCE_EXHAUSTED), then the
 *     connection is closed (a stream cannot be resynchronised after a corrupt length);
 *   - an envelope that does not unpack, or one without a method: INVALID_ARGUMENT (id 0 when
 *     unknown), the connection stays usable (the length delimited the bad bytes);
 *   - an unknown method: UNIMPLEMENTED; a missing or wrong token (RPC_TOKEN set): UNAUTHENTICATED;
 *   - a frame that stops half way: the connection is closed once no byte has come for the read
 *     timeout (READ_TIMEOUT_MS), or at once when the client closes.
 * A slow reader cannot grow the worker's memory: past FS_RPC_MAX_OUTBUF of unsent responses, or
 * FS_RPC_MAX_INFLIGHT unanswered requests, the connection's requests are no longer read until
 * it catches up; output that does not drain within the write timeout closes the connection.
 *
 * Handler contract (as for HTTP): a handler receives a call and must answer it exactly once,
 * before it returns or later from the same loop (fs_rpc_reply / fs_rpc_fail). The call stays
 * valid until that answer, even when the client has gone (the answer is then discarded) or the
 * call's deadline passed (the server has already answered DEADLINE_EXCEEDED; the late answer is
 * discarded and counted). Everything here runs on the worker's loop.
 */
#ifndef FS_RPC_H
#define FS_RPC_H

#include <protobuf-c/protobuf-c.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
typedef struct fs_metrics fs_metrics_t;

#define FS_RPC_MAX_FRAME           (4u << 20) /**< bytes of one envelope, length prefix excluded */
#define FS_RPC_MAX_OUTBUF          (8u << 20) /**< unsent bytes per connection before reading pauses */
#define FS_RPC_MAX_INFLIGHT        1024       /**< unanswered requests per connection before reading pauses */
#define FS_RPC_DEFAULT_DEADLINE_MS 30000      /**< when a request names none */
#define FS_RPC_MAX_DEADLINE_MS     300000     /**< longer deadlines are cut to this */
#define FS_RPC_MAX_METHODS         32

/* Status codes: the values of fs.rpc.Status (gRPC's numbering). */
typedef enum fs_rpc_status {
    FS_RPC_OK = 0,
    FS_RPC_INVALID_ARGUMENT = 3,
    FS_RPC_DEADLINE_EXCEEDED = 4,
    FS_RPC_NOT_FOUND = 5,
    FS_RPC_RESOURCE_EXHAUSTED = 8,
    FS_RPC_UNIMPLEMENTED = 12,
    FS_RPC_INTERNAL = 13,
    FS_RPC_UNAVAILABLE = 14,
    FS_RPC_UNAUTHENTICATED = 16,
} fs_rpc_status_t;

/* "OK", "NOT_FOUND", ...; "UNKNOWN" for a value outside the enum. Never NULL. */
const char *fs_rpc_status_name(int status);
/* True for the values above. */
int fs_rpc_status_valid(int status);
/* The RPC status for an actor runtime error (fs_status_t): FS_EFULL -> RESOURCE_EXHAUSTED,
 * FS_ETIMEOUT -> DEADLINE_EXCEEDED, FS_ENOACTOR / FS_EUNAVAIL / FS_ESTOPPED / FS_ECANCELED ->
 * UNAVAILABLE, anything else -> INTERNAL (FS_OK -> OK). */
fs_rpc_status_t fs_rpc_status_from_fs(int fs_status);

/* ---- methods ------------------------------------------------------------------------------ */

typedef struct fs_rpc_call fs_rpc_call_t;
typedef void (*fs_rpc_handler_fn)(fs_rpc_call_t *call);

/* Adds a method to the process-wide table (at start, before serving). Returns 0, also when the
 * same handler is registered again under the same name; -1 when the name is taken by another
 * handler, too long (> 63 bytes) or the table is full. */
int fs_rpc_register(const char *method, fs_rpc_handler_fn fn);
/* Empties the table (tests). */
void fs_rpc_unregister_all(void);

/* ---- calls -------------------------------------------------------------------------------- */

const char *fs_rpc_call_method(const fs_rpc_call_t *call);
uint64_t fs_rpc_call_id(const fs_rpc_call_t *call);
/* The packed request message; valid until the call is answered. */
const uint8_t *fs_rpc_call_payload(const fs_rpc_call_t *call, size_t *len);
/* Milliseconds left before the call's deadline (0 when it has passed): the budget to give an
 * ask made on the call's behalf. */
int fs_rpc_call_remaining_ms(const fs_rpc_call_t *call);

/* Runs `fn(call)` on the loop after `delay_ms` (a handler that waits before answering, e.g.
 * Ping's delay). The call is still the handler's: fn must answer it (or defer again). When the
 * server is freed first, the call ends unanswered and fn never runs. */
void fs_rpc_call_defer(fs_rpc_call_t *call, int delay_ms, fs_rpc_handler_fn fn);

/* Unpacks the payload as a `desc` message with the default allocator, so it can be handed to
 * an actor (which frees it) or freed with fs_pb_free. On failure answers INVALID_ARGUMENT
 * itself and returns NULL: `if (!(req = fs_rpc_unpack_or_fail(call, &desc))) return;`. */
void *fs_rpc_unpack_or_fail(fs_rpc_call_t *call, const ProtobufCMessageDescriptor *desc);

/* Answers OK with `reply` packed as the payload (NULL: an empty payload). `reply` is only read:
 * the caller keeps and frees it. Ends the call. */
void fs_rpc_reply(fs_rpc_call_t *call, const ProtobufCMessage *reply);
/* Answers `status` (not OK) with a message for people. Ends the call. */
void fs_rpc_fail(fs_rpc_call_t *call, fs_rpc_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- server ------------------------------------------------------------------------------- */

typedef struct fs_rpc_server fs_rpc_server_t;

typedef struct fs_rpc_opts {
    size_t max_frame_bytes;  /**< 0 = FS_RPC_MAX_FRAME */
    size_t max_outbuf_bytes; /**< 0 = FS_RPC_MAX_OUTBUF */
    int max_inflight;        /**< per connection; 0 = FS_RPC_MAX_INFLIGHT */
    int read_timeout_ms;     /**< a started frame with no new byte for this long closes; 0 = 30 s */
    int idle_timeout_ms;     /**< a connection with nothing in flight is closed after this; 0 = 60 s */
    int write_timeout_ms;    /**< pending output that does not move for this long closes; 0 = 30 s */
    int default_deadline_ms; /**< 0 = FS_RPC_DEFAULT_DEADLINE_MS */
    const char *token;       /**< shared secret; NULL or "" = none required (copied) */
    fs_metrics_t *metrics;   /**< may be NULL */
} fs_rpc_opts_t;

/* Serves on the listening socket `fd` (handed over by the master; owned from now on and closed
 * by fs_rpc_server_free) with the worker's settings: RPC_TOKEN, READ_TIMEOUT_MS and
 * IDLE_TIMEOUT_MS from fs_cfg. Returns NULL (fd closed) when the socket cannot be used. */
fs_rpc_server_t *fs_rpc_server_new(struct event_base *base, int fd, fs_metrics_t *metrics);
/* Same with explicit options (tests and tools). */
fs_rpc_server_t *fs_rpc_server_new_opts(struct event_base *base, int fd, const fs_rpc_opts_t *opts);

/* Drain: stops accepting; idle connections are closed at once; requests that arrive on busy
 * connections are answered UNAVAILABLE ("draining"); a connection closes once its last answer
 * is flushed. Calls in flight finish normally. */
void fs_rpc_server_stop_accepting(fs_rpc_server_t *s);
/* Unanswered calls plus connections with unflushed output: the drain waits for zero. */
size_t fs_rpc_server_inflight(const fs_rpc_server_t *s);
/* The bound port (tests). */
int fs_rpc_server_port(const fs_rpc_server_t *s);
/* Closes every connection and the socket. Calls still in flight stay valid for their handlers;
 * their answers are discarded. */
void fs_rpc_server_free(fs_rpc_server_t *s);

#endif
