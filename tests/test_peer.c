/* Cross-worker messaging over real unix socketpairs: a hub and two worker systems on their own
 * event_bases, malformed frames from raw sockets, and a round trip between forked processes. */
#include "runtime/actor.h"
#include "runtime/peer.h"
#include "schemas/runtime.pb-c.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <event2/event.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- fixture: hub + workers 0 and 1, each on its own event_base ------------------------------ */

static struct event_base *hub_base, *wb[2];
static fs_peer_hub_t *hub;
static fs_actor_system_t *ws[2];
static fs_peer_t *peers[2];
static int peer_closed[2];

static void on_peer_close(fs_peer_t *p, void *arg)
{
    peer_closed[(intptr_t)arg]++;
}

static void pump(void)
{
    event_base_loop(hub_base, EVLOOP_NONBLOCK);
    for (int i = 0; i < 2; i++)
        event_base_loop(wb[i], EVLOOP_NONBLOCK);
}

static bool pump_until(volatile bool *flag, int ms)
{
    int64_t end = fs_now_ms() + ms;
    while (!*flag && fs_now_ms() < end) {
        pump();
        usleep(100);
    }
    return *flag;
}

static void pump_for(int ms)
{
    bool never = false;
    pump_until(&never, ms);
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    fs_runtime_register_types();
    hub_base = event_base_new();
    hub = fs_peer_hub_new(hub_base, 2);
    for (int i = 0; i < 2; i++) {
        int fds[2];
        cr_assert_eq(fs_peer_socketpair(fds), 0);
        cr_assert_eq(fs_peer_hub_attach(hub, i, fds[0]), 0);
        wb[i] = event_base_new();
        ws[i] = fs_actor_system_new(wb[i], &(fs_actor_system_opts_t){.worker = i});
        peers[i] = fs_peer_new(ws[i], fds[1], on_peer_close, (void *)(intptr_t)i);
    }
}

static void teardown(void)
{
    for (int i = 0; i < 2; i++) {
        fs_peer_free(peers[i]);
        fs_actor_system_free(ws[i]);
        event_base_free(wb[i]);
    }
    fs_peer_hub_free(hub);
    event_base_free(hub_base);
}

TestSuite(peer, .init = setup, .fini = teardown, .timeout = 60);

/* ---- actors of worker 1 ----------------------------------------------------------------------- */

static int ponger(fs_actor_t *self, void *state, fs_msg_t *msg)
{
    Fs__Runtime__Ping *p = fs_msg_body(msg, &fs__runtime__ping__descriptor);
    if (!p)
        return FS_EINVAL;
    Fs__Runtime__Pong *r = fs_pb_new(&fs__runtime__pong__descriptor);
    r->has_seq = true, r->seq = p->seq * 10;
    r->has_worker = true, r->worker = (uint32_t)fs_actor_system_worker(fs_actor_system(self));
    return fs_actor_reply(msg, FS_MSG_PONG, &r->base);
}

typedef struct {
    int n;
    uint64_t seqs[64];
    char text[64];
    size_t data_len;
    int64_t values[4];
    size_t n_values;
    int sender_worker;
    char sender_name[32];
    bool done;
    int want;
} inbox_t;

static inbox_t inbox;

static int collector(fs_actor_t *self, void *state, fs_msg_t *msg)
{
    Fs__Runtime__Echo *e = fs_msg_body(msg, &fs__runtime__echo__descriptor);
    Fs__Runtime__Ping *p = fs_msg_body(msg, &fs__runtime__ping__descriptor);
    if (p && inbox.n < 64)
        inbox.seqs[inbox.n] = p->seq;
    if (e) {
        snprintf(inbox.text, sizeof inbox.text, "%s", e->text ? e->text : "");
        inbox.data_len = e->has_data ? e->data.len : 0;
        inbox.n_values = e->n_values;
        if (e->n_values)
            memcpy(inbox.values, e->values, sizeof(int64_t) * (e->n_values < 4 ? e->n_values : 4));
    }
    inbox.sender_worker = msg->sender_worker;
    snprintf(inbox.sender_name, sizeof inbox.sender_name, "%s", msg->sender_name ? msg->sender_name : "");
    if (++inbox.n >= inbox.want)
        inbox.done = true;
    return FS_OK;
}

