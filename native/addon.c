/*
 * The few Linux syscalls that Node.js does not expose and that layer capture and extraction need:
 * extended attributes (overlay opaque markers, security.capability) and mknod (overlay whiteouts,
 * device nodes in base images). All calls act on the path itself, never following a final symlink.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#define MAX_PATH 4096

static napi_value throw_errno(napi_env env, const char *syscall, const char *path) {
  char msg[MAX_PATH + 128];
  int err = errno;
  snprintf(msg, sizeof msg, "%s %s: %s", syscall, path, strerror(err));
  napi_value message, error, code;
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, NULL, message, &error);
  const char *name = err == ENOENT ? "ENOENT" : err == ENOTSUP ? "ENOTSUP" : err == EEXIST ? "EEXIST"
                   : err == EPERM ? "EPERM" : err == EACCES ? "EACCES" : err == ENOTDIR ? "ENOTDIR"
                   : err == EINVAL ? "EINVAL" : err == ENOSPC ? "ENOSPC" : "EIO";
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_set_named_property(env, error, "code", code);
  napi_value errnum;
  napi_create_int32(env, err, &errnum);
  napi_set_named_property(env, error, "errno", errnum);
  napi_throw(env, error);
  return NULL;
}

static int get_string(napi_env env, napi_value v, char *buf, size_t size) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, buf, size, &len) != napi_ok) return -1;
  return len + 1 >= size ? -1 : 0;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < want) {
    napi_throw_type_error(env, NULL, "missing arguments");
    return -1;
  }
  return 0;
}

/* listXattrs(path): string[] */
static napi_value list_xattrs(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  char path[MAX_PATH];
  if (get_args(env, info, 1, argv) || get_string(env, argv[0], path, sizeof path)) return NULL;
  char stackbuf[1024];
  char *buf = stackbuf;
  ssize_t n = llistxattr(path, buf, sizeof stackbuf);
  if (n < 0 && errno == ERANGE) {
    n = llistxattr(path, NULL, 0);
    if (n >= 0) {
      buf = malloc(n + 1);
      n = llistxattr(path, buf, n);
    }
  }
  if (n < 0) {
    if (errno == ENOTSUP) n = 0;
    else {
      if (buf != stackbuf) free(buf);
      return throw_errno(env, "llistxattr", path);
    }
  }
  napi_value result;
  napi_create_array(env, &result);
  uint32_t idx = 0;
  for (ssize_t off = 0; off < n;) {
    size_t len = strlen(buf + off);
    napi_value name;
    napi_create_string_utf8(env, buf + off, len, &name);
    napi_set_element(env, result, idx++, name);
    off += len + 1;
  }
  if (buf != stackbuf) free(buf);
  return result;
}

/* getXattr(path, name): Buffer | null */
static napi_value get_xattr(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  char path[MAX_PATH], name[256];
  if (get_args(env, info, 2, argv) || get_string(env, argv[0], path, sizeof path) ||
      get_string(env, argv[1], name, sizeof name))
    return NULL;
  ssize_t n = lgetxattr(path, name, NULL, 0);
  if (n < 0) {
    if (errno == ENODATA || errno == ENOTSUP) {
      napi_value nul;
      napi_get_null(env, &nul);
      return nul;
    }
    return throw_errno(env, "lgetxattr", path);
  }
  void *data;
  napi_value result;
  napi_create_buffer(env, n, &data, &result);
  if (n > 0 && lgetxattr(path, name, data, n) < 0) return throw_errno(env, "lgetxattr", path);
  return result;
}

/* setXattr(path, name, value: Buffer) */
static napi_value set_xattr(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  char path[MAX_PATH], name[256];
  if (get_args(env, info, 3, argv) || get_string(env, argv[0], path, sizeof path) ||
      get_string(env, argv[1], name, sizeof name))
    return NULL;
  void *data;
  size_t len;
  if (napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "value must be a Buffer");
    return NULL;
  }
  if (lsetxattr(path, name, data, len, 0) < 0) return throw_errno(env, "lsetxattr", path);
  return NULL;
}

/* mknod(path, mode, major, minor): mode includes the file type bits (S_IFCHR, S_IFBLK, S_IFIFO) */
static napi_value do_mknod(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  char path[MAX_PATH];
  uint32_t mode, major, minor;
  if (get_args(env, info, 4, argv) || get_string(env, argv[0], path, sizeof path)) return NULL;
  napi_get_value_uint32(env, argv[1], &mode);
  napi_get_value_uint32(env, argv[2], &major);
  napi_get_value_uint32(env, argv[3], &minor);
  if (mknod(path, mode, makedev(major, minor)) < 0) return throw_errno(env, "mknod", path);
  return NULL;
}

/* tryLock(fd, exclusive): flock without blocking the event loop; false when another holds it */
static napi_value try_lock(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  bool exclusive;
  if (get_args(env, info, 2, argv)) return NULL;
  napi_get_value_int32(env, argv[0], &fd);
  napi_get_value_bool(env, argv[1], &exclusive);
  napi_value result;
  if (flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) < 0) {
    if (errno != EWOULDBLOCK) return throw_errno(env, "flock", "lock file");
    napi_get_boolean(env, false, &result);
    return result;
  }
  napi_get_boolean(env, true, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"listXattrs", NULL, list_xattrs, NULL, NULL, NULL, napi_default, NULL},
      {"getXattr", NULL, get_xattr, NULL, NULL, NULL, napi_default, NULL},
      {"setXattr", NULL, set_xattr, NULL, NULL, NULL, napi_default, NULL},
      {"mknod", NULL, do_mknod, NULL, NULL, NULL, napi_default, NULL},
      {"tryLock", NULL, try_lock, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
