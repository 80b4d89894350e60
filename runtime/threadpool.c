/* Thread pool: a mutex-protected job queue served by N threads; finished jobs go to a done
 * list and an eventfd wakes the loop, whose callback runs the completions on the loop thread
 * (libuv's uv_queue_work posts back through uv_async_send the same way).
 *
 * `inflight` counts jobs from submit until their completion has run. Only the loop thread
 * touches it, so it needs no lock, and bounding it bounds all memory the pool holds. */
#include "runtime/threadpool.h"

#include "runtime/alloc.h"
#include "runtime/log.h"

#define POOL_THREAD_NICE 10

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

/* Jobs submitted but not yet completed: past this, submit refuses (the caller answers 503). */
#define FS_THREADPOOL_MAX_PENDING 1024

typedef struct job {
    fs_work_fn work;
    fs_after_work_fn after;
    void *arg;
    struct job *next;
} job_t;

typedef struct {
    job_t *head, *tail;
} jobq_t;

struct fs_threadpool {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    jobq_t queued, done;  /* both under lock */
    bool stopping;      /* under lock */
    pthread_t *threads;
    int nthreads;
    int efd;
    struct event *ev;
    size_t inflight;    /* loop thread only */
};

static void q_push(jobq_t *q, job_t *j)
{
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
}

static job_t *q_pop(jobq_t *q)
{
    job_t *j = q->head;
    if (j) {
        q->head = j->next;
        if (!q->head)
            q->tail = NULL;
    }
    return j;
}

static void wake_loop(fs_threadpool_t *p)
{
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: the loop will wake anyway. */
    while (write(p->efd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

/* Serves jobs until told to stop; keeps draining the queue after `stopping` so that free
 * finishes every queued job. */
static void *worker_main(void *arg)
{
    fs_threadpool_t *p = arg;
    /* Pool work (argon2 hashing, index builds) is throughput work; the loop thread answers
     * requests. On a machine with as many busy pool threads as cores, equal priority would
     * let hashing steal the loop's CPU and add milliseconds to every request, so pool threads
     * run at a lower scheduling priority (Linux applies nice per thread). */
    if (setpriority(PRIO_PROCESS, (id_t)gettid(), POOL_THREAD_NICE) != 0)
        fs_debug("thread pool: cannot lower thread priority: %s", strerror(errno));
    pthread_mutex_lock(&p->lock);
    for (;;) {
        job_t *j = q_pop(&p->queued);
        if (!j) {
            if (p->stopping)
                break;
            pthread_cond_wait(&p->ready, &p->lock);
            continue;
        }
        pthread_mutex_unlock(&p->lock);
        j->work(j->arg);
        pthread_mutex_lock(&p->lock);
        q_push(&p->done, j);
        wake_loop(p);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static void run_completions(fs_threadpool_t *p)
{
    pthread_mutex_lock(&p->lock);
    job_t *j = p->done.head;
    p->done.head = p->done.tail = NULL;
    pthread_mutex_unlock(&p->lock);
    while (j) {
        job_t *next = j->next;
        p->inflight--;
        if (j->after)
            j->after(j->arg);
        free(j);
        j = next;
    }
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    uint64_t n;
    while (read(fd, &n, sizeof n) < 0 && errno == EINTR)
        ;
    run_completions(arg);
}

fs_threadpool_t *fs_threadpool_new(struct event_base *base, int threads)
{
    fs_threadpool_t *p = FS_NEW(fs_threadpool_t);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->ready, NULL);
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->efd < 0)
        goto failed_eventfd;
    p->ev = event_new(base, p->efd, EV_READ | EV_PERSIST, on_wake, p);
    event_add(p->ev, NULL);
    p->nthreads = threads > 0 ? threads : 1;
    p->threads = fs_calloc((size_t)p->nthreads, sizeof *p->threads);
    for (int i = 0; i < p->nthreads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker_main, p) != 0) {
            p->nthreads = i;
            fs_threadpool_free(p);
            return NULL;
        }
    }
    return p;

failed_eventfd:
    fs_error("thread pool: eventfd: %s", strerror(errno));
    pthread_cond_destroy(&p->ready);
    pthread_mutex_destroy(&p->lock);
    free(p);
    return NULL;
}

int fs_threadpool_submit(fs_threadpool_t *pool, fs_work_fn work, fs_after_work_fn after, void *arg)
{
    if (pool->inflight >= FS_THREADPOOL_MAX_PENDING)
        return -1;
    job_t *j = FS_NEW(job_t);
    j->work = work;
    j->after = after;
    j->arg = arg;
    pool->inflight++;
    pthread_mutex_lock(&pool->lock);
    q_push(&pool->queued, j);
    pthread_cond_signal(&pool->ready);
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

size_t fs_threadpool_pending(const fs_threadpool_t *pool)
{
    return pool->inflight;
}

void fs_threadpool_free(fs_threadpool_t *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->ready);
    pthread_mutex_unlock(&pool->lock);
    for (int i = 0; i < pool->nthreads; i++)
        pthread_join(pool->threads[i], NULL);
    /* Every job has run; their completions may have submitted more work, which the joined
     * threads can no longer take, so run what is left here until nothing remains. */
    run_completions(pool);
    job_t *j;
    while ((j = q_pop(&pool->queued))) {
        j->work(j->arg);
        pool->inflight--;
        if (j->after)
            j->after(j->arg);
        free(j);
    }
    event_free(pool->ev);
    close(pool->efd);
    free(pool->threads);
    pthread_cond_destroy(&pool->ready);
    pthread_mutex_destroy(&pool->lock);
    free(pool);
}
