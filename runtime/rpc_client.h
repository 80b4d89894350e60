/* A blocking client of the internal RPC (schemas/rpc.proto, docs/RPC.md) for tools and tests:
 * `flightshark rpc`, the test suites. Never use it on a worker's event loop.
 *
 * One connection, used by one thread. fs_rpc_client_call() is the simple path (one request,
 * wait for its response); fs_rpc_client_send() / _recv() expose the frames for pipelining
 * (several requests in flight, responses matched by id) and for tests of the server.
 */
#ifndef FS_RPC_CLIENT_H
#define FS_RPC_CLIENT_H

#include "schemas/rpc.pb-c.h"

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#define FS_RPC_CLIENT_MAX_FRAME (64u << 20) /**< responses larger than this are refused */

typedef struct fs_rpc_client fs_rpc_client_t;

/* Connects to `host` (a name or an address) and `port` within `timeout_ms`. Returns NULL with
 * *err set (caller frees) when no address accepts. */
fs_rpc_client_t *fs_rpc_client_connect(const char *host, int port, int timeout_ms, char **err);
void fs_rpc_client_close(fs_rpc_client_t *c);

/* The shared secret sent with every request from now on (NULL: none). Copied. */
void fs_rpc_client_set_token(fs_rpc_client_t *c, const char *token);

/* The socket, for tests that write raw bytes. */
int fs_rpc_client_fd(const fs_rpc_client_t *c);

/* Sends one request frame: `payload` packed (NULL: no payload), `deadline_ms` the budget the
 * server gets (0: its default). Returns 0, or -1 with *err set. */
int fs_rpc_client_send(fs_rpc_client_t *c, const char *method, uint64_t id, const ProtobufCMessage *payload,
                       uint32_t deadline_ms, char **err);

/* Writes `len` raw bytes (tests of malformed frames). Returns 0 or -1 with *err set. */
int fs_rpc_client_send_raw(fs_rpc_client_t *c, const void *data, size_t len, char **err);

/* Reads the next response frame within `timeout_ms`. Returns 0 with *out set (free it with
 * fs__rpc__rpc_response__free_unpacked(*out, NULL)), or -1 with *err set: timeout, connection
 * closed, a frame over FS_RPC_CLIENT_MAX_FRAME or one that does not unpack. */
int fs_rpc_client_recv(fs_rpc_client_t *c, int timeout_ms, Fs__Rpc__RpcResponse **out, char **err);

/* One call: sends `req` (NULL: empty payload) with a fresh id and the deadline `timeout_ms`,
 * then waits up to `timeout_ms` (plus a little) for its response.
 *   - returns the RPC status (fs.rpc.Status, >= 0); when OK and `reply_desc` is set, *reply is
 *     the payload unpacked as that message (free with protobuf_c_message_free_unpacked(x, NULL));
 *     otherwise *error is the server's message (caller frees), and *reply is NULL;
 *   - returns -1 with *error set when the transport failed (no response); the connection is
 *     then unusable. */
int fs_rpc_client_call(fs_rpc_client_t *c, const char *method, const ProtobufCMessage *req,
                       const ProtobufCMessageDescriptor *reply_desc, int timeout_ms, ProtobufCMessage **reply,
                       char **error);

#endif
