#include "runtime/master.h"

#include "runtime/alloc.h"
#include "runtime/config.h"
#include "runtime/log.h"
#include "runtime/peer.h"
#include "runtime/shared.h"
#include "runtime/worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Restart backoff: the first replacement is immediate (a lone crash should cost queued
 * connections as little as possible); repeated crashes back off exponentially so a worker
 * that cannot start does not spin the machine. A worker that lived STABLE_S resets it. */
#define RESTART_BACKOFF_FIRST_MS 100
#define RESTART_BACKOFF_MAX_MS 5000
#define STABLE_S 10.0
#define KILL_GRACE_MS 2000
#define MAX_RETIRING 64

typedef struct slot {
    int index;
    pid_t pid;
    int http_fd;
    int rpc_fd;
    double started_at;
    int backoff_ms;
    struct event *restart_timer;
} slot_t;

static struct {
    struct event_base *base;
    slot_t *slots;
    int n;
    pid_t retiring[MAX_RETIRING]; /* old workers draining after a reload */
    int n_retiring;
    bool shutting_down;
    int sigint_count;
    struct event *kill_timer;
    fs_master_reload_fn reload;
    fs_peer_hub_t *hub; /* routes frames between workers */
} m;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One listening socket per slot, all bound to the same address with SO_REUSEPORT: the
 * kernel spreads new connections over them, and a slot's queue outlives its worker. */