static fs_reply_addr_t held;
static bool slow_answered;

static int slow(fs_actor_t *self, void *state, fs_msg_t *msg)
{
    if (msg->timer_id) {
        Fs__Runtime__Pong *r = fs_pb_new(&fs__runtime__pong__descriptor);
        fs_actor_reply_to(fs_actor_system(self), held, FS_OK, FS_MSG_PONG, &r->base);
        slow_answered = true;
    } else {
        held = msg->reply_to;
        fs_actor_timer_start(self, 50, 150, 0);
    }
    return FS_OK;
}

static Fs__Runtime__Ping *ping(uint64_t seq)
{
    Fs__Runtime__Ping *p = fs_pb_new(&fs__runtime__ping__descriptor);
    p->has_seq = true, p->seq = seq;
    return p;
}

typedef struct {
    int calls, status;
    uint64_t seq;
    uint32_t worker;
    bool done;
} answer_t;

static void on_answer(int status, fs_msg_t *reply, void *arg)
{
    answer_t *a = arg;
    a->calls++;
    a->status = status;
    Fs__Runtime__Pong *p = reply ? fs_msg_body(reply, &fs__runtime__pong__descriptor) : NULL;
    a->seq = p ? p->seq : 0;
    a->worker = p ? p->worker : 99;
    a->done = true;
}

/* ---- round trips ------------------------------------------------------------------------------ */

Test(peer, send_carries_the_body_and_sender)
{
    fs_actor_spawn(ws[1], &(fs_actor_spec_t){.name = "collector", .behaviour = collector});
    fs_actor_t *from = fs_actor_spawn(ws[0], &(fs_actor_spec_t){.name = "origin", .behaviour = collector});
    Fs__Runtime__Echo *e = fs_pb_new(&fs__runtime__echo__descriptor);
    e->text = strdup("hello worker");
    e->has_data = true, e->data.len = 3, e->data.data = (uint8_t *)strdup("abc");
    e->n_values = 3, e->values = malloc(3 * sizeof(int64_t));
    e->values[0] = -1, e->values[1] = 0, e->values[2] = 1LL << 40;
    inbox.want = 1;
    cr_assert_eq(fs_peer_send(peers[0], from, 1, "collector", FS_MSG_ECHO, &e->base), FS_OK);
    cr_assert(pump_until(&inbox.done, 2000));
    cr_assert_str_eq(inbox.text, "hello worker");
    cr_assert_eq(inbox.data_len, 3);
    cr_assert_eq(inbox.n_values, 3);
    cr_assert_eq(inbox.values[2], 1LL << 40);
    cr_assert_eq(inbox.sender_worker, 0);
    cr_assert_str_eq(inbox.sender_name, "origin");
    fs_peer_hub_stats_t hs;
    fs_peer_hub_get_stats(hub, &hs);
    cr_assert_eq(hs.routed, 1);
    cr_assert_eq(hs.connected, 2);
}

Test(peer, order_is_kept_across_the_channel)
{
    fs_actor_spawn(ws[1], &(fs_actor_spec_t){.name = "collector", .behaviour = collector});
    inbox.want = 50;
    for (uint64_t i = 0; i < 50; i++)
        cr_assert_eq(fs_peer_send(peers[0], NULL, 1, "collector", FS_MSG_PING, &ping(i)->base), FS_OK);
    cr_assert(pump_until(&inbox.done, 2000));
    for (int i = 0; i < 50; i++)
        cr_assert_eq(inbox.seqs[i], (uint64_t)i);
}

Test(peer, ask_and_reply_across_workers)
{
    fs_actor_spawn(ws[1], &(fs_actor_spec_t){.name = "ponger", .behaviour = ponger});
    answer_t ans[10] = {0};
    for (int i = 0; i < 10; i++)
        cr_assert_eq(fs_peer_ask(peers[0], NULL, 1, "ponger", FS_MSG_PING, &ping(i + 1)->base, 2000, on_answer, &ans[i]),
                     FS_OK);
    cr_assert(pump_until(&ans[9].done, 3000));
    pump_for(20);
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(ans[i].calls, 1);
        cr_assert_eq(ans[i].status, FS_OK, "ask %d: %s", i, fs_status_str(ans[i].status));
        cr_assert_eq(ans[i].seq, (uint64_t)(i + 1) * 10);
        cr_assert_eq(ans[i].worker, 1);
    }
    fs_actor_system_stats_t st;
    fs_actor_system_stats(ws[0], &st);
    cr_assert_eq(st.pending_asks, 0);
}

