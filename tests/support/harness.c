#include "tests/support/harness.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char *data;
    size_t len;
} buf_t;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    buf_t *b = userdata;
    size_t n = size * nmemb;
    b->data = realloc(b->data, b->len + n + 1);
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

int fs_test_http(const char *method, const char *url, const char *body, const char *const *headers,
                 fs_test_resp_t *out)
{
    memset(out, 0, sizeof *out);
    CURL *c = curl_easy_init();
    buf_t b = {0}, h = {0};
    struct curl_slist *hl = NULL;
    for (const char *const *p = headers; p && *p; p++)
        hl = curl_slist_append(hl, *p);
    if (body && !headers)
        hl = curl_slist_append(hl, "Content-Type: application/json");
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    else
        snprintf(out->error, sizeof out->error, "%s", curl_easy_strerror(rc));
    out->body = b.data ? b.data : calloc(1, 1);
    out->len = b.len;
    out->headers = h.data ? h.data : calloc(1, 1);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return rc == CURLE_OK ? 0 : -1;
}

void fs_test_resp_free(fs_test_resp_t *r)
{
    free(r->body);
    free(r->headers);
    r->body = r->headers = NULL;
}

json_t *fs_test_resp_json(const fs_test_resp_t *r)
{
    return json_loadb(r->body, r->len, 0, NULL);
}

const char *fs_test_resp_header(const fs_test_resp_t *r, const char *name, char *buf, size_t size)
{
    size_t n = strlen(name);
    for (const char *line = r->headers; line && *line;) {
        const char *end = strstr(line, "\r\n");
        if (!end)
            end = line + strlen(line);
        if ((size_t)(end - line) > n && strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            snprintf(buf, size, "%.*s", (int)(end - v), v);
            return buf;
        }
        line = *end ? end + 2 : end;
    }
    return NULL;
}

char *fs_test_raw(int port, const char *data, size_t len, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    buf_t b = {0};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return strdup("");
    }
    size_t sent = 0;
    while (sent < len) {
        ssize_t w = send(fd, data + sent, len - sent, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        sent += (size_t)w;
    }
    double deadline = fs_test_now_ms() + timeout_ms;
    for (;;) {
        double left = deadline - fs_test_now_ms();
        if (left <= 0)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0)
            break;
        char chunk[4096];
        ssize_t r = recv(fd, chunk, sizeof chunk, 0);
        if (r <= 0)
            break;
        on_data(chunk, 1, (size_t)r, &b);
    }
    close(fd);
    return b.data ? b.data : strdup("");
}

int fs_test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, (struct sockaddr *)&a, sizeof a);
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    close(fd);
    return ntohs(a.sin_port);
}

const char *fs_test_env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        cr_assert_fail("%s is not set: run the suite through `make test`", name);
    return v;
}

double fs_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int fs_test_sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

int fs_test_server_start(fs_test_server_t *s, int workers, const char *const *extra_env)
{
    memset(s, 0, sizeof *s);
    const char *bin = fs_test_env("FS_BINARY");
    s->port = fs_test_free_port();
    do
        s->rpc_port = fs_test_free_port();
    while (s->rpc_port == s->port);
    snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->port);
    snprintf(s->log_path, sizeof s->log_path, "/tmp/flightshark-test-server-%d-%d.log", (int)getpid(), s->port);

    char port[16], rpc[16], nworkers[16];
    snprintf(port, sizeof port, "%d", s->port);
    snprintf(rpc, sizeof rpc, "%d", s->rpc_port);
    snprintf(nworkers, sizeof nworkers, "%d", workers);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(s->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
        for (const char *const *e = extra_env; e && *e; e++)
            putenv((char *)*e);
        setenv("BIND_ADDRESS", "127.0.0.1", 0);
        execl(bin, bin, "serve", "--port", port, "--rpc-port", rpc, "--workers", nworkers, (char *)NULL);
        _exit(127);
    }
    s->pid = pid;
    char url[128];
    snprintf(url, sizeof url, "%s/health/live", s->url);
    double deadline = fs_test_now_ms() + 20000;
    while (fs_test_now_ms() < deadline) {
        fs_test_resp_t r;
        if (fs_test_http("GET", url, NULL, NULL, &r) == 0 && r.status == 200) {
            fs_test_resp_free(&r);
            return 0;
        }
        fs_test_resp_free(&r);
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            s->pid = 0;
            return -1;
        }
        usleep(50000);
    }
    return -1;
}

/* Under `make test-asan` the server's processes report sanitizer findings on stderr, which
 * goes to the log: a finding there fails the test that ran the server. */
static void assert_log_clean(const char *path)
{
    static const char *const markers[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"};
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[4096];
    while (fgets(line, sizeof line, f))
        for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++)
            if (strstr(line, markers[i])) {
                fclose(f);
                cr_assert_fail("the server reported a sanitizer finding (%s): %s", path, line);
            }
    fclose(f);
}

int fs_test_server_stop(fs_test_server_t *s)
{
    if (s->pid <= 0)
        return -1;
    kill(s->pid, SIGTERM);
    int st = 0;
    double deadline = fs_test_now_ms() + 15000;
    while (waitpid(s->pid, &st, WNOHANG) == 0) {
        if (fs_test_now_ms() > deadline) {
            kill(-s->pid, SIGKILL);
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &st, 0);
            break;
        }
        usleep(20000);
    }
    s->pid = 0;
    assert_log_clean(s->log_path);
    return st;
}

int fs_test_server_workers(const fs_test_server_t *s, pid_t *out, int max)
{
    int n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d)) && n < max) {
        pid_t pid = (pid_t)atoi(e->d_name);
        if (pid <= 0)
            continue;
        char path[64], line[512];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(line, sizeof line, f)) {
            const char *p = strrchr(line, ')');
            int ppid = 0;
            char state;
            if (p && sscanf(p + 2, "%c %d", &state, &ppid) == 2 && ppid == s->pid && state != 'Z')
                out[n++] = pid;
        }
        fclose(f);
    }
    if (d)
        closedir(d);
    return n;
}