static int open_listener(const char *setting, const char *addr, int port)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        len = sizeof *in4;
    } else if (inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        len = sizeof *in6;
    } else {
        fs_error("%s: '%s' is not an IPv4 or IPv6 address", setting, addr);
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 4096) != 0) {
        fs_error("cannot listen on %s:%d: %s", addr, port, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static void spawn(slot_t *s);

static void on_restart_timer(evutil_socket_t fd, short what, void *arg)
{
    slot_t *s = arg;
    if (!m.shutting_down && s->pid == 0)
        spawn(s);
}

static void spawn(slot_t *s)
{
    int peer[2];
    if (fs_peer_socketpair(peer) != 0) {
        fs_error("socketpair failed for worker %d: %s; retrying", s->index, strerror(errno));
        struct timeval tv = {1, 0};
        evtimer_add(s->restart_timer, &tv);
        return;
    }
    fs_peer_hub_attach(m.hub, s->index, peer[0]);
    pid_t pid = fork();
    if (pid < 0) {
        fs_error("fork failed for worker %d: %s; retrying", s->index, strerror(errno));
        close(peer[1]);
        fs_peer_hub_detach(m.hub, s->index);
        struct timeval tv = {1, 0};
        evtimer_add(s->restart_timer, &tv);
        return;
    }
    if (pid == 0) {
        /* The child must not touch the master's event_base: its epoll instance is shared
         * with the master across fork, so removing events here would remove them there. */
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        for (int sig = 1; sig < NSIG; sig++)
            if (sig != SIGKILL && sig != SIGSTOP)
                sigaction(sig, &dfl, NULL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        fs_peer_hub_close_in_child(m.hub);
        for (int i = 0; i < m.n; i++) {
            if (i == s->index)
                continue;
            close(m.slots[i].http_fd);
            if (m.slots[i].rpc_fd >= 0)
                close(m.slots[i].rpc_fd);
        }
        fs_worker_spec_t spec = {
            .index = s->index,
            .count = m.n,
            .http_fd = s->http_fd,
            .rpc_fd = s->rpc_fd,
            .peer_fd = peer[1],
            .master_pid = getppid(),
        };
        _exit(fs_worker_run(&spec));
    }
    close(peer[1]);
    s->pid = pid;
    s->started_at = now_s();
    fs_info("worker %d started (pid %d)", s->index, (int)pid);
}

static slot_t *slot_of(pid_t pid)
{
    for (int i = 0; i < m.n; i++)
        if (m.slots[i].pid == pid)
            return &m.slots[i];
    return NULL;
}

static bool forget_retiring(pid_t pid)
{
    for (int i = 0; i < m.n_retiring; i++)
        if (m.retiring[i] == pid) {
            m.retiring[i] = m.retiring[--m.n_retiring];
            return true;
        }
    return false;
}

static int live_children(void)
{
    int n = m.n_retiring;
    for (int i = 0; i < m.n; i++)
        n += m.slots[i].pid > 0;
    return n;
}

static void describe_exit(int status, char *buf, size_t size)
{
    if (WIFSIGNALED(status))
        snprintf(buf, size, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
}

static void on_worker_exit(slot_t *s, int status)
{
    char why[64];
    describe_exit(status, why, sizeof why);
    s->pid = 0;
    fs_peer_hub_detach(m.hub, s->index);
    if (m.shutting_down) {
        fs_info("worker %d %s", s->index, why);
        return;
    }
    double lived = now_s() - s->started_at;
    if (lived >= STABLE_S)
        s->backoff_ms = 0;
    int delay = s->backoff_ms;
    s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : RESTART_BACKOFF_FIRST_MS;
    if (s->backoff_ms > RESTART_BACKOFF_MAX_MS)
        s->backoff_ms = RESTART_BACKOFF_MAX_MS;
    atomic_fetch_add(&fs_shared->restarts_total, 1);
    atomic_fetch_add(&fs_shared->restarts[s->index], 1);
    fs_warn("worker %d %s after %.1f s; restarting in %d ms", s->index, why, lived, delay);
    if (delay == 0) {
        spawn(s);
    } else {
        struct timeval tv = {delay / 1000, (delay % 1000) * 1000};
        evtimer_add(s->restart_timer, &tv);
    }
}

static void on_sigchld(evutil_socket_t sig, short what, void *arg)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        slot_t *s = slot_of(pid);
        if (s)
            on_worker_exit(s, status);
        else if (forget_retiring(pid))
            fs_info("retired worker (pid %d) finished draining", (int)pid);
    }
    if (m.shutting_down && live_children() == 0)
        event_base_loopbreak(m.base);
}

static void signal_children(int sig)
{
    for (int i = 0; i < m.n; i++)
        if (m.slots[i].pid > 0)
            kill(m.slots[i].pid, sig);
    for (int i = 0; i < m.n_retiring; i++)
        kill(m.retiring[i], sig);
}

static void on_kill_timer(evutil_socket_t fd, short what, void *arg)
{
    fs_warn("workers did not drain in time; killing %d", live_children());
    signal_children(SIGKILL);
}

static void begin_shutdown(const char *why)
{
    if (m.shutting_down)
        return;
    m.shutting_down = true;
    fs_info("%s: draining workers (deadline %d ms)", why, fs_cfg->shutdown_timeout_ms);
    for (int i = 0; i < m.n; i++)
        evtimer_del(m.slots[i].restart_timer);
    signal_children(SIGTERM);
    int ms = fs_cfg->shutdown_timeout_ms + KILL_GRACE_MS;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(m.kill_timer, &tv);
    if (live_children() == 0)
        event_base_loopbreak(m.base);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    if (sig == SIGINT && ++m.sigint_count > 1) {
        fs_warn("second interrupt: stopping at once");
        signal_children(SIGKILL);
        return;
    }
    begin_shutdown(sig == SIGINT ? "interrupt" : "SIGTERM");
}

/* Reload: new configuration, then every slot gets a fresh worker while the old one drains.
 * Both share the slot's listening socket meanwhile, so no connection is refused. */
static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    if (m.shutting_down)
        return;
    if (m.reload && m.reload() != 0) {
        fs_error("reload refused: the new configuration is invalid; keeping the running one");
        return;
    }
    fs_info("reloading: replacing %d workers", m.n);
    for (int i = 0; i < m.n; i++) {
        slot_t *s = &m.slots[i];
        if (s->pid > 0 && m.n_retiring < MAX_RETIRING) {
            m.retiring[m.n_retiring++] = s->pid;
            kill(s->pid, SIGTERM);
            s->pid = 0;
        }
        spawn(s);
    }
}

static int open_slots(void)
{
    m.slots = fs_calloc((size_t)m.n, sizeof(slot_t));
    for (int i = 0; i < m.n; i++) /* close_slots after a failure must not close fd 0 */
        m.slots[i].http_fd = m.slots[i].rpc_fd = -1;
    for (int i = 0; i < m.n; i++) {
        slot_t *s = &m.slots[i];
        s->index = i;
        s->http_fd = open_listener("BIND_ADDRESS", fs_cfg->bind_address, fs_cfg->port);
        if (s->http_fd < 0)
            return -1;
        s->rpc_fd = open_listener("RPC_BIND_ADDRESS", fs_cfg->rpc_bind_address, fs_cfg->rpc_port);
        if (s->rpc_fd < 0)
            return -1;
        s->restart_timer = evtimer_new(m.base, on_restart_timer, s);
    }
    return 0;
}

static void close_slots(void)
{
    for (int i = 0; i < m.n; i++) {
        if (m.slots[i].http_fd >= 0)
            close(m.slots[i].http_fd);
        if (m.slots[i].rpc_fd >= 0)
            close(m.slots[i].rpc_fd);
        if (m.slots[i].restart_timer)
            event_free(m.slots[i].restart_timer);
    }
    free(m.slots);
    m.slots = NULL;
}

int fs_master_run(fs_master_reload_fn reload)
{
    memset(&m, 0, sizeof m);
    m.reload = reload;
    m.n = fs_config_worker_count(fs_cfg);
    if (m.n > FS_MAX_WORKERS)
        m.n = FS_MAX_WORKERS;
    fs_log_set_role("master");
    fs_shared_create();
    atomic_store(&fs_shared->worker_count, m.n);
    signal(SIGPIPE, SIG_IGN);

    m.base = event_base_new();
    m.hub = fs_peer_hub_new(m.base, m.n);
    if (open_slots() != 0) {
        fs_peer_hub_free(m.hub);
        close_slots();
        event_base_free(m.base);
        return 1;
    }
    struct event *sigs[] = {
        evsignal_new(m.base, SIGTERM, on_stop_signal, NULL), evsignal_new(m.base, SIGINT, on_stop_signal, NULL),
        evsignal_new(m.base, SIGHUP, on_sighup, NULL), evsignal_new(m.base, SIGCHLD, on_sigchld, NULL)};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        evsignal_add(sigs[i], NULL);
    m.kill_timer = evtimer_new(m.base, on_kill_timer, NULL);

    fs_info("flightshark %s serving on %s:%d (RPC %s:%d) with %d workers", FS_VERSION, fs_cfg->bind_address,
            fs_cfg->port, fs_cfg->rpc_bind_address, fs_cfg->rpc_port, m.n);
    for (int i = 0; i < m.n; i++)
        spawn(&m.slots[i]);
    event_base_dispatch(m.base);

    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        event_free(sigs[i]);
    event_free(m.kill_timer);
    fs_peer_hub_free(m.hub);
    close_slots();
    event_base_free(m.base);
    fs_info("stopped");
    return 0;
}