Test(peer, local_target_is_delivered_by_pointer)
{
    fs_actor_spawn(ws[0], &(fs_actor_spec_t){.name = "ponger", .behaviour = ponger});
    answer_t ans = {0};
    cr_assert_eq(fs_peer_ask(peers[0], NULL, 0, "ponger", FS_MSG_PING, &ping(7)->base, 1000, on_answer, &ans), FS_OK);
    cr_assert(pump_until(&ans.done, 1000));
    cr_assert_eq(ans.seq, 70);
    fs_peer_hub_stats_t hs;
    fs_peer_hub_get_stats(hub, &hs);
    cr_assert_eq(hs.routed, 0, "nothing went through the hub");
    cr_assert_eq(fs_peer_send(peers[0], NULL, 0, "nobody", FS_MSG_PING, &ping(1)->base), FS_ENOACTOR);
}

Test(peer, remote_errors_reach_the_continuation)
{
    fs_actor_spawn(ws[1], &(fs_actor_spec_t){.name = "tiny", .behaviour = slow, .mailbox_capacity = 1});
    answer_t unknown = {0}, full1 = {0}, full2 = {0}, nowhere = {0};
    cr_assert_eq(fs_peer_ask(peers[0], NULL, 1, "nobody", FS_MSG_PING, &ping(1)->base, 2000, on_answer, &unknown), FS_OK);
    /* Both asks reach worker 1 in one read, before its first run pass: the second finds the
     * one-slot mailbox full. */
    cr_assert_eq(fs_peer_ask(peers[0], NULL, 1, "tiny", FS_MSG_PING, &ping(1)->base, 300, on_answer, &full1), FS_OK);
    cr_assert_eq(fs_peer_ask(peers[0], NULL, 1, "tiny", FS_MSG_PING, &ping(2)->base, 300, on_answer, &full2), FS_OK);
    cr_assert_eq(fs_peer_ask(peers[0], NULL, 7, "ponger", FS_MSG_PING, &ping(1)->base, 2000, on_answer, &nowhere), FS_OK);
    cr_assert(pump_until(&unknown.done, 2000));
    cr_assert(pump_until(&nowhere.done, 2000));
    cr_assert(pump_until(&full2.done, 2000));
    cr_assert_eq(unknown.status, FS_ENOACTOR);
    cr_assert_eq(nowhere.status, FS_EUNAVAIL);
    cr_assert_eq(full2.status, FS_EFULL);
    fs_peer_stats_t ps;
    fs_peer_get_stats(peers[1], &ps);
    cr_assert_eq(ps.unknown_actor, 1);
    cr_assert_eq(ps.rejected, 1);
    fs_peer_hub_stats_t hs;
    fs_peer_hub_get_stats(hub, &hs);
    cr_assert_eq(hs.bad_target, 1);
    cr_assert_eq(hs.error_replies, 1);
}

Test(peer, remote_ask_timeout_once_and_late_reply_ignored)
{
    fs_actor_spawn(ws[1], &(fs_actor_spec_t){.name = "slow", .behaviour = slow});
    answer_t ans = {0};
    cr_assert_eq(fs_peer_ask(peers[0], NULL, 1, "slow", FS_MSG_PING, &ping(1)->base, 60, on_answer, &ans), FS_OK);
    cr_assert(pump_until(&ans.done, 2000));
    cr_assert_eq(ans.status, FS_ETIMEOUT);
    cr_assert(pump_until(&slow_answered, 2000));
    pump_for(50);
    cr_assert_eq(ans.calls, 1);
    fs_actor_system_stats_t st;
    fs_actor_system_stats(ws[0], &st);
    cr_assert_eq(st.late_replies, 1);
}

