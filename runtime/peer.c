/* Cross-worker messaging: length-prefixed Envelope frames over unix socketpairs, a worker side
 * (fs_peer_t) and the master's router (fs_peer_hub_t). See peer.h for the protocol. */
#include "runtime/peer.h"

#include "runtime/actor_int.h"
#include "runtime/alloc.h"
#include "runtime/log.h"
#include "schemas/runtime.pb-c.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef Fs__Runtime__Envelope envelope_t;

int fs_peer_socketpair(int fds[2])
{
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds);
}

/* ---- channel: framing shared by both sides ------------------------------------------------- */

typedef struct chan chan_t;
typedef void (*chan_frame_fn)(chan_t *c, const uint8_t *data, size_t len);
typedef void (*chan_close_fn)(chan_t *c, bool oversized);

struct chan {
    struct bufferevent *bev;
    int fd;
    chan_frame_fn on_frame;
    chan_close_fn on_close; /* the channel is freed right after it returns */
    void *owner;
    int slot;
};

static void chan_free(chan_t *c)
{
    if (!c)
        return;
    bufferevent_free(c->bev);
    free(c);
}

static void chan_close(chan_t *c, bool oversized)
{
    c->on_close(c, oversized);
    chan_free(c);
}

/* Takes whole frames off the input. The length is checked before any byte of the frame is
 * buffered further, so a corrupt or hostile prefix costs nothing but the channel. */
static void chan_on_read(struct bufferevent *bev, void *arg)
{
    chan_t *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        size_t avail = evbuffer_get_length(in);
        uint8_t hdr[4];
        if (avail < sizeof hdr)
            return;
        evbuffer_copyout(in, hdr, sizeof hdr);
        uint32_t len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
        if (len > FS_PEER_MAX_FRAME) {
            fs_error("peer channel %d: frame length %u over the %u limit; closing", c->slot, len, FS_PEER_MAX_FRAME);
            chan_close(c, true);
            return;
        }
        if (avail < sizeof hdr + len)
            return;
        evbuffer_drain(in, sizeof hdr);
        const uint8_t *data = len ? evbuffer_pullup(in, len) : (const uint8_t *)"";
        c->on_frame(c, data, len);
        evbuffer_drain(in, len);
    }
}

static void chan_on_event(struct bufferevent *bev, short what, void *arg)
{
    chan_t *c = arg;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        if (what & BEV_EVENT_ERROR)
            fs_warn("peer channel %d: %s", c->slot, strerror(errno));
        chan_close(c, false);
    }
}

