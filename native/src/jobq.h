/*
 * The binding's async jobs on the libuv thread pool (jobq.c): `run` on a pool
 * thread, then `settle` on the JavaScript thread, which settles `deferred` and
 * frees the job. Only the binding (binding.c) queues jobs.
 */
#ifndef KMSVOL_JOBQ_H
#define KMSVOL_JOBQ_H

#ifndef NAPI_VERSION
#define NAPI_VERSION 8
#endif
#include <node_api.h>

typedef struct qjob {
  struct qjob *next;
  void (*run)(struct qjob *);
  void (*settle)(napi_env, struct qjob *);
  napi_deferred deferred;
} qjob;

/* JS thread: queue a job; *promise settles when it has run. */
napi_status jobq_submit(napi_env env, qjob *j, void (*run)(qjob *), void (*settle)(napi_env, qjob *), napi_value *promise);

#endif