Test(peer, dead_slot_drops_sends_and_answers_asks)
{
    fs_actor_spawn(ws[1], &(fs_actor_spec_t){.name = "ponger", .behaviour = ponger});
    fs_peer_hub_detach(hub, 1);
    pump_for(20);
    cr_assert_eq(peer_closed[1], 1, "worker 1 saw its channel end");
    answer_t ans = {0};
    cr_assert_eq(fs_peer_send(peers[0], NULL, 1, "ponger", FS_MSG_PING, &ping(1)->base), FS_OK);
    cr_assert_eq(fs_peer_ask(peers[0], NULL, 1, "ponger", FS_MSG_PING, &ping(1)->base, 2000, on_answer, &ans), FS_OK);
    cr_assert(pump_until(&ans.done, 2000));
    cr_assert_eq(ans.status, FS_EUNAVAIL);
    fs_peer_hub_stats_t hs;
    fs_peer_hub_get_stats(hub, &hs);
    cr_assert_eq(hs.dropped_dead, 2);
    cr_assert_eq(hs.connected, 1);
    cr_assert_eq(fs_peer_send(peers[1], NULL, 0, "x", FS_MSG_PING, &ping(1)->base), FS_EUNAVAIL);

    /* A restarted worker takes the slot over with a fresh pair. */
    int fds[2];
    cr_assert_eq(fs_peer_socketpair(fds), 0);
    cr_assert_eq(fs_peer_hub_attach(hub, 1, fds[0]), 0);
    fs_peer_free(peers[1]);
    peers[1] = fs_peer_new(ws[1], fds[1], on_peer_close, (void *)(intptr_t)1);
    answer_t again = {0};
    cr_assert_eq(fs_peer_ask(peers[0], NULL, 1, "ponger", FS_MSG_PING, &ping(3)->base, 2000, on_answer, &again), FS_OK);
    cr_assert(pump_until(&again.done, 2000));
    cr_assert_eq(again.status, FS_OK);
    cr_assert_eq(again.seq, 30);
}

Test(peer, unregistered_type_cannot_cross)
{
    Fs__Runtime__Ping *p = ping(1);
    cr_assert_eq(fs_peer_send(peers[0], NULL, 1, "x", 4242, &p->base), FS_EINVAL);
    cr_assert_eq(fs_peer_send(peers[0], NULL, -5, "x", FS_MSG_PING, &ping(1)->base), FS_EINVAL);
}

/* ---- back-pressure ----------------------------------------------------------------------------- */

static Fs__Runtime__Echo *big_echo(size_t n)
{
    Fs__Runtime__Echo *e = fs_pb_new(&fs__runtime__echo__descriptor);
    e->has_data = true;
    e->data.len = n;
    e->data.data = calloc(1, n);
    return e;
}

Test(peer, output_buffers_are_bounded)
{
    const size_t chunk = 4u << 20;
    fs_actor_spawn(ws[1], &(fs_actor_spec_t){.name = "collector", .behaviour = collector, .mailbox_capacity = 100});

    /* Worker side: with the loop not running nothing is flushed, so the 64 MiB bound is hit. */
    int sent = 0, rc;
    while ((rc = fs_peer_send(peers[0], NULL, 1, "collector", FS_MSG_ECHO, &big_echo(chunk)->base)) == FS_OK)
        sent++;
    cr_assert_eq(rc, FS_EFULL);
    cr_assert_eq(sent, (int)(FS_PEER_MAX_OUTBUF / (chunk + 64)), "sent %d", sent);
    fs_peer_stats_t ps;
    fs_peer_get_stats(peers[0], &ps);
    cr_assert_eq(ps.send_full, 1);

    /* Hub side: worker 1 does not read, so its channel fills and the hub starts dropping. */
    fs_peer_hub_stats_t hs;
    int64_t end = fs_now_ms() + 20000;
    do {
        event_base_loop(hub_base, EVLOOP_NONBLOCK);
        event_base_loop(wb[0], EVLOOP_NONBLOCK);
        fs_peer_send(peers[0], NULL, 1, "collector", FS_MSG_ECHO, &big_echo(chunk)->base);
        fs_peer_hub_get_stats(hub, &hs);
    } while (hs.dropped_full == 0 && fs_now_ms() < end);
    cr_assert_geq(hs.dropped_full, 1);
    answer_t ans = {0};
    /* Worker 0's own buffer may still be full: retry until it takes the ask. */
    end = fs_now_ms() + 5000;
    while ((rc = fs_peer_ask(peers[0], NULL, 1, "collector", FS_MSG_ECHO, &big_echo(chunk)->base, 5000, on_answer,
                             &ans)) == FS_EFULL && fs_now_ms() < end) {
        event_base_loop(hub_base, EVLOOP_NONBLOCK);
        event_base_loop(wb[0], EVLOOP_NONBLOCK);
    }
    cr_assert_eq(rc, FS_OK);
    while (!ans.done && fs_now_ms() < end) {
        event_base_loop(hub_base, EVLOOP_NONBLOCK);
        event_base_loop(wb[0], EVLOOP_NONBLOCK);
    }
    cr_assert_eq(ans.status, FS_EFULL, "the hub refused the ask: %s", fs_status_str(ans.status));

    /* Once worker 1 reads again, what the hub accepted arrives. */
    inbox.want = (int)hs.routed;
    cr_assert(pump_until(&inbox.done, 20000));
}

