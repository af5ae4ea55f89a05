/*
 * libcryptsetup-token-kmsvol.so: cryptsetup's external token plugin
 * (CRYPTSETUP_TOKEN_1.0) for kmsvol images (docs/luks.md, docs/format.md).
 *
 * Open hands the token's JSON (public: wrapped blobs, ARN, context) on stdin
 * to one fixed helper, KMSVOL_TOKEN_HELPER (installed root-owned by
 * `kmsvol luks install-token-plugin`), which asks the KMS to Decrypt the
 * wrapped secret with kmsvol's own KMS client and writes the 32 secret bytes
 * back over a pipe. Those bytes live only in one mlock'd buffer that
 * cryptsetup returns through cryptsetup_token_buffer_free, which wipes it.
 *
 * Errors as the ABI reads them: -EINVAL a token this plugin cannot read,
 * -EPERM the KMS refused (the helper names the exception on stderr, e.g.
 * DisabledException), -ENOENT the KMS could not be asked (no helper, no KMS).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <libcryptsetup.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef KMSVOL_TOKEN_HELPER
#define KMSVOL_TOKEN_HELPER "/usr/libexec/kmsvol/token-helper"
#endif
#define TOKEN_VERSION 1
#define SECRET_LEN    32
/* The helper's exit status when the KMS refused (the CLI's service-error code). */
#define HELPER_REFUSED 254

#define EXPORT __attribute__((visibility("default")))

extern char **environ;

EXPORT const char *cryptsetup_token_version(void) { return "1.0.0"; }

