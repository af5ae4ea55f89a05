/*
 * The napi_status checks and property setters shared by the files that
 * define JavaScript functions (binding.c, loop.c, paths.c); see napi_check.h.
 * They call N-API only, never back into those files.
 */
#include "napi_check.h"
#include <stdio.h>

/* Throw for a failed napi call (unless an exception is already pending): a TypeError for a value of the wrong type. */
void throw_failed(napi_env env, napi_status st, const char *what) {
  const napi_extended_error_info *info = NULL;
  const char *why = napi_get_last_error_info(env, &info) == napi_ok && info && info->error_message ? info->error_message : "failed";
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || pending) return;
  char msg[320];
  snprintf(msg, sizeof msg, "%s: %s", what, why);
  int type = st == napi_number_expected || st == napi_string_expected || st == napi_boolean_expected || st == napi_object_expected ||
             st == napi_arraybuffer_expected || st == napi_invalid_arg;
  if (type)
    napi_throw_type_error(env, "KMSVOL_ARG", msg);
  else
    napi_throw_error(env, "KMSVOL_NAPI", msg);
}

bool ok_or_throw(napi_env env, napi_status st, const char *what) {
  if (st == napi_ok) return true;
  throw_failed(env, st, what);
  return false;
}

napi_value throw_code(napi_env env, const char *code, const char *msg) {
  napi_throw_error(env, code, msg);
  return NULL;
}

/* ---------- property setters ---------- */

bool set_double(napi_env env, napi_value o, const char *name, double d) {
  napi_value v;
  return OK(env, napi_create_double(env, d, &v)) && OK(env, napi_set_named_property(env, o, name, v));
}

bool set_int(napi_env env, napi_value o, const char *name, int32_t i) {
  napi_value v;
  return OK(env, napi_create_int32(env, i, &v)) && OK(env, napi_set_named_property(env, o, name, v));
}

bool set_string(napi_env env, napi_value o, const char *name, const char *s) {
  napi_value v;
  return OK(env, napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v)) && OK(env, napi_set_named_property(env, o, name, v));
}