/* ---- malformed frames ------------------------------------------------------------------------- */

static void write_frame(int fd, const void *data, uint32_t len)
{
    uint32_t be = htonl(len);
    cr_assert_eq(write(fd, &be, 4), 4);
    if (len)
        cr_assert_eq(write(fd, data, len), (ssize_t)len);
}

static size_t pack_env(const Fs__Runtime__Envelope *env, uint8_t *buf)
{
    return fs__runtime__envelope__pack(env, buf);
}

/* A third slot driven by a raw socket stands in for a broken worker. */
Test(peer, hub_survives_garbage_and_oversized_frames)
{
    fs_peer_hub_free(hub);
    hub = fs_peer_hub_new(hub_base, 3);
    int fds[2], raw[2];
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(fs_peer_socketpair(fds), 0);
        fs_peer_hub_attach(hub, i, fds[0]);
        fs_peer_free(peers[i]);
        peers[i] = fs_peer_new(ws[i], fds[1], on_peer_close, (void *)(intptr_t)i);
    }
    cr_assert_eq(fs_peer_socketpair(raw), 0);
    cr_assert_eq(fs_peer_hub_attach(hub, 2, raw[0]), 0);
    fs_actor_spawn(ws[1], &(fs_actor_spec_t){.name = "collector", .behaviour = collector});

    /* 1. garbage body: the routing walk fails at the hub. */
    write_frame(raw[1], "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x07", 12);
    /* 2. a readable head but a payload that is not a Ping: forwarded, refused by worker 1. */
    Fs__Runtime__Envelope env = FS__RUNTIME__ENVELOPE__INIT;
    env.has_target_worker = true, env.target_worker = 1;
    env.target_actor = "collector";
    env.has_type = true, env.type = FS_MSG_PING;
    env.has_payload = true, env.payload.len = 3, env.payload.data = (uint8_t *)"\x0a\x05x";
    uint8_t buf[256];
    write_frame(raw[1], buf, (uint32_t)pack_env(&env, buf));
    /* 3. an unknown type id. */
    env.type = 4242, env.has_payload = false;
    write_frame(raw[1], buf, (uint32_t)pack_env(&env, buf));
    /* 4. a good frame, written a byte at a time: partial reads reassemble it. */
    Fs__Runtime__Ping good = FS__RUNTIME__PING__INIT;
    good.has_seq = true, good.seq = 77;
    uint8_t pl[32];
    env.type = FS_MSG_PING;
    env.has_payload = true, env.payload.len = fs__runtime__ping__pack(&good, pl), env.payload.data = pl;
    size_t n = pack_env(&env, buf + 4);
    uint32_t be = htonl((uint32_t)n);
    memcpy(buf, &be, 4);
    inbox.want = 1;
    for (size_t i = 0; i < n + 4; i++) {
        cr_assert_eq(write(raw[1], buf + i, 1), 1);
        pump();
    }
    cr_assert(pump_until(&inbox.done, 2000));
    cr_assert_eq(inbox.seqs[0], 77);
    cr_assert_eq(inbox.n, 1);

    fs_peer_hub_stats_t hs;
    fs_peer_hub_get_stats(hub, &hs);
    cr_assert_eq(hs.bad_frames, 1);
    fs_peer_stats_t ps;
    fs_peer_get_stats(peers[1], &ps);
    cr_assert_eq(ps.bad_frames, 1);
    cr_assert_eq(ps.unknown_type, 1);

    /* 5. an oversized length: counted, that channel closed, the others unharmed. */
    uint32_t huge = htonl(FS_PEER_MAX_FRAME + 1);
    cr_assert_eq(write(raw[1], &huge, 4), 4);
    pump_for(30);
    fs_peer_hub_get_stats(hub, &hs);
    cr_assert_eq(hs.oversized, 1);
    cr_assert_eq(hs.connected, 2);
    char c;
    cr_assert_eq(read(raw[1], &c, 1), 0, "the hub closed the broken channel");
    close(raw[1]);

    fs_actor_spawn(ws[1], &(fs_actor_spec_t){.name = "ponger", .behaviour = ponger});
    answer_t ans = {0};
    cr_assert_eq(fs_peer_ask(peers[0], NULL, 1, "ponger", FS_MSG_PING, &ping(5)->base, 2000, on_answer, &ans), FS_OK);
    cr_assert(pump_until(&ans.done, 2000));
    cr_assert_eq(ans.seq, 50);
}

