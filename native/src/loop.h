/*
 * Loop devices on descriptors, as util-linux's losetup sets them up
 * (LOOP_CONFIGURE on an open file, autoclear), and released only through a
 * descriptor whose backing file was checked first (see loop.c).
 */
#ifndef KMSVOL_LOOP_H
#define KMSVOL_LOOP_H
#include <linux/loop.h>
#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The most pids loop_openers reports (the first holders are enough to name one). */
#define KMSVOL_LOOP_MAX_OPENERS 16

/*
 * A free loop device bound to `file_fd` (opened read-write; O_DIRECT is set on
 * it, as losetup --direct-io=on opens its file) in direct-I/O mode with
 * autoclear, its lo_file_name set to `tag`. Returns the device's fd (the
 * caller holds it for as long as the device serves) and *number, or -errno.
 */
int loop_attach(int file_fd, const char *tag, uint32_t *number);
/* /dev/loop<number>, opened O_RDONLY|O_CLOEXEC and checked to be a loop block device: its fd, or -errno. */
int loop_open(uint32_t number);
/* LOOP_GET_STATUS64 with lo_device decoded to the dev_t stat(2) gives: 0, or -errno (-ENXIO: not bound). */
int loop_status(int fd, struct loop_info64 *info, dev_t *backing_dev);
/* Processes other than `except` with a descriptor on the block device `fd` is: how many (at most `max` in pids), or -errno. */
int loop_openers(int fd, pid_t except, pid_t *pids, int max);
/* Define loopAttach, loopOpen, loopStatus, loopClear, loopSetCapacity, loopOpeners, fsFreeze and fsSync on `exports`; false after throwing. */
bool loop_define(napi_env env, napi_value exports);

#endif
