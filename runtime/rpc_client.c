/* The blocking RPC client (runtime/rpc_client.h): poll(2) with deadlines around plain
 * reads and writes of length-prefixed frames. */
#include "runtime/rpc_client.h"

#include "runtime/alloc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The server may answer a little after the deadline it was given (it answers
 * DEADLINE_EXCEEDED itself); the client waits that much longer before it gives up. */
#define CALL_GRACE_MS 1000

struct fs_rpc_client {
    int fd;
    char *token;
    uint64_t next_id;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for `events` on fd until `deadline`. Returns 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left < 0)
            left = 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 ? -1 : n > 0 ? 1 : 0;
    }
}

static int connect_one(const struct addrinfo *ai, int timeout_ms)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        int err = 0;
        socklen_t len = sizeof err;
        if (errno != EINPROGRESS || wait_fd(fd, POLLOUT, now_ms() + timeout_ms) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            if (err)
                errno = err;
            int saved = errno ? errno : ETIMEDOUT;
            close(fd);
            errno = saved;
            return -1;
        }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

fs_rpc_client_t *fs_rpc_client_connect(const char *host, int port, int timeout_ms, char **err)
{
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0) {
        *err = fs_sprintf("cannot resolve %s: %s", host, gai_strerror(rc));
        return NULL;
    }
    int fd = -1, last = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
        if ((fd = connect_one(ai, timeout_ms)) < 0)
            last = errno;
    freeaddrinfo(res);
    if (fd < 0) {
        *err = fs_sprintf("cannot connect to %s:%d: %s", host, port, strerror(last ? last : ECONNREFUSED));
        return NULL;
    }
    fs_rpc_client_t *c = FS_NEW(fs_rpc_client_t);
    c->fd = fd;
    return c;
}

void fs_rpc_client_close(fs_rpc_client_t *c)
{
    if (!c)
        return;
    close(c->fd);
    free(c->token);
    free(c);
}

void fs_rpc_client_set_token(fs_rpc_client_t *c, const char *token)
{
    free(c->token);
    c->token = token ? fs_strdup(token) : NULL;
}

int fs_rpc_client_fd(const fs_rpc_client_t *c)
{
    return c->fd;
}

static int write_all(int fd, const uint8_t *p, size_t len, int64_t deadline, char **err)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait_fd(fd, POLLOUT, deadline) == 1)
            continue;
        *err = fs_sprintf("write failed: %s", n < 0 && errno != EAGAIN ? strerror(errno) : "timed out");
        return -1;
    }
    return 0;
}

int fs_rpc_client_send_raw(fs_rpc_client_t *c, const void *data, size_t len, char **err)
{
    return write_all(c->fd, data, len, now_ms() + 10000, err);
}

int fs_rpc_client_send(fs_rpc_client_t *c, const char *method, uint64_t id, const ProtobufCMessage *payload,
                       uint32_t deadline_ms, char **err)
{
    Fs__Rpc__RpcRequest req = FS__RPC__RPC_REQUEST__INIT;
    req.method = (char *)method;
    req.has_id = true;
    req.id = id;
    req.has_deadline_ms = deadline_ms > 0;
    req.deadline_ms = deadline_ms;
    req.token = c->token;
    uint8_t *body = NULL;
    if (payload) {
        size_t n = protobuf_c_message_get_packed_size(payload);
        body = fs_malloc(n);
        protobuf_c_message_pack(payload, body);
        req.has_payload = true;
        req.payload = (ProtobufCBinaryData){.len = n, .data = body};
    }
    size_t size = fs__rpc__rpc_request__get_packed_size(&req);
    uint8_t *frame = fs_malloc(size + 4);
    uint32_t be = htonl((uint32_t)size);
    memcpy(frame, &be, 4);
    fs__rpc__rpc_request__pack(&req, frame + 4);
    int rc = fs_rpc_client_send_raw(c, frame, size + 4, err);
    free(frame);
    free(body);
    return rc;
}

/* Reads exactly `len` bytes before `deadline`. */
static int read_all(int fd, uint8_t *p, size_t len, int64_t deadline, char **err)
{
    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n == 0) {
            *err = fs_strdup("connection closed by the server");
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            *err = fs_sprintf("read failed: %s", strerror(errno));
            return -1;
        }
        int w = wait_fd(fd, POLLIN, deadline);
        if (w != 1) {
            *err = fs_strdup(w == 0 ? "timed out waiting for the response" : "poll failed");
            return -1;
        }
    }
    return 0;
}

int fs_rpc_client_recv(fs_rpc_client_t *c, int timeout_ms, Fs__Rpc__RpcResponse **out, char **err)
{
    int64_t deadline = now_ms() + timeout_ms;
    uint32_t be;
    if (read_all(c->fd, (uint8_t *)&be, 4, deadline, err) != 0)
        return -1;
    size_t len = ntohl(be);
    if (len > FS_RPC_CLIENT_MAX_FRAME) {
        *err = fs_sprintf("response frame of %zu bytes is over the limit", len);
        return -1;
    }
    uint8_t *buf = fs_malloc(len ? len : 1);
    int rc = read_all(c->fd, buf, len, deadline, err);
    if (rc == 0 && !(*out = fs__rpc__rpc_response__unpack(NULL, len, buf))) {
        *err = fs_strdup("response does not unpack as fs.rpc.RpcResponse");
        rc = -1;
    }
    free(buf);
    return rc;
}

/* Waits for the response to `id`, skipping any other (a pipelined caller's). */
static Fs__Rpc__RpcResponse *recv_id(fs_rpc_client_t *c, uint64_t id, int timeout_ms, char **error)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        Fs__Rpc__RpcResponse *r;
        int64_t left = deadline - now_ms();
        if (fs_rpc_client_recv(c, left > 0 ? (int)left : 0, &r, error) != 0)
            return NULL;
        /* id 0: the server could not read the request (bad frame): it is ours */
        if (r->id == id || r->id == 0)
            return r;
        fs__rpc__rpc_response__free_unpacked(r, NULL);
    }
}

int fs_rpc_client_call(fs_rpc_client_t *c, const char *method, const ProtobufCMessage *req,
                       const ProtobufCMessageDescriptor *reply_desc, int timeout_ms, ProtobufCMessage **reply,
                       char **error)
{
    *reply = NULL;
    *error = NULL;
    uint64_t id = ++c->next_id;
    if (fs_rpc_client_send(c, method, id, req, (uint32_t)timeout_ms, error) != 0)
        return -1;
    Fs__Rpc__RpcResponse *r = recv_id(c, id, timeout_ms + CALL_GRACE_MS, error);
    if (!r)
        return -1;
    int status = r->has_status ? (int)r->status : 0;
    if (status != 0) {
        *error = fs_strdup(r->error ? r->error : "");
    } else if (reply_desc) {
        ProtobufCBinaryData p = r->has_payload ? r->payload : (ProtobufCBinaryData){0, NULL};
        *reply = protobuf_c_message_unpack(reply_desc, NULL, p.len, p.data ? p.data : (const uint8_t *)"");
        if (!*reply) {
            *error = fs_sprintf("reply does not unpack as %s", reply_desc->name);
            status = -1;
        }
    }
    fs__rpc__rpc_response__free_unpacked(r, NULL);
    return status;
}
