/*
 * Paths walked by descriptor: the system calls of a walk in the style of
 * systemd's chase() (src/card/paths.ts holds the walk, its rules and its
 * messages), and the release of a mount through a descriptor held on its
 * root. Each call does one step on descriptors JavaScript holds, and returns
 * an errno for TypeScript to name: nothing here resolves a path of more than
 * one component, or follows a symbolic link.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include "napi_check.h"
#include "paths.h"

#define NAME_BYTES 257 /* one component: NAME_MAX (255), one byte more to see a longer one, and the NUL */

static napi_value int_result(napi_env env, int v) {
  napi_value r;
  CHECK(env, napi_create_int32(env, v, &r));
  return r;
}

/* Read argv[i] as one path component into buf; NULL after throwing (TypeScript has already checked it). */
static const char *component(napi_env env, napi_value v, char *buf) {
  size_t len;
  CHECK(env, napi_get_value_string_utf8(env, v, buf, NAME_BYTES, &len));
  if (len == 0 || len > NAME_MAX) {
    napi_throw_range_error(env, "KMSVOL_ARG", "a path component is 1..255 bytes");
    return NULL;
  }
  return buf;
}

/* openRoot() -> an O_PATH descriptor of "/", or -errno. */
static napi_value open_root(napi_env env, napi_callback_info info) {
  (void)info;
  int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  return int_result(env, fd < 0 ? -errno : fd);
}

/*
 * openAt(dirFd, name, directory) -> an O_PATH descriptor of `name` in dirFd,
 * never through a symbolic link (O_NOFOLLOW: with `directory`, a link is
 * ENOTDIR; without, the link itself is opened, for fstat to say what it is); or -errno.
 */
static napi_value open_at(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t dirfd;
  bool dir;
  char name[NAME_BYTES];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(env, napi_get_value_int32(env, argv[0], &dirfd));
  if (!component(env, argv[1], name)) return NULL;
  CHECK(env, napi_get_value_bool(env, argv[2], &dir));
  int fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC | (dir ? O_DIRECTORY : 0));
  return int_result(env, fd < 0 ? -errno : fd);
}

/* mkdirAt(dirFd, name, mode) -> 0 or errno (EEXIST when something is there). */
static napi_value mkdir_at(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t dirfd;
  uint32_t mode;
  char name[NAME_BYTES];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(env, napi_get_value_int32(env, argv[0], &dirfd));
  if (!component(env, argv[1], name)) return NULL;
  CHECK(env, napi_get_value_uint32(env, argv[2], &mode));
  return int_result(env, mkdirat(dirfd, name, (mode_t)(mode & 07777)) == 0 ? 0 : errno);
}

/*
 * umountFd(fd) -> 0 or errno: detach (MNT_DETACH) the mount whose root `fd`
 * holds. /proc/self/fd/N is a magic link to exactly what the descriptor holds,
 * whatever its path leads to now; EINVAL when that is not a mount's root.
 */
static napi_value umount_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  char self[32];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(env, napi_get_value_int32(env, argv[0], &fd));
  snprintf(self, sizeof self, "/proc/self/fd/%d", fd);
  return int_result(env, umount2(self, MNT_DETACH) == 0 ? 0 : errno);
}

#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x00004000U /* Linux 6.8: a mount id never given to another mount until reboot */
#endif

/*
 * mountIdOf(fd) -> the unique id (STATX_MNT_ID_UNIQUE) of the mount `fd` is
 * on, or -errno (-ENOSYS before Linux 6.8). The ids in mountinfo and fdinfo
 * are reused, as are FUSE's anonymous device numbers: this one identifies a
 * mount for as long as the machine runs. AT_STATX_DONT_SYNC answers from the
 * inode as cached, without asking a FUSE server (a dead card's would answer ENOTCONN).
 */
static napi_value mount_id_of(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], r;
  int32_t fd;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(env, napi_get_value_int32(env, argv[0], &fd));
  struct statx st;
  double id;
  if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STATX_MNT_ID_UNIQUE, &st) != 0)
    id = -errno;
  else
    id = (st.stx_mask & STATX_MNT_ID_UNIQUE) ? (double)st.stx_mnt_id : -ENOSYS;
  CHECK(env, napi_create_double(env, id, &r));
  return r;
}

napi_value paths_register(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"openRoot", NULL, open_root, NULL, NULL, NULL, napi_default, NULL}, {"openAt", NULL, open_at, NULL, NULL, NULL, napi_default, NULL},
      {"mkdirAt", NULL, mkdir_at, NULL, NULL, NULL, napi_default, NULL},   {"mountIdOf", NULL, mount_id_of, NULL, NULL, NULL, napi_default, NULL},
      {"umountFd", NULL, umount_fd, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}