static chan_t *chan_new(struct event_base *base, int fd, int slot, void *owner, chan_frame_fn on_frame,
                        chan_close_fn on_close)
{
    chan_t *c = FS_NEW(chan_t);
    evutil_make_socket_nonblocking(fd);
    c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->fd = fd;
    c->slot = slot;
    c->owner = owner;
    c->on_frame = on_frame;
    c->on_close = on_close;
    bufferevent_setcb(c->bev, chan_on_read, NULL, chan_on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    return c;
}

static bool chan_has_room(chan_t *c, size_t n)
{
    return evbuffer_get_length(bufferevent_get_output(c->bev)) + n <= FS_PEER_MAX_OUTBUF;
}

/* Writes a length prefix and `len` bytes. FS_EFULL when the output bound would be passed. */
static int chan_write_raw(chan_t *c, const uint8_t *data, size_t len)
{
    if (!chan_has_room(c, len + 4))
        return FS_EFULL;
    uint32_t be = htonl((uint32_t)len);
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add(out, &be, sizeof be);
    evbuffer_add(out, data, len);
    return FS_OK;
}

/* Packs the envelope straight into the output buffer (no intermediate copy). */
static int chan_write_env(chan_t *c, const envelope_t *env)
{
    size_t len = fs__runtime__envelope__get_packed_size(env);
    if (len > FS_PEER_MAX_FRAME)
        return FS_EINVAL;
    if (!chan_has_room(c, len + 4))
        return FS_EFULL;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    struct evbuffer_iovec vec;
    if (evbuffer_reserve_space(out, len + 4, &vec, 1) != 1)
        return FS_EFULL;
    uint32_t be = htonl((uint32_t)len);
    memcpy(vec.iov_base, &be, 4);
    fs__runtime__envelope__pack(env, (uint8_t *)vec.iov_base + 4);
    vec.iov_len = len + 4;
    evbuffer_commit_space(out, &vec, 1);
    return FS_OK;
}

/* ---- worker side ------------------------------------------------------------------------- */

struct fs_peer {
    fs_actor_system_t *sys;
    chan_t *chan;
    fs_peer_close_fn on_close;
    void *arg;
    fs_peer_stats_t st;
};

static int send_reply_env(fs_peer_t *p, fs_reply_addr_t to, int status, uint32_t type, ProtobufCMessage *body);

/* Tells a remote asker why its message was not delivered. */
static void refuse(fs_peer_t *p, fs_reply_addr_t to, int status)
{
    if (to.corr_id)
        send_reply_env(p, to, status, 0, NULL);
}

/* The body of a frame: NULL with *status set when it cannot be decoded. Type 0 carries none. */
static ProtobufCMessage *unpack_body(fs_peer_t *p, const envelope_t *env, int *status)
{
    *status = FS_OK;
    if (!env->type)
        return NULL;
    const ProtobufCMessageDescriptor *d = fs_msg_type_descriptor(env->type);
    if (!d || (env->payload_type && *env->payload_type && strcmp(env->payload_type, d->name) != 0)) {
        p->st.unknown_type++;
        fs_warn("peer: unknown message type %u (%s)", env->type, env->payload_type ? env->payload_type : "?");
        *status = FS_EPROTO;
        return NULL;
    }
    ProtobufCMessage *body = protobuf_c_message_unpack(d, NULL, env->payload.len, env->payload.data);
    if (!body) {
        p->st.bad_frames++;
        fs_warn("peer: payload of type %u does not unpack", env->type);
        *status = FS_EPROTO;
    }
    return body;
}

static void deliver(fs_peer_t *p, const envelope_t *env)
{
    bool ask = env->kind == FS__RUNTIME__ENVELOPE__KIND__ASK && env->correlation_id;
    fs_reply_addr_t ra = {ask ? (int)env->sender_worker : 0, ask ? env->correlation_id : 0};
    int status;
    ProtobufCMessage *body = unpack_body(p, env, &status);
    if (status != FS_OK)
        return refuse(p, ra, status);
    fs_actor_t *a = env->target_actor ? fs_actor_lookup(p->sys, env->target_actor) : NULL;
    if (!a) {
        p->st.unknown_actor++;
        fs_warn("peer: no actor '%s' in worker %d", env->target_actor ? env->target_actor : "", p->sys->worker);
        fs_pb_free(body);
        return refuse(p, ra, FS_ENOACTOR);
    }
    fs_msg_t *m = fsint_msg_new(p->sys, env->type, body);
    m->sender_worker = (int)env->sender_worker;
    if (env->sender_actor && *env->sender_actor)
        m->sender_name = m->_sender_name = fs_strdup(env->sender_actor);
    m->reply_to = ra;
    if (env->deadline_ms)
        m->deadline_ms = fs_now_ms() + env->deadline_ms;
    int rc = fsint_actor_push(a, m);
    if (rc != FS_OK) {
        if (rc == FS_EFULL)
            p->st.rejected++;
        fsint_msg_free(m);
        refuse(p, ra, rc);
    }
}

static void complete(fs_peer_t *p, const envelope_t *env)
{
    int status = env->status > 0 ? FS_EPROTO : env->status;
    fs_msg_t *reply = NULL;
    if (status == FS_OK) {
        ProtobufCMessage *body = unpack_body(p, env, &status);
        if (status == FS_OK) {
            reply = fsint_msg_new(p->sys, env->type, body);
            reply->sender_worker = (int)env->sender_worker;
        }
    }
    fsint_ask_complete(p->sys, env->correlation_id, status, reply);
}

static void peer_on_frame(chan_t *c, const uint8_t *data, size_t len)
{
    fs_peer_t *p = c->owner;
    p->st.frames_in++;
    envelope_t *env = fs__runtime__envelope__unpack(NULL, len, data);
    if (!env) {
        p->st.bad_frames++;
        fs_warn("peer: a frame of %zu bytes is not an envelope; dropped", len);
        return;
    }
    if (env->kind == FS__RUNTIME__ENVELOPE__KIND__REPLY)
        complete(p, env);
    else
        deliver(p, env);
    fs__runtime__envelope__free_unpacked(env, NULL);
}

static void peer_on_close(chan_t *c, bool oversized)
{
    fs_peer_t *p = c->owner;
    p->chan = NULL;
    p->st.connected = false;
    if (oversized)
        p->st.oversized++;
    fs_error("peer: channel to the master closed");
    if (p->on_close)
        p->on_close(p, p->arg);
}

/* Packs `body` as the envelope's payload. The caller frees env->payload.data. */
static int set_payload(envelope_t *env, uint32_t type, const ProtobufCMessage *body)
{
    env->has_type = true;
    env->type = type;
    if (!type)
        return FS_OK;
    const ProtobufCMessageDescriptor *d = fs_msg_type_descriptor(type);
    if (!d || (body && body->descriptor != d))
        return FS_EINVAL;
    env->payload_type = (char *)d->name;
    if (!body)
        return FS_OK;
    size_t n = protobuf_c_message_get_packed_size(body);
    if (n > FS_PEER_MAX_FRAME)
        return FS_EINVAL;
    env->has_payload = true;
    env->payload.len = n;
    env->payload.data = fs_malloc(n);
    protobuf_c_message_pack(body, env->payload.data);
    return FS_OK;
}

/* Frames and queues one envelope; always frees `body`. */
static int send_env(fs_peer_t *p, envelope_t *env, uint32_t type, ProtobufCMessage *body)
{
    int rc = p->chan ? set_payload(env, type, body) : FS_EUNAVAIL;
    if (rc == FS_OK)
        rc = chan_write_env(p->chan, env);
    if (rc == FS_OK)
        p->st.frames_out++;
    else if (rc == FS_EFULL)
        p->st.send_full++;
    free(env->payload.data);
    fs_pb_free(body);
    return rc;
}

static int send_reply_env(fs_peer_t *p, fs_reply_addr_t to, int status, uint32_t type, ProtobufCMessage *body)
{
    envelope_t env = FS__RUNTIME__ENVELOPE__INIT;
    env.has_kind = true, env.kind = FS__RUNTIME__ENVELOPE__KIND__REPLY;
    env.has_target_worker = true, env.target_worker = (uint32_t)to.worker;
    env.has_sender_worker = true, env.sender_worker = (uint32_t)p->sys->worker;
    env.has_correlation_id = true, env.correlation_id = to.corr_id;
    env.has_status = true, env.status = status;
    if (status != FS_OK) {
        fs_pb_free(body);
        return send_env(p, &env, 0, NULL);
    }
    return send_env(p, &env, type, body);
}

static int remote_reply(void *ctx, fs_reply_addr_t to, int status, uint32_t type, ProtobufCMessage *body)
{
    return send_reply_env(ctx, to, status, type, body);
}

static int send_remote(fs_peer_t *p, fs_actor_t *from, int worker, const char *actor, uint32_t type,
                       ProtobufCMessage *body, uint64_t corr, int timeout_ms)
{
    envelope_t env = FS__RUNTIME__ENVELOPE__INIT;
    env.has_kind = true;
    env.kind = corr ? FS__RUNTIME__ENVELOPE__KIND__ASK : FS__RUNTIME__ENVELOPE__KIND__SEND;
    env.has_target_worker = true, env.target_worker = (uint32_t)worker;
    env.target_actor = (char *)actor;
    env.has_sender_worker = true, env.sender_worker = (uint32_t)p->sys->worker;
    env.sender_actor = from ? (char *)fs_actor_name(from) : NULL;
    env.has_correlation_id = corr != 0, env.correlation_id = corr;
    env.has_deadline_ms = timeout_ms > 0, env.deadline_ms = (uint32_t)timeout_ms;
    return send_env(p, &env, type, body);
}

static bool is_local(const fs_peer_t *p, int worker)
{
    return worker == FS_WORKER_LOCAL || worker == p->sys->worker;
}

fs_peer_t *fs_peer_new(fs_actor_system_t *sys, int fd, fs_peer_close_fn on_close, void *arg)
{
    fs_peer_t *p = FS_NEW(fs_peer_t);
    p->sys = sys;
    p->on_close = on_close;
    p->arg = arg;
    p->chan = chan_new(sys->base, fd, sys->worker, p, peer_on_frame, peer_on_close);
    p->st.connected = true;
    fsint_system_set_remote(sys, remote_reply, p);
    return p;
}

int fs_peer_send(fs_peer_t *p, fs_actor_t *from, int worker, const char *actor, uint32_t type, ProtobufCMessage *body)
{
    if (is_local(p, worker)) {
        fs_actor_t *a = fs_actor_lookup(p->sys, actor);
        if (!a) {
            fs_pb_free(body);
            return FS_ENOACTOR;
        }
        return fs_actor_send(a, from, type, body);
    }
    if (worker < 0) {
        fs_pb_free(body);
        return FS_EINVAL;
    }
    return send_remote(p, from, worker, actor, type, body, 0, 0);
}

int fs_peer_ask(fs_peer_t *p, fs_actor_t *from, int worker, const char *actor, uint32_t type,
                ProtobufCMessage *body, int timeout_ms, fs_reply_fn cb, void *arg)
{
    if (is_local(p, worker)) {
        fs_actor_t *a = fs_actor_lookup(p->sys, actor);
        if (!a) {
            fs_pb_free(body);
            return FS_ENOACTOR;
        }
        return fs_actor_ask(a, from, type, body, timeout_ms, cb, arg);
    }
    if (worker < 0 || !cb || timeout_ms < 0) {
        fs_pb_free(body);
        return FS_EINVAL;
    }
    uint64_t corr = fsint_ask_register(p->sys, from, timeout_ms, cb, arg);
    int rc = send_remote(p, from, worker, actor, type, body, corr, timeout_ms);
    if (rc != FS_OK)
        fsint_ask_forget(p->sys, corr);
    return rc;
}

void fs_peer_get_stats(const fs_peer_t *p, fs_peer_stats_t *out)
{
    *out = p->st;
}

void fs_peer_free(fs_peer_t *p)
{
    if (!p)
        return;
    fsint_system_set_remote(p->sys, NULL, NULL);
    chan_free(p->chan);
    free(p);
}

/* ---- master side -------------------------------------------------------------------------- */

struct fs_peer_hub {
    struct event_base *base;
    int nslots;
    chan_t **slots;
    fs_peer_hub_stats_t st;
};

/* The fields the hub routes on. */
typedef struct {
    bool has_target;
    uint64_t target, kind, corr;
} head_t;

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* Walks the top level of a packed Envelope for fields 1 (target_worker), 6 (correlation_id)
 * and 10 (kind), skipping the rest, payload included, without copying anything. Only the
 * wire structure is checked here; the receiving worker's full unpack checks the rest. */
static bool scan_head(const uint8_t *p, size_t len, head_t *h)
{
    const uint8_t *end = p + len;
    *h = (head_t){0};
    while (p < end) {
        uint64_t tag, v;
        if (!read_varint(&p, end, &tag))
            return false;
        switch (tag & 7) {
        case 0:
            if (!read_varint(&p, end, &v))
                return false;
            if (tag >> 3 == 1)
                h->has_target = true, h->target = v;
            else if (tag >> 3 == 6)
                h->corr = v;
            else if (tag >> 3 == 10)
                h->kind = v;
            break;
        case 1: if (end - p < 8) return false; p += 8; break;
        case 5: if (end - p < 4) return false; p += 4; break;
        case 2:
            if (!read_varint(&p, end, &v) || v > (uint64_t)(end - p))
                return false;
            p += v;
            break;
        default:
            return false;
        }
    }
    return true;
}

/* The hub answers an ask it cannot deliver, so the asker learns at once. */
static void hub_refuse(fs_peer_hub_t *hub, chan_t *src, const head_t *h, int status)
{
    if (h->kind != FS__RUNTIME__ENVELOPE__KIND__ASK || !h->corr)
        return;
    envelope_t env = FS__RUNTIME__ENVELOPE__INIT;
    env.has_kind = true, env.kind = FS__RUNTIME__ENVELOPE__KIND__REPLY;
    env.has_target_worker = true, env.target_worker = (uint32_t)src->slot;
    env.has_sender_worker = true, env.sender_worker = (uint32_t)h->target;
    env.has_correlation_id = true, env.correlation_id = h->corr;
    env.has_status = true, env.status = status;
    if (chan_write_env(src, &env) == FS_OK)
        hub->st.error_replies++;
}

static void hub_on_frame(chan_t *c, const uint8_t *data, size_t len)
{
    fs_peer_hub_t *hub = c->owner;
    head_t h;
    if (!scan_head(data, len, &h)) {
        hub->st.bad_frames++;
        fs_warn("peer hub: unreadable frame of %zu bytes from worker %d; dropped", len, c->slot);
        return;
    }
    if (!h.has_target || h.target >= (uint64_t)hub->nslots) {
        hub->st.bad_target++;
        fs_warn("peer hub: frame from worker %d for no such worker; dropped", c->slot);
        return hub_refuse(hub, c, &h, FS_EUNAVAIL);
    }
    chan_t *dst = hub->slots[h.target];
    if (!dst) {
        hub->st.dropped_dead++;
        return hub_refuse(hub, c, &h, FS_EUNAVAIL);
    }
    if (chan_write_raw(dst, data, len) != FS_OK) {
        hub->st.dropped_full++;
        return hub_refuse(hub, c, &h, FS_EFULL);
    }
    hub->st.routed++;
}

static void hub_on_close(chan_t *c, bool oversized)
{
    fs_peer_hub_t *hub = c->owner;
    if (oversized)
        hub->st.oversized++;
    fs_warn("peer hub: channel of worker %d closed", c->slot);
    hub->slots[c->slot] = NULL;
    hub->st.connected--;
}

fs_peer_hub_t *fs_peer_hub_new(struct event_base *base, int slots)
{
    fs_peer_hub_t *hub = FS_NEW(fs_peer_hub_t);
    hub->base = base;
    hub->nslots = slots;
    hub->slots = fs_calloc((size_t)slots, sizeof *hub->slots);
    return hub;
}

int fs_peer_hub_attach(fs_peer_hub_t *hub, int slot, int fd)
{
    if (slot < 0 || slot >= hub->nslots)
        return -1;
    fs_peer_hub_detach(hub, slot);
    hub->slots[slot] = chan_new(hub->base, fd, slot, hub, hub_on_frame, hub_on_close);
    hub->st.connected++;
    return 0;
}

void fs_peer_hub_detach(fs_peer_hub_t *hub, int slot)
{
    if (slot < 0 || slot >= hub->nslots || !hub->slots[slot])
        return;
    chan_free(hub->slots[slot]);
    hub->slots[slot] = NULL;
    hub->st.connected--;
}

void fs_peer_hub_get_stats(const fs_peer_hub_t *hub, fs_peer_hub_stats_t *out)
{
    *out = hub->st;
}

void fs_peer_hub_close_in_child(fs_peer_hub_t *hub)
{
    for (int i = 0; i < hub->nslots; i++)
        if (hub->slots[i])
            close(hub->slots[i]->fd);
}

void fs_peer_hub_free(fs_peer_hub_t *hub)
{
    if (!hub)
        return;
    for (int i = 0; i < hub->nslots; i++)
        chan_free(hub->slots[i]);
    free(hub->slots);
    free(hub);
}
