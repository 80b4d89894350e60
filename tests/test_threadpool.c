/* Thread pool: work runs off the loop thread, completions on it, the queue is bounded, free
 * drains everything. */
#include "runtime/threadpool.h"

#include <criterion/criterion.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

static struct event_base *base;
static pthread_t loop_thread;

static void setup(void)
{
    base = event_base_new();
    loop_thread = pthread_self();
}

static void teardown(void)
{
    event_base_free(base);
}

TestSuite(threadpool, .init = setup, .fini = teardown, .timeout = 30);

typedef struct {
    pthread_t work_thread, after_thread;
    bool worked, after_ran;
    int *completed;
} job_t;

static void work(void *arg)
{
    job_t *j = arg;
    j->work_thread = pthread_self();
    usleep(1000);
    j->worked = true;
}

static void after(void *arg)
{
    job_t *j = arg;
    j->after_thread = pthread_self();
    j->after_ran = true;
    if (j->completed)
        (*j->completed)++;
}

static void noop(evutil_socket_t fd, short w, void *a) {}

static void run_until_count(int *count, int want, int ms)
{
    struct event *hb = event_new(base, -1, EV_PERSIST, noop, NULL);
    struct timeval tv = {0, 5000};
    event_add(hb, &tv);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        event_base_loop(base, EVLOOP_ONCE);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (*count < want && (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
    event_free(hb);
}

Test(threadpool, completion_runs_on_the_loop_thread)
{
    fs_threadpool_t *p = fs_threadpool_new(base, 3);
    cr_assert_not_null(p);
    int completed = 0;
    job_t jobs[20] = {0};
    for (int i = 0; i < 20; i++) {
        jobs[i].completed = &completed;
        cr_assert_eq(fs_threadpool_submit(p, work, after, &jobs[i]), 0);
    }
    cr_assert_eq(fs_threadpool_pending(p), 20);
    run_until_count(&completed, 20, 5000);
    cr_assert_eq(completed, 20);
    for (int i = 0; i < 20; i++) {
        cr_assert(jobs[i].worked);
        cr_assert(!pthread_equal(jobs[i].work_thread, loop_thread), "work ran off the loop thread");
        cr_assert(pthread_equal(jobs[i].after_thread, loop_thread), "completion ran on the loop thread");
    }
    cr_assert_eq(fs_threadpool_pending(p), 0);
    fs_threadpool_free(p);
}

static atomic_int gate; /* 0 = blocked */

static void blocked_work(void *arg)
{
    while (!atomic_load(&gate))
        usleep(200);
}

static void count_after(void *arg)
{
    (*(int *)arg)++;
}

Test(threadpool, bounded_queue_refuses_then_recovers)
{
    fs_threadpool_t *p = fs_threadpool_new(base, 2);
    int completed = 0, accepted = 0;
    atomic_store(&gate, 0);
    while (fs_threadpool_submit(p, blocked_work, count_after, &completed) == 0 && accepted < 100000)
        accepted++;
    cr_assert_eq(accepted, 1024, "bound is 1024 pending jobs, got %d", accepted);
    cr_assert_eq(fs_threadpool_pending(p), 1024);
    cr_assert_eq(fs_threadpool_submit(p, blocked_work, count_after, &completed), -1);
    atomic_store(&gate, 1);
    run_until_count(&completed, accepted, 10000);
    cr_assert_eq(completed, accepted);
    cr_assert_eq(fs_threadpool_pending(p), 0);
    cr_assert_eq(fs_threadpool_submit(p, blocked_work, count_after, &completed), 0);
    fs_threadpool_free(p);
    cr_assert_eq(completed, accepted + 1);
}

Test(threadpool, free_finishes_queued_work_and_runs_completions)
{
    fs_threadpool_t *p = fs_threadpool_new(base, 1);
    int completed = 0;
    job_t jobs[50] = {0};
    for (int i = 0; i < 50; i++) {
        jobs[i].completed = &completed;
        cr_assert_eq(fs_threadpool_submit(p, work, after, &jobs[i]), 0);
    }
    /* No loop iteration at all: free must still run every job and every completion, here. */
    fs_threadpool_free(p);
    cr_assert_eq(completed, 50);
    for (int i = 0; i < 50; i++) {
        cr_assert(jobs[i].worked);
        cr_assert(pthread_equal(jobs[i].after_thread, loop_thread));
    }
}

static fs_threadpool_t *chain_pool;
static int chain_left, chain_done;

static void chain_after(void *arg)
{
    chain_done++;
    if (--chain_left > 0)
        cr_assert_eq(fs_threadpool_submit(chain_pool, work, chain_after, arg), 0);
}

Test(threadpool, completions_may_submit_more_work)
{
    chain_pool = fs_threadpool_new(base, 2);
    job_t j = {0};
    chain_left = 5;
    cr_assert_eq(fs_threadpool_submit(chain_pool, work, chain_after, &j), 0);
    run_until_count(&chain_done, 2, 5000);
    fs_threadpool_free(chain_pool); /* the rest of the chain runs inside free */
    cr_assert_eq(chain_done, 5);
}

Test(threadpool, null_completion_is_allowed)
{
    fs_threadpool_t *p = fs_threadpool_new(base, 1);
    job_t j = {0};
    cr_assert_eq(fs_threadpool_submit(p, work, NULL, &j), 0);
    fs_threadpool_free(p);
    cr_assert(j.worked);
}