static const char *str_field(json_object *o, const char *name) {
  json_object *v;
  return json_object_object_get_ex(o, name, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* 0 when the token is one this plugin opens; otherwise -EINVAL, saying why through crypt_log. */
static int check(struct crypt_device *cd, json_object *o) {
  json_object *v, *slots, *ctx;
  if (!o || !json_object_is_type(o, json_type_object)) {
    crypt_logf(cd, CRYPT_LOG_ERROR, "kmsvol token: the token is not a JSON object.\n");
    return -EINVAL;
  }
  int version = json_object_object_get_ex(o, "version", &v) ? json_object_get_int(v) : 0;
  if (version > TOKEN_VERSION) {
    crypt_logf(cd, CRYPT_LOG_ERROR, "kmsvol token: version %d is newer than this plugin reads (%d); upgrade kmsvol.\n", version, TOKEN_VERSION);
    return -EINVAL;
  }
  if (version < 1) {
    crypt_logf(cd, CRYPT_LOG_ERROR, "kmsvol token: version 0 has no keyslot secret; run `kmsvol luks upgrade-volume --volume-id ...` first.\n");
    return -EINVAL;
  }
  if (!str_field(o, "key_arn") || !str_field(o, "secret_blob") || !json_object_object_get_ex(o, "keyslots", &slots) ||
      !json_object_is_type(slots, json_type_array) || !json_object_object_get_ex(o, "encryption_context", &ctx) ||
      !json_object_is_type(ctx, json_type_object)) {
    crypt_logf(cd, CRYPT_LOG_ERROR, "kmsvol token: key_arn, secret_blob, keyslots or encryption_context is missing or of the wrong type.\n");
    return -EINVAL;
  }
  return 0;
}

EXPORT int cryptsetup_token_validate(struct crypt_device *cd, const char *json) {
  json_object *o = json_tokener_parse(json);
  int r = check(cd, o);
  json_object_put(o);
  return r;
}

EXPORT void cryptsetup_token_dump(struct crypt_device *cd, const char *json) {
  json_object *o = json_tokener_parse(json), *v, *ctx, *kms;
  if (!o) return;
  crypt_logf(cd, CRYPT_LOG_NORMAL, "\tVersion:    %d\n", json_object_object_get_ex(o, "version", &v) ? json_object_get_int(v) : 0);
  const char *names[][2] = {{"volume_id", "Volume:     "}, {"key_arn", "Key ARN:    "}, {"region", "Region:     "}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    const char *s = str_field(o, names[i][0]);
    if (s) crypt_logf(cd, CRYPT_LOG_NORMAL, "\t%s%s\n", names[i][1], s);
  }
  if (json_object_object_get_ex(o, "kms", &kms) && json_object_is_type(kms, json_type_object)) {
    json_object_object_foreach(kms, k, val) crypt_logf(cd, CRYPT_LOG_NORMAL, "\tKMS %-7s %s\n", k, json_object_get_string(val));
  }
  if (json_object_object_get_ex(o, "encryption_context", &ctx) && json_object_is_type(ctx, json_type_object)) {
    json_object_object_foreach(ctx, k, val) crypt_logf(cd, CRYPT_LOG_NORMAL, "\tContext:    %s=%s\n", k, json_object_get_string(val));
  }
  json_object_put(o);
}

EXPORT void cryptsetup_token_buffer_free(void *buffer, size_t buffer_len) {
  if (!buffer) return;
  explicit_bzero(buffer, buffer_len);
  munlock(buffer, buffer_len);
  free(buffer);
}

/* Read exactly len bytes from fd into buf, and nothing more: 0, or -1 (short, long or failed). */
static int read_secret(int fd, char *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, buf + got, len - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    got += (size_t)n;
  }
  char extra;
  ssize_t n;
  while ((n = read(fd, &extra, 1)) < 0 && errno == EINTR) {}
  explicit_bzero(&extra, 1);
  return n == 0 ? 0 : -1;
}

/* Run the helper with the token JSON on stdin; the secret arrives in buf. Returns 0 or a negative errno. */
static int run_helper(struct crypt_device *cd, const char *json, char *buf) {
  int in = memfd_create("kmsvol-token", MFD_CLOEXEC), out[2];
  if (in < 0) return -ENOMEM;
  size_t len = strlen(json);
  if (write(in, json, len) != (ssize_t)len || lseek(in, 0, SEEK_SET) != 0 || pipe2(out, O_CLOEXEC) != 0) {
    close(in);
    return -EIO;
  }
  pid_t pid = fork();
  if (pid == 0) {
    char *argv[] = {(char *)KMSVOL_TOKEN_HELPER, (char *)"token-unwrap", NULL};
    if (dup2(in, 0) < 0 || dup2(out[1], 1) < 0) _exit(127);
    signal(SIGPIPE, SIG_DFL);
    execve(KMSVOL_TOKEN_HELPER, argv, environ);
    _exit(127);
  }
  close(in);
  close(out[1]);
  if (pid < 0) {
    close(out[0]);
    return -EIO;
  }
  int rd = read_secret(out[0], buf, SECRET_LEN);
  close(out[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == 0 && rd == 0) return 0;
  explicit_bzero(buf, SECRET_LEN);
  if (code == HELPER_REFUSED) return -EPERM;
  if (code == 127)
    crypt_logf(cd, CRYPT_LOG_ERROR, "kmsvol token: cannot run %s; run `kmsvol luks install-token-plugin`.\n", KMSVOL_TOKEN_HELPER);
  else if (code == 0)
    crypt_logf(cd, CRYPT_LOG_ERROR, "kmsvol token: the helper did not return a %d-byte secret.\n", SECRET_LEN);
  return -ENOENT;
}

EXPORT int cryptsetup_token_open(struct crypt_device *cd, int token, char **buffer, size_t *buffer_len, void *usrptr) {
  (void)usrptr;
  const char *json;
  if (crypt_token_json_get(cd, token, &json) < 0) return -EINVAL;
  json_object *o = json_tokener_parse(json);
  int r = check(cd, o);
  json_object_put(o);
  if (r) return r;
  char *buf = malloc(SECRET_LEN);
  if (!buf) return -ENOMEM;
  mlock(buf, SECRET_LEN);
  r = run_helper(cd, json, buf);
  if (r) {
    cryptsetup_token_buffer_free(buf, SECRET_LEN);
    return r;
  }
  *buffer = buf;
  *buffer_len = SECRET_LEN;
  return 0;
}

/* A PIN is never needed: the KMS decides. */
EXPORT int cryptsetup_token_open_pin(struct crypt_device *cd, int token, const char *pin, size_t pin_size, char **buffer, size_t *buffer_len, void *usrptr) {
  (void)pin;
  (void)pin_size;
  return cryptsetup_token_open(cd, token, buffer, buffer_len, usrptr);
}
