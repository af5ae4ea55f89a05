/*
 * Loop devices on descriptors (ioctl_loop(4)), the way util-linux's losetup
 * attaches one: /dev/loop-control's LOOP_CTL_GET_FREE, then LOOP_CONFIGURE on
 * the open device with the backing file's descriptor, retried when another
 * process configured the number in between (EBUSY). The device is set up with
 * LO_FLAGS_AUTOCLEAR: the kernel frees it when its last opener goes (the card
 * holds one descriptor for as long as it serves, so a card killed with -9
 * frees its device itself), and nothing ever has to release it by number.
 *
 * A device found by number (a dead card's, recorded at attach) is opened
 * first; LOOP_GET_STATUS64 on that descriptor tells whose file backs it, and
 * LOOP_CLR_FD goes through the same descriptor, so the number cannot be given
 * to someone else between the check and the release.
 *
 * TypeScript validates the arguments (src/native/loop.ts); C returns -errno
 * and the binding half below turns it into an Error with code KMSVOL_LOOP.
 */
#define _GNU_SOURCE
#include "loop.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/major.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "napi_check.h"

/* How often a number taken by someone else between GET_FREE and CONFIGURE is tried again. */
#define ATTACH_TRIES 64

static int neg_errno(void) { return errno ? -errno : -EIO; }

/*
 * The kernel keeps a loop device's read-ahead from one attachment to the next
 * (blk_apply_bdi_limits never lowers it, and raises it only from the backing
 * file's optimal I/O size, which a FUSE file does not give): LOOP_CONFIGURE
 * over the card's file left whatever the last user of the number had set,
 * 128 KiB on a new device, 2560 or 1024 KiB after a benchmark. So every
 * attachment sets it, to twice the device's largest request, which is what
 * the kernel gives a loop device over a regular file (2560 KiB). Best effort:
 * a device without it still serves.
 */
static void set_read_ahead(int fd) {
  unsigned short max_sectors = 0;
  if (ioctl(fd, BLKSECTGET, &max_sectors) == 0 && max_sectors) ioctl(fd, BLKRASET, 2ul * max_sectors);
}

int loop_attach(int file_fd, const char *tag, uint32_t *number) {
  int fl = fcntl(file_fd, F_GETFL);
  if (fl < 0) return neg_errno();
  if ((fl & O_ACCMODE) != O_RDWR) return -EBADF;
  if (!(fl & O_DIRECT) && fcntl(file_fd, F_SETFL, fl | O_DIRECT) != 0) return neg_errno();
  int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (ctl < 0) return neg_errno();
  int rc = -EBUSY;
  for (int i = 0; i < ATTACH_TRIES && rc == -EBUSY; i++) {
    int n = ioctl(ctl, LOOP_CTL_GET_FREE);
    if (n < 0) {
      rc = neg_errno();
      break;
    }
    char path[32];
    snprintf(path, sizeof path, "/dev/loop%d", n);
    int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
      rc = neg_errno();
      break;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISBLK(st.st_mode) || major(st.st_rdev) != LOOP_MAJOR) {
      rc = -ENODEV;
      close(fd);
      break;
    }
    struct loop_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.fd = (uint32_t)file_fd;
    cfg.info.lo_flags = LO_FLAGS_DIRECT_IO | LO_FLAGS_AUTOCLEAR;
    strncpy((char *)cfg.info.lo_file_name, tag, LO_NAME_SIZE - 1);
    if (ioctl(fd, LOOP_CONFIGURE, &cfg) == 0) {
      set_read_ahead(fd);
      *number = (uint32_t)n;
      rc = fd;
    } else {
      rc = neg_errno();
      close(fd);
    }
  }
  close(ctl);
  return rc;
}

int loop_open(uint32_t number) {
  char path[32];
  snprintf(path, sizeof path, "/dev/loop%u", number);
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return neg_errno();
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISBLK(st.st_mode) || major(st.st_rdev) != LOOP_MAJOR) {
    close(fd);
    return -ENODEV;
  }
  return fd;
}

int loop_status(int fd, struct loop_info64 *info, dev_t *backing_dev) {
  memset(info, 0, sizeof *info);
  if (ioctl(fd, LOOP_GET_STATUS64, info) != 0) return neg_errno();
  /* The kernel reports the backing file's st_dev in its own encoding (new_encode_dev); stat(2) uses glibc's makedev. */
  uint64_t d = info->lo_device;
  *backing_dev = makedev((unsigned)((d & 0xfff00) >> 8), (unsigned)((d & 0xff) | ((d >> 12) & 0xfff00)));
  return 0;
}

