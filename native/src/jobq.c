/*
 * The binding's async engine jobs (XTS batches, recrypt) on the libuv thread pool, with coalesced completions.
 *
 * Queuing one napi_async_work per job costs a wake-up of the JavaScript thread
 * per job, and on a machine with as many busy pool threads as cores every
 * wake-up preempts one of them: on this project's 2-vCPU VMs that hand-off
 * was ~50 µs per job, a quarter of a 1 MiB batch's crypto. Here jobs wait in
 * one FIFO per environment and a few "drainer" works on the libuv pool (at
 * most UV_THREADPOOL_SIZE, at most one per waiting job) run them one after
 * the other. A finished job is reported to JavaScript at once when the pool
 * is about to run dry (fewer jobs waiting than drainers running), and
 * otherwise rides along with the next report, like interrupt coalescing on a
 * NIC or an NVMe queue. No report waits on a timer: a job that finishes
 * while others are still waiting is reported no later than those. A drainer
 * returns its pool thread to libuv after 5 ms of jobs, so file-system work
 * queued behind it waits at most that long, and waits up to 0.5 ms for the
 * next job before leaving an empty queue (JavaScript usually queues it within
 * microseconds of a report; a new drainer would cost another wake-up).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>
#include "jobq.h"

#define DRAIN_QUOTA_NS 5000000 /* a drainer gives its pool thread back after 5 ms of jobs */
#define LINGER_NS      500000  /* and waits this long for the next job before leaving an empty queue */
#define REPORT_BATCH   16

typedef struct {
  pthread_mutex_t mu;
  qjob *head, *tail; /* waiting to run */
  size_t waiting;
  qjob *done; /* finished, not yet settled (LIFO; order does not matter) */
  size_t ndone;
  int drainers;  /* drainer works queued or running */
  int lingering; /* drainers waiting on `more` for a job */
  pthread_cond_t more;
  int max_drainers;
  int signalled;      /* a report is on its way to the JS thread */
  size_t outstanding; /* JS thread only: submitted and not settled */
  napi_threadsafe_function report;
} jobq;

/* Called with q->mu held after a job finished: report now, or let it ride along? */
static int should_report(jobq *q) {
  if (q->signalled || !q->ndone) return 0;
  return q->waiting < (size_t)q->drainers || q->ndone >= REPORT_BATCH;
}

/* Called with q->mu held: send a report to the JS thread (dropping the lock for the call). */
static void report_locked(jobq *q) {
  q->signalled = 1;
  pthread_mutex_unlock(&q->mu);
  /* It fails only when the environment is closing: then no promise will be settled anyway. */
  (void)napi_call_threadsafe_function(q->report, NULL, napi_tsfn_nonblocking);
  pthread_mutex_lock(&q->mu);
}

typedef struct {
  jobq *q;
  napi_async_work work;
} drainer;

static void drain_execute(napi_env env, void *data) {
  (void)env;
  jobq *q = ((drainer *)data)->q;
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pthread_mutex_lock(&q->mu);
  for (;;) {
    if (!q->head) {
      /* The JS thread usually queues the next job within a few µs of a report: wait for it rather than hand the thread back. */
      struct timespec until;
      clock_gettime(CLOCK_MONOTONIC, &until);
      until.tv_nsec += LINGER_NS;
      if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
      }
      q->lingering++;
      while (!q->head && pthread_cond_timedwait(&q->more, &q->mu, &until) == 0) {}
      q->lingering--;
      if (!q->head) break;
    }
    qjob *j = q->head;
    q->head = j->next;
    if (!q->head) q->tail = NULL;
    q->waiting--;
    pthread_mutex_unlock(&q->mu);
    j->run(j);
    pthread_mutex_lock(&q->mu);
    j->next = q->done;
    q->done = j;
    q->ndone++;
    if (should_report(q)) report_locked(q);
    clock_gettime(CLOCK_MONOTONIC, &t);
    if ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) >= DRAIN_QUOTA_NS) break;
  }
  q->drainers--;
  if (q->ndone && !q->signalled) report_locked(q);
  pthread_mutex_unlock(&q->mu);
}

static void launch_drainers(napi_env env, jobq *q);

static void drain_complete(napi_env env, napi_status st, void *data) {
  (void)st; /* never cancelled: drainers are not cancelled once queued */
  drainer *d = data;
  (void)napi_delete_async_work(env, d->work); /* a failure only leaks the work object */
  launch_drainers(env, d->q);
  free(d);
}

