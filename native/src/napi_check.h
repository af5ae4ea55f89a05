/*
 * The napi_status checks and property setters (napi_check.c) shared by the
 * files that define JavaScript functions (binding.c, loop.c, paths.c).
 */
#ifndef KMSVOL_NAPI_CHECK_H
#define KMSVOL_NAPI_CHECK_H
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>

/* Throw for a failed napi call (unless an exception is already pending): a TypeError for a value of the wrong type. */
void throw_failed(napi_env env, napi_status st, const char *what);
bool ok_or_throw(napi_env env, napi_status st, const char *what);
/* Throw an Error with `code`; returns NULL for `return throw_code(...)`. */
napi_value throw_code(napi_env env, const char *code, const char *msg);
bool set_double(napi_env env, napi_value o, const char *name, double d);
bool set_int(napi_env env, napi_value o, const char *name, int32_t i);
bool set_string(napi_env env, napi_value o, const char *name, const char *s);

/* In a function returning napi_value: on failure throw (see throw_failed) and return NULL. */
#define CHECK(env, call)                                                                                                                                       \
  do {                                                                                                                                                         \
    napi_status st_ = (call);                                                                                                                                  \
    if (st_ != napi_ok) {                                                                                                                                      \
      throw_failed((env), st_, #call);                                                                                                                         \
      return NULL;                                                                                                                                             \
    }                                                                                                                                                          \
  } while (0)

/* Elsewhere: true when the call succeeded; otherwise it has thrown (an uncaught exception in a completion). */
#define OK(env, call) ok_or_throw((env), (call), #call)

#endif