/*
 * What fuser does, by descriptor: every /proc/<pid>/fd/<n> whose target is
 * this block device. statx with AT_STATX_DONT_SYNC answers from the inode as
 * cached, so a descriptor on a file of a hung FUSE or NFS mount never blocks
 * the scan.
 */
int loop_openers(int fd, pid_t except, pid_t *pids, int max) {
  struct stat self;
  if (fstat(fd, &self) != 0) return neg_errno();
  if (!S_ISBLK(self.st_mode)) return -ENOTBLK;
  DIR *proc = opendir("/proc");
  if (!proc) return neg_errno();
  int found = 0;
  struct dirent *p;
  while ((p = readdir(proc)) != NULL) {
    char *end;
    long pid = strtol(p->d_name, &end, 10);
    if (*end || pid <= 0 || pid == except) continue;
    char path[48];
    snprintf(path, sizeof path, "%ld/fd", pid);
    int dfd = openat(dirfd(proc), path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) continue; /* gone, or a kernel thread */
    DIR *fds = fdopendir(dfd);
    if (!fds) {
      close(dfd);
      continue;
    }
    struct dirent *f;
    while ((f = readdir(fds)) != NULL) {
      struct statx sx;
      if (f->d_name[0] == '.' || statx(dirfd(fds), f->d_name, AT_STATX_DONT_SYNC, STATX_TYPE, &sx) != 0) continue;
      if (S_ISBLK(sx.stx_mode) && makedev(sx.stx_rdev_major, sx.stx_rdev_minor) == self.st_rdev) {
        if (found < max) pids[found] = (pid_t)pid;
        found++;
        break;
      }
    }
    closedir(fds);
  }
  closedir(proc);
  return found;
}

/* ---------- binding ---------- */

static napi_value throw_errno(napi_env env, const char *what, int neg) {
  char msg[160];
  napi_value m, code, e, ev;
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(-neg));
  CHECK(env, napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m));
  CHECK(env, napi_create_string_utf8(env, "KMSVOL_LOOP", NAPI_AUTO_LENGTH, &code));
  CHECK(env, napi_create_error(env, code, m, &e));
  CHECK(env, napi_create_int32(env, -neg, &ev));
  CHECK(env, napi_set_named_property(env, e, "errno", ev));
  CHECK(env, napi_throw(env, e));
  return NULL;
}

/* The int32 arguments of a call (fds, pids, numbers): false after throwing. */
static bool int_args(napi_env env, napi_callback_info info, size_t n, int32_t *out, napi_value *argv) {
  size_t argc = n;
  if (!OK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL))) return false;
  for (size_t i = 0; i < n; i++)
    if (!OK(env, napi_get_value_int32(env, argv[i], &out[i]))) return false;
  return true;
}

/* loopAttach(fileFd, tag) -> { fd, number } */
static napi_value js_attach(napi_env env, napi_callback_info info) {
  size_t argc = 2, len;
  napi_value argv[2], o;
  int32_t fd;
  char tag[LO_NAME_SIZE];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  CHECK(env, napi_get_value_int32(env, argv[0], &fd));
  CHECK(env, napi_get_value_string_utf8(env, argv[1], tag, sizeof tag, &len));
  uint32_t number = 0;
  int rc = loop_attach(fd, tag, &number);
  if (rc < 0) return throw_errno(env, "LOOP_CONFIGURE", rc);
  CHECK(env, napi_create_object(env, &o));
  if (!set_int(env, o, "fd", rc) || !set_double(env, o, "number", number)) return NULL;
  return o;
}

/* loopOpen(number) -> fd */
static napi_value js_open(napi_env env, napi_callback_info info) {
  napi_value argv[1], r;
  int32_t n;
  if (!int_args(env, info, 1, &n, argv)) return NULL;
  int rc = loop_open((uint32_t)n);
  if (rc < 0) return throw_errno(env, "open loop device", rc);
  CHECK(env, napi_create_int32(env, rc, &r));
  return r;
}

