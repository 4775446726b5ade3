/* What the addon's source files share: its error helpers and the functions each file adds to it. */
#ifndef TSBUILD_ADDON_H
#define TSBUILD_ADDON_H
#include <node_api.h>

#define MAX_PATH 4096

/* Throws an Error "<syscall> <path>: <strerror(errno)>" with code, errno and syscall set; returns NULL. */
napi_value throw_errno(napi_env env, const char *syscall, const char *path);
/* The call's first `want` arguments; throws a TypeError (and returns -1) when fewer were given. */
int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv);

/* network.c: RUN steps' default network. */
napi_value load_slirp(napi_env env, napi_callback_info info);
napi_value make_step_network(napi_env env, napi_callback_info info);
napi_value stop_step_network(napi_env env, napi_callback_info info);

#endif