/* JS thread: start drainers while jobs wait that no drainer will reach soon. */
static void launch_drainers(napi_env env, jobq *q) {
  for (;;) {
    pthread_mutex_lock(&q->mu);
    int go = q->drainers < q->max_drainers && q->waiting > (size_t)q->drainers;
    if (go) q->drainers++;
    pthread_mutex_unlock(&q->mu);
    if (!go) return;
    napi_value name;
    drainer *d = malloc(sizeof *d);
    int ok = d != NULL;
    if (ok) {
      d->q = q;
      ok = napi_create_string_utf8(env, "kmsvol:engine", NAPI_AUTO_LENGTH, &name) == napi_ok &&
           napi_create_async_work(env, NULL, name, drain_execute, drain_complete, d, &d->work) == napi_ok;
      if (ok && napi_queue_async_work(env, d->work) != napi_ok) {
        (void)napi_delete_async_work(env, d->work);
        ok = 0;
      }
    }
    if (!ok) {
      free(d);
      pthread_mutex_lock(&q->mu);
      q->drainers--;
      pthread_mutex_unlock(&q->mu);
      return;
    }
  }
}

/* JS thread: settle every finished job (resolve or reject its promise). */
static void report_js(napi_env env, napi_value cb, void *ctx, void *data) {
  (void)cb;
  (void)data;
  jobq *q = ctx;
  if (!env) return; /* the environment is going away */
  pthread_mutex_lock(&q->mu);
  qjob *j = q->done;
  q->done = NULL;
  q->ndone = 0;
  q->signalled = 0;
  pthread_mutex_unlock(&q->mu);
  while (j) {
    qjob *next = j->next;
    j->settle(env, j);
    q->outstanding--;
    j = next;
  }
  /* Nothing outstanding: let the loop exit. A failure only keeps the process alive until the next job settles. */
  if (!q->outstanding) (void)napi_unref_threadsafe_function(env, q->report);
}

static void jobq_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  jobq *q = data;
  pthread_mutex_destroy(&q->mu);
  pthread_cond_destroy(&q->more);
  free(q);
}

static jobq *jobq_get(napi_env env) {
  jobq *q = NULL;
  if (napi_get_instance_data(env, (void **)&q) == napi_ok && q) return q;
  q = calloc(1, sizeof *q);
  if (!q) return NULL;
  pthread_mutex_init(&q->mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&q->more, &ca);
  pthread_condattr_destroy(&ca);
  const char *s = getenv("UV_THREADPOOL_SIZE");
  long n = s ? strtol(s, NULL, 10) : 4; /* libuv's default and its own reading of the variable */
  q->max_drainers = n < 1 ? 1 : n > 1024 ? 1024 : (int)n;
  napi_value name;
  if (napi_create_string_utf8(env, "kmsvol:engine-report", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, q, report_js, &q->report) != napi_ok) {
    jobq_finalize(env, q, NULL);
    return NULL;
  }
  if (napi_unref_threadsafe_function(env, q->report) != napi_ok || napi_set_instance_data(env, q, jobq_finalize, NULL) != napi_ok) {
    (void)napi_release_threadsafe_function(q->report, napi_tsfn_abort);
    jobq_finalize(env, q, NULL);
    return NULL;
  }
  return q;
}

napi_status jobq_submit(napi_env env, qjob *j, void (*run)(qjob *), void (*settle)(napi_env, qjob *), napi_value *promise) {
  jobq *q = jobq_get(env);
  if (!q) return napi_generic_failure;
  napi_status st = napi_create_promise(env, &j->deferred, promise);
  if (st != napi_ok) return st;
  /* Keep the loop alive while jobs are outstanding (the promise left unsettled if this fails is never handed out). */
  if (q->outstanding == 0 && (st = napi_ref_threadsafe_function(env, q->report)) != napi_ok) return st;
  q->outstanding++;
  j->run = run;
  j->settle = settle;
  j->next = NULL;
  pthread_mutex_lock(&q->mu);
  if (q->tail)
    q->tail->next = j;
  else
    q->head = j;
  q->tail = j;
  q->waiting++;
  if (q->lingering) pthread_cond_signal(&q->more);
  pthread_mutex_unlock(&q->mu);
  launch_drainers(env, q);
  return napi_ok;
}