/* loopStatus(fd) -> { number, backingDev, backingIno, flags, name }, or null when the device is not bound. */
static napi_value js_status(napi_env env, napi_callback_info info) {
  napi_value argv[1], o;
  int32_t fd;
  if (!int_args(env, info, 1, &fd, argv)) return NULL;
  struct loop_info64 li;
  dev_t dev;
  int rc = loop_status(fd, &li, &dev);
  if (rc == -ENXIO) {
    CHECK(env, napi_get_null(env, &o));
    return o;
  }
  if (rc < 0) return throw_errno(env, "LOOP_GET_STATUS64", rc);
  char name[LO_NAME_SIZE];
  memcpy(name, li.lo_file_name, LO_NAME_SIZE);
  name[LO_NAME_SIZE - 1] = 0;
  CHECK(env, napi_create_object(env, &o));
  if (!set_double(env, o, "number", li.lo_number) || !set_double(env, o, "backingDev", (double)dev) || !set_double(env, o, "backingIno", (double)li.lo_inode) ||
      !set_int(env, o, "flags", (int32_t)li.lo_flags) || !set_string(env, o, "name", name))
    return NULL;
  return o;
}

/* loopClear(fd) -> true, or false when the device was not bound (LOOP_CLR_FD: freed at its last close). */
static napi_value js_clear(napi_env env, napi_callback_info info) {
  napi_value argv[1], r;
  int32_t fd;
  if (!int_args(env, info, 1, &fd, argv)) return NULL;
  int rc = ioctl(fd, LOOP_CLR_FD, 0) == 0 ? 0 : neg_errno();
  if (rc < 0 && rc != -ENXIO) return throw_errno(env, "LOOP_CLR_FD", rc);
  CHECK(env, napi_get_boolean(env, rc == 0, &r));
  return r;
}

/* loopSetCapacity(fd): the device takes its backing file's new size. */
static napi_value js_set_capacity(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!int_args(env, info, 1, &fd, argv)) return NULL;
  if (ioctl(fd, LOOP_SET_CAPACITY, 0) != 0) return throw_errno(env, "LOOP_SET_CAPACITY", neg_errno());
  return NULL;
}

/* loopOpeners(fd, exceptPid) -> pids of the processes with a descriptor on the device (the first KMSVOL_LOOP_MAX_OPENERS). */
static napi_value js_openers(napi_env env, napi_callback_info info) {
  napi_value argv[2], arr, v;
  int32_t a[2];
  if (!int_args(env, info, 2, a, argv)) return NULL;
  pid_t pids[KMSVOL_LOOP_MAX_OPENERS];
  int n = loop_openers(a[0], (pid_t)a[1], pids, KMSVOL_LOOP_MAX_OPENERS);
  if (n < 0) return throw_errno(env, "scan /proc for openers", n);
  if (n > KMSVOL_LOOP_MAX_OPENERS) n = KMSVOL_LOOP_MAX_OPENERS;
  CHECK(env, napi_create_array_with_length(env, (size_t)n, &arr));
  for (int i = 0; i < n; i++) {
    CHECK(env, napi_create_int32(env, pids[i], &v));
    CHECK(env, napi_set_element(env, arr, (uint32_t)i, v));
  }
  return arr;
}

/* fsFreeze(fd, on): FIFREEZE (on) or FITHAW on a descriptor of the file system's root (fsfreeze(8) without its path). */
static napi_value js_fs_freeze(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t a[2];
  if (!int_args(env, info, 2, a, argv)) return NULL;
  if (ioctl(a[0], a[1] ? FIFREEZE : FITHAW, 0) != 0) return throw_errno(env, a[1] ? "FIFREEZE" : "FITHAW", neg_errno());
  return NULL;
}

/* fsSync(fd): syncfs(2) of the file system `fd` is on (sync -f without its path). */
static napi_value js_fs_sync(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t fd;
  if (!int_args(env, info, 1, &fd, argv)) return NULL;
  if (syncfs(fd) != 0) return throw_errno(env, "syncfs", neg_errno());
  return NULL;
}

bool loop_define(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"loopAttach", NULL, js_attach, NULL, NULL, NULL, napi_default, NULL},
      {"loopOpen", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
      {"loopStatus", NULL, js_status, NULL, NULL, NULL, napi_default, NULL},
      {"loopClear", NULL, js_clear, NULL, NULL, NULL, napi_default, NULL},
      {"loopSetCapacity", NULL, js_set_capacity, NULL, NULL, NULL, napi_default, NULL},
      {"loopOpeners", NULL, js_openers, NULL, NULL, NULL, napi_default, NULL},
      {"fsFreeze", NULL, js_fs_freeze, NULL, NULL, NULL, napi_default, NULL},
      {"fsSync", NULL, js_fs_sync, NULL, NULL, NULL, napi_default, NULL},
  };
  return OK(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
}