Test(peer, worker_survives_garbage_and_oversized_frames)
{
    /* Replace worker 0's channel with one whose other end is a raw socket. */
    int raw[2];
    cr_assert_eq(fs_peer_socketpair(raw), 0);
    fs_peer_free(peers[0]);
    peers[0] = fs_peer_new(ws[0], raw[1], on_peer_close, (void *)(intptr_t)0);
    fs_actor_spawn(ws[0], &(fs_actor_spec_t){.name = "collector", .behaviour = collector});

    write_frame(raw[0], "\x08\x96", 2);           /* truncated varint: not an envelope */
    write_frame(raw[0], "garbage!garbage!", 16);  /* not an envelope either */
    write_frame(raw[0], NULL, 0);                 /* empty: an envelope with no target */
    Fs__Runtime__Envelope env = FS__RUNTIME__ENVELOPE__INIT;
    env.has_target_worker = true, env.target_worker = 0;
    env.target_actor = "collector";
    env.has_type = true, env.type = FS_MSG_PING;
    env.payload_type = "fs.runtime.Pong"; /* lies about its type */
    uint8_t buf[256];
    write_frame(raw[0], buf, (uint32_t)pack_env(&env, buf));
    env.payload_type = NULL;
    env.kind = FS__RUNTIME__ENVELOPE__KIND__REPLY, env.has_kind = true;
    env.has_correlation_id = true, env.correlation_id = 12345; /* answers nothing we asked */
    write_frame(raw[0], buf, (uint32_t)pack_env(&env, buf));
    pump_for(50);
    fs_peer_stats_t ps;
    fs_peer_get_stats(peers[0], &ps);
    cr_assert_eq(ps.frames_in, 5);
    cr_assert_eq(ps.bad_frames, 2);
    cr_assert_eq(ps.unknown_actor, 1);
    cr_assert_eq(ps.unknown_type, 1);
    cr_assert_eq(inbox.n, 0);
    fs_actor_system_stats_t st;
    fs_actor_system_stats(ws[0], &st);
    cr_assert_eq(st.late_replies, 1);

    uint32_t huge = htonl(0xfffffff0u);
    cr_assert_eq(write(raw[0], &huge, 4), 4);
    pump_for(30);
    fs_peer_get_stats(peers[0], &ps);
    cr_assert_eq(ps.oversized, 1);
    cr_assert_not(ps.connected);
    cr_assert_eq(peer_closed[0], 1);
    cr_assert_eq(fs_peer_send(peers[0], NULL, 1, "x", FS_MSG_PING, &ping(1)->base), FS_EUNAVAIL);
    close(raw[0]);
}

