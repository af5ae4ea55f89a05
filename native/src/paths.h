/*
 * Paths walked by descriptor (paths.c): the few system calls a walk in the
 * style of systemd's chase() needs, one component at a time from a held
 * directory descriptor, and the release of a mount through its descriptor.
 * The walk itself, its rules and its messages are TypeScript's
 * (src/card/paths.ts); these calls do one step each and trust their arguments.
 */
#ifndef KMSVOL_PATHS_H
#define KMSVOL_PATHS_H

#include <node_api.h>

/* Define openAt, mkdirAt and umountFd on `exports`; returns exports, or NULL after throwing. */
napi_value paths_register(napi_env env, napi_value exports);

#endif