/* ---- two real processes -------------------------------------------------------------------- */

static bool child_stop;

static void child_on_close(fs_peer_t *p, void *arg)
{
    child_stop = true;
    event_base_loopexit(arg, NULL);
}

static int child_ok, child_bad;

static void child_answer(int status, fs_msg_t *reply, void *arg)
{
    Fs__Runtime__Pong *p = reply ? fs_msg_body(reply, &fs__runtime__pong__descriptor) : NULL;
    if (status == FS_OK && p && p->seq == (uint64_t)(intptr_t)arg * 10 && p->worker == 1)
        child_ok++;
    else
        child_bad++;
    if (child_ok + child_bad == 100)
        event_base_loopexit(fs_actor_system_base(ws[0]), NULL);
}

/* Worker `index` of the forked pair; never returns. */
static void run_child(int index, int fd)
{
    struct event_base *b = event_base_new();
    fs_actor_system_t *s = fs_actor_system_new(b, &(fs_actor_system_opts_t){.worker = index});
    fs_peer_t *p = fs_peer_new(s, fd, child_on_close, b);
    int code = 0;
    if (index == 1) {
        fs_actor_spawn(s, &(fs_actor_spec_t){.name = "ponger", .behaviour = ponger});
        event_base_dispatch(b); /* until the master closes the channel */
        code = child_stop ? 0 : 3;
    } else {
        ws[0] = s;
        for (int i = 1; i <= 100; i++)
            if (fs_peer_ask(p, NULL, 1, "ponger", FS_MSG_PING, &ping((uint64_t)i)->base, 5000, child_answer,
                            (void *)(intptr_t)i) != FS_OK)
                child_bad++;
        event_base_dispatch(b);
        code = child_ok == 100 && child_bad == 0 ? 0 : 4;
    }
    fs_peer_free(p);
    fs_actor_system_free(s);
    event_base_free(b);
    _exit(code);
}

static struct event_base *master_base;
static pid_t kids[2];
static int kid_status[2] = {-1, -1};

static void reap(evutil_socket_t fd, short w, void *arg)
{
    for (int i = 0; i < 2; i++) {
        int st;
        if (kid_status[i] < 0 && waitpid(kids[i], &st, WNOHANG) == kids[i]) {
            kid_status[i] = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
            if (i == 0)
                fs_peer_hub_detach(arg, 1); /* worker 0 is done: let worker 1 see EOF */
        }
    }
    if (kid_status[0] >= 0 && kid_status[1] >= 0)
        event_base_loopexit(master_base, NULL);
}

Test(peer_fork, round_trip_between_two_processes, .timeout = 60)
{
    signal(SIGPIPE, SIG_IGN);
    fs_runtime_register_types();
    master_base = event_base_new();
    fs_peer_hub_t *h = fs_peer_hub_new(master_base, 2);
    int pairs[2][2];
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(fs_peer_socketpair(pairs[i]), 0);
        kids[i] = fork();
        cr_assert_neq(kids[i], -1);
        if (kids[i] == 0) {
            fs_peer_hub_close_in_child(h); /* master ends of earlier slots */
            close(pairs[i][0]);
            for (int j = 0; j < i; j++)
                close(pairs[j][1]);
            run_child(i, pairs[i][1]);
        }
        close(pairs[i][1]);
        cr_assert_eq(fs_peer_hub_attach(h, i, pairs[i][0]), 0);
    }
    struct event *t = event_new(master_base, -1, EV_PERSIST, reap, h);
    struct timeval tv = {0, 10000};
    event_add(t, &tv);
    event_base_dispatch(master_base);
    event_free(t);
    fs_peer_hub_stats_t hs;
    fs_peer_hub_get_stats(h, &hs);
    fs_peer_hub_free(h);
    event_base_free(master_base);
    cr_assert_eq(kid_status[0], 0, "asking worker exit status %d", kid_status[0]);
    cr_assert_eq(kid_status[1], 0, "answering worker exit status %d", kid_status[1]);
    cr_assert_eq(hs.routed, 200, "100 asks and 100 replies through the hub, got %llu", (unsigned long long)hs.routed);
}
