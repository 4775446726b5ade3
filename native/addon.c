/*
 * The few Linux syscalls that Node.js does not expose and that layer capture and extraction need:
 * extended attributes (overlay opaque markers, security.capability) and mknod (overlay whiteouts,
 * device nodes in base images); and what handling many small files costs per file, batched into
 * one call each: creating one (extraction), reading one (archiving), listing a directory with lstat. All calls act on the path itself, never following a final symlink.
 * And starting a process without fork's cost (see spawn below). RUN steps' network is network.c's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <fcntl.h>
#include <unistd.h>
#include <dirent.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <signal.h>
#include <spawn.h>
#include <pthread.h>
#include <openssl/evp.h>

#include "addon.h"

napi_value throw_errno(napi_env env, const char *syscall, const char *path) {
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
  napi_value sys;
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &sys);
  napi_set_named_property(env, error, "syscall", sys);
  napi_throw(env, error);
  return NULL;
}

static int get_string(napi_env env, napi_value v, char *buf, size_t size) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, buf, size, &len) != napi_ok) return -1;
  return len + 1 >= size ? -1 : 0;
}

int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
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


/* Closes fd, keeping errno as the failure before it set it (for the error thrown next). */
static void close_keeping_errno(int fd) {
  int saved = errno;
  close(fd);
  errno = saved;
}

/* Sets owner, then mode (chown clears setuid bits), then times (atime = mtime) through fd, and
 * closes it whatever happens. Returns 0, or -1 with errno and *failed naming the syscall. */
static int finish_fd(int fd, uint32_t uid, uint32_t gid, uint32_t mode, int64_t mtime, const char **failed) {
  struct timespec times[2] = {{.tv_sec = mtime, .tv_nsec = 0}, {.tv_sec = mtime, .tv_nsec = 0}};
  int rc = 0;
  if (fchown(fd, uid, gid) < 0) *failed = "fchown", rc = -1;
  else if (fchmod(fd, mode) < 0) *failed = "fchmod", rc = -1;
  else if (futimens(fd, times) < 0) *failed = "futimens", rc = -1;
  close_keeping_errno(fd);
  return rc;
}

static int get_ids(napi_env env, napi_value *argv, uint32_t *uid, uint32_t *gid, uint32_t *mode, int64_t *mtime) {
  if (napi_get_value_uint32(env, argv[0], uid) != napi_ok || napi_get_value_uint32(env, argv[1], gid) != napi_ok ||
      napi_get_value_uint32(env, argv[2], mode) != napi_ok || napi_get_value_int64(env, argv[3], mtime) != napi_ok) {
    napi_throw_type_error(env, NULL, "uid, gid, mode and mtime must be numbers");
    return -1;
  }
  return 0;
}

/* The steps of making a file, in order: writeNewFiles reports the one that failed by its number (from 1). */
static const char *const FILE_STEPS[] = {"open", "write", "fchown", "fchmod", "futimens"};

/*
 * A new regular file (O_EXCL: never over anything, never through a final symlink) with its whole
 * content, owner, mode and times; -1 with errno, and *failed naming the step (FILE_STEPS), on failure.
 */
static int create_file(const char *path, const void *data, size_t len, uint32_t uid, uint32_t gid, uint32_t mode, int64_t mtime, const char **failed) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    *failed = "open";
    return -1;
  }
  for (size_t off = 0; off < len;) {
    ssize_t n = write(fd, (const char *)data + off, len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      *failed = "write";
      close_keeping_errno(fd);
      return -1;
    }
    off += (size_t)n;
  }
  return finish_fd(fd, uid, gid, mode, mtime, failed);
}

/*
 * writeNewFile(path, data, uid, gid, mode, mtime): a new regular file (O_EXCL: never over anything,
 * never through a final symlink) with its whole content, owner, mode and times: what extracting a
 * small file from a layer costs, in one call instead of six.
 */
static napi_value write_new_file(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  char path[MAX_PATH];
  void *data;
  size_t len;
  uint32_t uid, gid, mode;
  int64_t mtime;
  if (get_args(env, info, 6, argv) || get_string(env, argv[0], path, sizeof path)) return NULL;
  if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "data must be a Buffer");
    return NULL;
  }
  if (get_ids(env, argv + 2, &uid, &gid, &mode, &mtime)) return NULL;
  const char *failed = NULL;
  if (create_file(path, data, len, uid, gid, mode, mtime, &failed) < 0) return throw_errno(env, failed, path);
  return NULL;
}

/* finishFile(fd, uid, gid, mode, mtime): owner, mode and times of a file written through fd; closes fd. */
static napi_value finish_file(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int32_t fd;
  uint32_t uid, gid, mode;
  int64_t mtime;
  if (get_args(env, info, 5, argv)) return NULL;
  napi_get_value_int32(env, argv[0], &fd);
  if (get_ids(env, argv + 1, &uid, &gid, &mode, &mtime)) return NULL;
  const char *failed = NULL;
  if (finish_fd(fd, uid, gid, mode, mtime, &failed) < 0) return throw_errno(env, failed, "file");
  return NULL;
}

/* The numbers scanDir gives per entry, in this order. */
enum { S_MODE, S_UID, S_GID, S_SIZE, S_MTIME_S, S_MTIME_NS, S_CTIME_S, S_CTIME_NS, S_INO, S_DEV, S_NLINK, S_RDEV, S_FIELDS };

/* One directory's scan, in C memory: names one after another (each ended by a NUL), S_FIELDS numbers per entry. */
typedef struct {
  const char *path;
  char real[MAX_PATH];
  char *names;
  size_t names_len;
  double *nums;
  size_t n;
  int err;        /* errno of the failure, 0 when whole */
  const char *op; /* the syscall that failed */
} scan_result;

/*
 * A directory's next entry but . and ..; NULL at its end, or with *failed set when reading it
 * failed. errno is read only when readdir says so: a call that succeeds may leave it set.
 */
static struct dirent *next_entry(DIR *d, int *failed) {
  for (;;) {
    errno = 0;
    struct dirent *de = readdir(d);
    if (!de) {
      *failed = errno;
      return NULL;
    }
    if (!(de->d_name[0] == '.' && (de->d_name[1] == 0 || (de->d_name[1] == '.' && de->d_name[2] == 0)))) return de;
  }
}

/* Scans r->path (see scanDir): no JS values, so that threads can do it. */
static void scan_into(scan_result *r) {
  r->names = NULL;
  r->nums = NULL;
  r->n = r->names_len = 0;
  r->err = 0;
  int dfd = open(r->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) {
    r->err = errno;
    r->op = "scandir";
    return;
  }
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", dfd);
  ssize_t rl = readlink(proc, r->real, sizeof r->real - 1);
  if (rl < 0) {
    r->err = errno;
    r->op = "readlink";
    close(dfd);
    return;
  }
  r->real[rl] = 0;
  DIR *d = fdopendir(dfd);
  if (!d) {
    r->err = errno;
    r->op = "fdopendir";
    close(dfd);
    return;
  }
  size_t cap = 64, ncap = 4096;
  r->nums = malloc(cap * S_FIELDS * sizeof(double));
  r->names = malloc(ncap);
  int failed = !r->nums || !r->names ? ENOMEM : 0;
  struct dirent *de;
  while (!failed && (de = next_entry(d, &failed)) != NULL) {
    struct stat st;
    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      if (errno == ENOENT) continue;
      failed = errno;
      break;
    }
    size_t len = strlen(de->d_name) + 1;
    if (r->n == cap || r->names_len + len > ncap) {
      if (r->n == cap) cap *= 2;
      while (r->names_len + len > ncap) ncap *= 2;
      double *grown = realloc(r->nums, cap * S_FIELDS * sizeof(double));
      if (grown) r->nums = grown;
      char *more = grown ? realloc(r->names, ncap) : NULL;
      if (more) r->names = more;
      if (!grown || !more) {
        failed = ENOMEM;
        break;
      }
    }
    double *f = r->nums + r->n * S_FIELDS;
    f[S_MODE] = st.st_mode;
    f[S_UID] = st.st_uid;
    f[S_GID] = st.st_gid;
    f[S_SIZE] = (double)st.st_size;
    f[S_MTIME_S] = (double)st.st_mtim.tv_sec;
    f[S_MTIME_NS] = (double)st.st_mtim.tv_nsec;
    f[S_CTIME_S] = (double)st.st_ctim.tv_sec;
    f[S_CTIME_NS] = (double)st.st_ctim.tv_nsec;
    f[S_INO] = (double)st.st_ino;
    f[S_DEV] = (double)st.st_dev;
    f[S_NLINK] = (double)st.st_nlink;
    f[S_RDEV] = (double)st.st_rdev;
    memcpy(r->names + r->names_len, de->d_name, len);
    r->names_len += len;
    r->n++;
  }
  closedir(d);
  if (failed) {
    r->err = failed;
    r->op = "scandir";
    free(r->nums);
    free(r->names);
    r->nums = NULL;
    r->names = NULL;
  }
}

/* n doubles as a Float64Array of their own. */
static napi_value float64_array(napi_env env, const double *values, size_t n) {
  void *data;
  napi_value ab, array;
  napi_create_arraybuffer(env, n * sizeof(double), &data, &ab);
  if (n) memcpy(data, values, n * sizeof(double));
  napi_create_typedarray(env, napi_float64_array, n, ab, 0, &array);
  return array;
}

/* A scan as JS values ({ real, names, stats }, names NUL-ended in one string), freeing its C memory; or its error, thrown. */
static napi_value scan_value(napi_env env, scan_result *r) {
  if (r->err) {
    errno = r->err;
    return throw_errno(env, r->op, r->path);
  }
  napi_value result, realv, names;
  napi_value stats = float64_array(env, r->nums, r->n * S_FIELDS);
  napi_create_string_utf8(env, r->names, r->names_len, &names);
  napi_create_string_utf8(env, r->real, NAPI_AUTO_LENGTH, &realv);
  free(r->nums);
  free(r->names);
  r->nums = NULL;
  r->names = NULL;
  napi_create_object(env, &result);
  napi_set_named_property(env, result, "real", realv);
  napi_set_named_property(env, result, "names", names);
  napi_set_named_property(env, result, "stats", stats);
  return result;
}

/*
 * scanDir(dir): { real, names, stats }: a directory opened without following a final symlink, its
 * real path (from the descriptor, for confinement checks), and every entry's name (each ended by a
 * NUL, in one string) and lstat numbers (S_FIELDS doubles each in one Float64Array): what readdir
 * and one lstat per entry give, in one call. Entries removed while the directory is read are left out.
 */
static napi_value scan_dir(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  char path[MAX_PATH];
  if (get_args(env, info, 1, argv) || get_string(env, argv[0], path, sizeof path)) return NULL;
  scan_result r = {.path = path};
  scan_into(&r);
  return scan_value(env, &r);
}

/*
 * Runs each(arg, i) for every i below count, on up to `threads` threads (this one among them),
 * each thread taking the next i: the batch calls below (scanDirs, hashFiles, writeNewFiles) put
 * per-file kernel work on both cores this way.
 */
typedef struct {
  void (*each)(void *arg, size_t i);
  void *arg;
  size_t count, next;
  pthread_mutex_t lock;
} parallel_job;

static void *parallel_worker(void *p) {
  parallel_job *job = p;
  for (;;) {
    pthread_mutex_lock(&job->lock);
    size_t i = job->next++;
    pthread_mutex_unlock(&job->lock);
    if (i >= job->count) return NULL;
    job->each(job->arg, i);
  }
}

static void run_parallel(size_t count, int threads, void (*each)(void *arg, size_t i), void *arg) {
  parallel_job job = {.each = each, .arg = arg, .count = count};
  pthread_mutex_init(&job.lock, NULL);
  if (threads < 1) threads = 1;
  if (threads > 16) threads = 16;
  pthread_t ids[16];
  int started = 0;
  for (int t = 1; t < threads && (size_t)t < count; t++)
    if (pthread_create(&ids[started], NULL, parallel_worker, &job) == 0) started++;
  parallel_worker(&job);
  for (int t = 0; t < started; t++) pthread_join(ids[t], NULL);
  pthread_mutex_destroy(&job.lock);
}

static void scan_each(void *arg, size_t i) { scan_into((scan_result *)arg + i); }

/*
 * scanDirs(dirs, threads): scanDir of each, on up to `threads` threads at once (lstat is the
 * kernel's work, and a walk of 100,000 files spends most of its time there): an array of scans, or
 * of Errors for the directories that failed.
 */
static napi_value scan_dirs(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (get_args(env, info, 2, argv)) return NULL;
  uint32_t count;
  int32_t threads;
  napi_get_array_length(env, argv[0], &count);
  napi_get_value_int32(env, argv[1], &threads);
  scan_result *results = calloc(count ? count : 1, sizeof *results);
  char (*paths)[MAX_PATH] = calloc(count ? count : 1, MAX_PATH);
  if (!results || !paths) {
    free(results);
    free(paths);
    napi_throw_error(env, NULL, "scanDirs: out of memory");
    return NULL;
  }
  for (uint32_t i = 0; i < count; i++) {
    napi_value v;
    napi_get_element(env, argv[0], i, &v);
    if (get_string(env, v, paths[i], MAX_PATH)) {
      free(results);
      free(paths);
      napi_throw_type_error(env, NULL, "scanDirs: a path is not a string, or too long");
      return NULL;
    }
    results[i].path = paths[i];
  }
  run_parallel(count, threads, scan_each, results);
  napi_value out;
  napi_create_array_with_length(env, count, &out);
  for (uint32_t i = 0; i < count; i++) {
    napi_value v = scan_value(env, &results[i]);
    if (!v) { /* its error was thrown: take it back as a value */
      napi_get_and_clear_last_exception(env, &v);
    }
    napi_set_element(env, out, i, v);
  }
  free(results);
  free(paths);
  return out;
}

/*
 * listNames(dir): a directory's entry names, each followed by a NUL in one string (one JS string
 * for tens of thousands of names, instead of one each), and their inode numbers, as getdents gives
 * them, with no stat at all.
 */
static napi_value list_names(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  char path[MAX_PATH];
  if (get_args(env, info, 1, argv) || get_string(env, argv[0], path, sizeof path)) return NULL;
  DIR *d = opendir(path);
  if (!d) return throw_errno(env, "scandir", path);
  size_t cap = 256, n = 0, tcap = 16384, tlen = 0;
  double *inos = malloc(cap * sizeof(double));
  char *text = malloc(tcap);
  int failed = !inos || !text ? ENOMEM : 0;
  struct dirent *de;
  while (!failed && (de = next_entry(d, &failed)) != NULL) {
    size_t len = strlen(de->d_name) + 1;
    if (n == cap || tlen + len > tcap) {
      if (n == cap) cap *= 2;
      while (tlen + len > tcap) tcap *= 2;
      double *grown = realloc(inos, cap * sizeof(double));
      if (grown) inos = grown;
      char *more = grown ? realloc(text, tcap) : NULL;
      if (more) text = more;
      if (!grown || !more) {
        failed = ENOMEM;
        break;
      }
    }
    inos[n++] = (double)de->d_ino;
    memcpy(text + tlen, de->d_name, len);
    tlen += len;
  }
  closedir(d);
  if (failed) {
    free(inos);
    free(text);
    errno = failed;
    return throw_errno(env, "scandir", path);
  }
  napi_value names, result;
  napi_value inov = float64_array(env, inos, n);
  free(inos);
  napi_create_string_utf8(env, text, tlen, &names);
  free(text);
  napi_create_object(env, &result);
  napi_set_named_property(env, result, "names", names);
  napi_set_named_property(env, result, "inos", inov);
  return result;
}

/*
 * readFileInto(rootFd, path, dev, ino, size, buf, offset): true when `path` is still the file that
 * was planned (device, inode and size, unless dev < 0) and its `size` bytes are now in buf at offset;
 * false when it changed, vanished or shrank. With rootFd >= 0, `path` is relative to it and must
 * resolve beneath it through no symlink at all (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS: a
 * directory swapped for a link to the host fails); else it is opened as given, not following a
 * final symlink.
 */
static napi_value read_file_into(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  char path[MAX_PATH];
  int32_t root;
  double dev, ino, size, offset;
  void *buf;
  size_t buflen;
  if (get_args(env, info, 7, argv) || get_string(env, argv[1], path, sizeof path)) return NULL;
  napi_get_value_int32(env, argv[0], &root);
  napi_get_value_double(env, argv[2], &dev);
  napi_get_value_double(env, argv[3], &ino);
  napi_get_value_double(env, argv[4], &size);
  napi_get_value_double(env, argv[6], &offset);
  if (napi_get_buffer_info(env, argv[5], &buf, &buflen) != napi_ok || offset < 0 || size < 0 || offset + size > (double)buflen) {
    napi_throw_range_error(env, NULL, "readFileInto: the file does not fit in the buffer");
    return NULL;
  }
  int fd;
  if (root >= 0) {
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW, .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
    fd = syscall(SYS_openat2, root, path, &how, sizeof how);
  } else {
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  }
  napi_value result;
  if (fd < 0) {
    if (errno == ENOENT || errno == ELOOP || errno == EXDEV || errno == ENOTDIR) {
      napi_get_boolean(env, false, &result);
      return result;
    }
    return throw_errno(env, "open", path);
  }
  bool same = true;
  if (dev >= 0) {
    struct stat st;
    if (fstat(fd, &st) < 0) {
      close_keeping_errno(fd);
      return throw_errno(env, "fstat", path);
    }
    same = S_ISREG(st.st_mode) && (double)st.st_dev == dev && (double)st.st_ino == ino && (double)st.st_size == size;
  }
  size_t want = (size_t)size, got = 0;
  char *dst = (char *)buf + (size_t)offset;
  while (same && got < want) {
    ssize_t r = read(fd, dst + got, want - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      close_keeping_errno(fd);
      return throw_errno(env, "read", path);
    }
    if (r == 0) same = false;
    got += r;
  }
  close(fd);
  napi_get_boolean(env, same, &result);
  return result;
}

/* pipe(): [readFd, writeFd], both close-on-exec. */
static napi_value make_pipe(napi_env env, napi_callback_info info) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) return throw_errno(env, "pipe2", "");
  napi_value result, v;
  napi_create_array_with_length(env, 2, &result);
  for (uint32_t i = 0; i < 2; i++) {
    napi_create_int32(env, fds[i], &v);
    napi_set_element(env, result, i, v);
  }
  return result;
}

/* A JS array of strings as a NULL-terminated vector (freed with free_strings). */
static char **get_strings(napi_env env, napi_value array) {
  uint32_t n;
  if (napi_get_array_length(env, array, &n) != napi_ok) return NULL;
  char **out = calloc(n + 1, sizeof(char *));
  for (uint32_t i = 0; out && i < n; i++) {
    napi_value v;
    size_t len;
    napi_get_element(env, array, i, &v);
    if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok || !(out[i] = malloc(len + 1))) {
      for (uint32_t j = 0; j < i; j++) free(out[j]);
      free(out);
      return NULL;
    }
    napi_get_value_string_utf8(env, v, out[i], len + 1, &len);
  }
  return out;
}

static void free_strings(char **v) {
  for (char **p = v; p && *p; p++) free(*p);
  free(v);
}

/* One spawn() call: what the thread that starts the process needs, copied out of JS values. */
typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char file[MAX_PATH];
  char **args, **envp;
  int fds[16];
  uint32_t nfds;
  pid_t pid;
  int err;
} spawn_job;

static void spawn_execute(napi_env env, void *data) {
  (void)env;
  spawn_job *job = data;
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  for (uint32_t i = 0; i < job->nfds; i++) posix_spawn_file_actions_adddup2(&actions, job->fds[i], (int)i);
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  job->err = posix_spawnp(&job->pid, job->file, &actions, &attr, job->args, job->envp); /* a bare name is looked up in PATH */
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
}

static void spawn_complete(napi_env env, napi_status status, void *data) {
  spawn_job *job = data;
  napi_value result;
  if (status == napi_ok && job->err == 0) {
    napi_create_int32(env, job->pid, &result);
    napi_resolve_deferred(env, job->deferred, result);
  } else {
    char msg[MAX_PATH + 64];
    snprintf(msg, sizeof msg, "spawn %s: %s", job->file, strerror(job->err ? job->err : EIO));
    napi_value message, code;
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &result);
    napi_create_string_utf8(env, job->err == ENOENT ? "ENOENT" : job->err == EACCES ? "EACCES" : "EIO", NAPI_AUTO_LENGTH, &code);
    napi_set_named_property(env, result, "code", code);
    napi_reject_deferred(env, job->deferred, result);
  }
  napi_delete_async_work(env, job->work);
  free_strings(job->args);
  free_strings(job->envp);
  free(job);
}

/*
 * spawn(file, argv, env, fds): a promise of the new process's pid. posix_spawn, which glibc does
 * with clone(CLONE_VM|CLONE_VFORK): the parent's page tables are not copied, as fork (libuv's
 * spawn) copies them, at a cost that grows with the heap (4 ms a process at 100 MB here, against
 * 0.2); and it runs on a libuv thread, so the event loop does not wait for the child's execve. The
 * child's fd i is fds[i] (each below fds.length must be i itself; keep them open until the promise
 * settles); every other descriptor is close-on-exec in Node. Signals start at their defaults, none
 * blocked. A helper's PR_SET_PDEATHSIG follows the thread that started it: libuv's threads live
 * as long as the process. Reap it with reap().
 */
static napi_value do_spawn(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  spawn_job *job = calloc(1, sizeof *job);
  if (!job) {
    napi_throw_error(env, NULL, "spawn: out of memory");
    return NULL;
  }
  if (get_args(env, info, 4, argv) || get_string(env, argv[0], job->file, sizeof job->file)) {
    free(job);
    return NULL;
  }
  napi_get_array_length(env, argv[3], &job->nfds);
  if (job->nfds > 16) {
    free(job);
    napi_throw_range_error(env, NULL, "spawn: at most 16 descriptors");
    return NULL;
  }
  for (uint32_t i = 0; i < job->nfds; i++) {
    napi_value v;
    napi_get_element(env, argv[3], i, &v);
    napi_get_value_int32(env, v, &job->fds[i]);
    if (job->fds[i] < 0 || (job->fds[i] < (int)job->nfds && job->fds[i] != (int)i)) {
      free(job);
      napi_throw_range_error(env, NULL, "spawn: each descriptor must be its own number or above the list's length");
      return NULL;
    }
  }
  job->args = get_strings(env, argv[1]);
  job->envp = get_strings(env, argv[2]);
  if (!job->args || !job->envp) {
    free_strings(job->args);
    free_strings(job->envp);
    free(job);
    napi_throw_type_error(env, NULL, "spawn: argv and env must be arrays of strings");
    return NULL;
  }
  napi_value promise, name;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, "tsbuild:spawn", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, spawn_execute, spawn_complete, job, &job->work);
  napi_queue_async_work(env, job->work);
  return promise;
}

/* reap(pid): null while it runs, else [exit code or -1, signal number or 0] (waitpid WNOHANG). */
static napi_value reap(napi_env env, napi_callback_info info) {
  napi_value argv[1], result = NULL, v;
  int32_t pid;
  if (get_args(env, info, 1, argv)) return NULL;
  napi_get_value_int32(env, argv[0], &pid);
  int status;
  pid_t r;
  do r = waitpid(pid, &status, WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r < 0) return throw_errno(env, "waitpid", "");
  if (r == 0) {
    napi_get_null(env, &result);
    return result;
  }
  napi_create_array_with_length(env, 2, &result);
  napi_create_int32(env, WIFEXITED(status) ? WEXITSTATUS(status) : -1, &v);
  napi_set_element(env, result, 0, v);
  napi_create_int32(env, WIFSIGNALED(status) ? WTERMSIG(status) : 0, &v);
  napi_set_element(env, result, 1, v);
  return result;
}

/* A JS string of paths, each ended by a NUL, as C strings: `at` points into the one copy, `text`. */
typedef struct {
  char *text;
  char **at;
  size_t count;
} path_list;

static void free_paths(path_list *p) {
  free(p->at);
  free(p->text);
}

/* Reads a path_list; -1 after throwing (`fn` names the call in the message). */
static int get_paths(napi_env env, napi_value v, const char *fn, path_list *out) {
  char msg[96];
  size_t len;
  *out = (path_list){0};
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
    snprintf(msg, sizeof msg, "%s: paths must be a string", fn);
    napi_throw_type_error(env, NULL, msg);
    return -1;
  }
  out->text = malloc(len + 1);
  if (out->text) {
    napi_get_value_string_utf8(env, v, out->text, len + 1, &len);
    for (size_t k = 0; k < len; k++) out->count += out->text[k] == 0;
    out->at = malloc((out->count ? out->count : 1) * sizeof(char *));
  }
  if (!out->text || !out->at) {
    free_paths(out);
    snprintf(msg, sizeof msg, "%s: out of memory", fn);
    napi_throw_error(env, NULL, msg);
    return -1;
  }
  for (size_t k = 0, at = 0; k < out->count; k++) {
    out->at[k] = out->text + at;
    at += strlen(out->text + at) + 1;
  }
  return 0;
}

/* SHA-256, fetched once per process (on the main thread) and kept: EVP_sha256() makes OpenSSL 3
   look the implementation up again on every init, under a lock threads contend for. */
static const EVP_MD *sha256_md(void) {
  static const EVP_MD *md;
  if (!md) {
    EVP_MD *fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
    md = fetched ? fetched : EVP_sha256();
  }
  return md;
}

/* hashFiles' batch: the files, and where their results go. */
typedef struct {
  int root;
  char **paths;
  const double *expect; /* dev, ino, size per file */
  const double *offsets; /* where a kept file's content goes in contents, or -1 */
  unsigned char *contents;
  size_t contents_len;
  unsigned char *digests; /* 32 bytes per file */
  unsigned char *ok;      /* 1: hashed; 0: changed, vanished or reached through a symlink; 2: error (errs) */
  int32_t *errs;
  size_t count;
  const EVP_MD *md; /* sha256_md() */
} hash_batch;

/* Files a thread hashes at a time, with one digest context and one buffer. */
#define HASH_CHUNK 64

/*
 * Opens a file beneath root through no symlink, and checks it is still the regular file planned
 * (dev, ino, size). Returns the descriptor, or -1 with *ok 0 (changed, gone, or reached through a
 * symlink) or 2 (an error: *err is its errno).
 */
static int open_planned(int root, const char *path, const double *expect, unsigned char *ok, int32_t *err) {
  struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW, .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
  int fd = syscall(SYS_openat2, root, path, &how, sizeof how);
  if (fd < 0) {
    if (errno == ENOENT || errno == ELOOP || errno == EXDEV || errno == ENOTDIR) *ok = 0;
    else {
      *ok = 2;
      *err = errno;
    }
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) < 0) {
    *ok = 2;
    *err = errno;
    close(fd);
    return -1;
  }
  if (!S_ISREG(st.st_mode) || (double)st.st_dev != expect[0] || (double)st.st_ino != expect[1] || (double)st.st_size != expect[2]) {
    *ok = 0;
    close(fd);
    return -1;
  }
  return fd;
}

/* Reads exactly `want` bytes of fd into dst; 0, or -1 with errno (a file that shrank: EIO). */
static int read_exactly(int fd, unsigned char *dst, size_t want) {
  for (size_t got = 0; got < want;) {
    ssize_t r = read(fd, dst + got, want - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -1;
    if (r == 0) {
      errno = EIO;
      return -1;
    }
    got += (size_t)r;
  }
  return 0;
}

/* Hashes one file of the batch (see hashFiles) with this digest context; buf: a MiB for a file not kept. */
static void hash_one(hash_batch *b, size_t i, EVP_MD_CTX *ctx, unsigned char *buf, size_t buflen) {
  const double *e = b->expect + 3 * i;
  int fd = open_planned(b->root, b->paths[i], e, b->ok + i, b->errs + i);
  if (fd < 0) return;
  size_t want = (size_t)e[2], got = 0;
  double off = b->offsets[i];
  unsigned char *keep = off >= 0 && off + e[2] <= (double)b->contents_len ? b->contents + (size_t)off : NULL;
  EVP_DigestInit_ex(ctx, b->md, NULL);
  while (got < want) {
    unsigned char *dst = keep ? keep + got : buf;
    size_t room = keep ? want - got : (want - got < buflen ? want - got : buflen);
    ssize_t r = read(fd, dst, room);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      b->ok[i] = 2;
      b->errs[i] = errno;
      close(fd);
      return;
    }
    if (r == 0) break; /* shrank while read */
    EVP_DigestUpdate(ctx, dst, (size_t)r);
    got += (size_t)r;
  }
  close(fd);
  unsigned int len = 32;
  EVP_DigestFinal_ex(ctx, b->digests + 32 * i, &len);
  b->ok[i] = got == want;
}

/* Hashes the chunk-th HASH_CHUNK files of the batch; a MiB buffer only for a file not kept. */
static void hash_each(void *arg, size_t chunk) {
  hash_batch *b = arg;
  size_t buflen = 1 << 20, end = (chunk + 1) * HASH_CHUNK < b->count ? (chunk + 1) * HASH_CHUNK : b->count;
  unsigned char *buf = NULL;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  for (size_t i = chunk * HASH_CHUNK; i < end; i++) {
    double off = b->offsets[i];
    int kept = off >= 0 && off + b->expect[3 * i + 2] <= (double)b->contents_len;
    if (!kept && !buf) buf = malloc(buflen);
    if (!ctx || (!kept && !buf)) {
      b->ok[i] = 2;
      b->errs[i] = ENOMEM;
    } else hash_one(b, i, ctx, kept ? NULL : buf, buflen);
  }
  free(buf);
  EVP_MD_CTX_free(ctx);
}

/*
 * hashFiles(rootFd, paths, expect, offsets, contents, digests, ok, errs, threads): the sha256 of
 * each file, on up to `threads` threads: a COPY of 100,000 small files spends its time opening and
 * reading them, which is the kernel's work. `paths` (each ended by a NUL) are relative to rootFd,
 * resolved beneath it through no symlink; each must still be the regular file planned (expect:
 * dev, ino, size). A file with offsets[i] >= 0 also leaves its content in `contents` there. Results:
 * digests (32 bytes each), ok (1 hashed, 0 changed or gone, 2 an error: errs[i] is its errno).
 */
static napi_value hash_files(napi_env env, napi_callback_info info) {
  napi_value argv[9];
  if (get_args(env, info, 9, argv)) return NULL;
  hash_batch b = {0};
  int32_t threads;
  napi_get_value_int32(env, argv[0], &b.root);
  napi_get_value_int32(env, argv[8], &threads);
  path_list paths;
  if (get_paths(env, argv[1], "hashFiles", &paths)) return NULL;
  size_t count = paths.count;
  void *expect, *offsets, *contents, *digests, *ok, *errs;
  size_t n_expect, n_offsets, n_contents, n_digests, n_ok, n_errs;
  napi_typedarray_type t;
  napi_value ab;
  size_t boff;
  napi_get_typedarray_info(env, argv[2], &t, &n_expect, &expect, &ab, &boff);
  napi_get_typedarray_info(env, argv[3], &t, &n_offsets, &offsets, &ab, &boff);
  napi_get_buffer_info(env, argv[4], &contents, &n_contents);
  napi_get_buffer_info(env, argv[5], &digests, &n_digests);
  napi_get_typedarray_info(env, argv[6], &t, &n_ok, &ok, &ab, &boff);
  napi_get_typedarray_info(env, argv[7], &t, &n_errs, &errs, &ab, &boff);
  if (n_expect < 3 * count || n_offsets < count || n_digests < 32 * count || n_ok < count || n_errs < count) {
    free_paths(&paths);
    napi_throw_range_error(env, NULL, "hashFiles: a result array is shorter than the list of files");
    return NULL;
  }
  b.paths = paths.at;
  b.expect = expect;
  b.offsets = offsets;
  b.contents = contents;
  b.contents_len = n_contents;
  b.digests = digests;
  b.ok = ok;
  b.errs = errs;
  b.count = count;
  b.md = sha256_md();
  run_parallel((count + HASH_CHUNK - 1) / HASH_CHUNK, threads, hash_each, &b);
  free_paths(&paths);
  return NULL;
}

/* Up to 64 bytes as a lowercase hex string. */
static napi_value hex_string(napi_env env, const unsigned char *bytes, size_t n) {
  static const char HEX[] = "0123456789abcdef";
  char hex[128];
  for (size_t i = 0; i < n && i < 64; i++) hex[2 * i] = HEX[bytes[i] >> 4], hex[2 * i + 1] = HEX[bytes[i] & 15];
  napi_value result;
  napi_create_string_latin1(env, hex, 2 * (n < 64 ? n : 64), &result);
  return result;
}

/*
 * sha256(data): the lowercase hex sha256 of a Buffer, or of a string's UTF-8. For the short texts
 * a build hashes at its start (cache keys, records), so that a cached build need not load
 * node:crypto (~3 ms of its start).
 */
static napi_value sha256_hex(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv)) return NULL;
  bool is_buffer;
  napi_is_buffer(env, argv[0], &is_buffer);
  void *data;
  size_t len;
  char *text = NULL;
  if (is_buffer) napi_get_buffer_info(env, argv[0], &data, &len);
  else {
    if (napi_get_value_string_utf8(env, argv[0], NULL, 0, &len) != napi_ok) {
      napi_throw_type_error(env, NULL, "sha256: a Buffer or a string");
      return NULL;
    }
    text = malloc(len + 1);
    if (!text) return throw_errno(env, "malloc", "sha256");
    napi_get_value_string_utf8(env, argv[0], text, len + 1, &len);
    data = text;
  }
  unsigned char digest[32];
  unsigned int n = 32;
  int ok = EVP_Digest(data, len, digest, &n, sha256_md(), NULL);
  free(text);
  if (!ok) {
    napi_throw_error(env, NULL, "sha256: OpenSSL failed");
    return NULL;
  }
  return hex_string(env, digest, 32);
}

/* randomHex(bytes): `bytes` (at most 64) random bytes from getrandom(2), as hex. */
static napi_value random_hex(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (get_args(env, info, 1, argv)) return NULL;
  uint32_t want;
  napi_get_value_uint32(env, argv[0], &want);
  if (want > 64) want = 64;
  unsigned char bytes[64];
  for (size_t got = 0; got < want;) {
    ssize_t r = getrandom(bytes + got, want - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return throw_errno(env, "getrandom", "randomHex");
    got += (size_t)r;
  }
  return hex_string(env, bytes, want);
}

/* An octal field as node-tar writes it (tar-format.ts octalInto); returns the sum of its bytes. */
static unsigned octal_field(unsigned char *at, int size, unsigned long long n) {
  int digits = 1;
  for (unsigned long long x = n; x >= 8; x /= 8) digits++;
  int width = digits == size - 1 ? size - 1 : size - 2;
  unsigned sum = 0;
  unsigned long long x = n;
  for (int i = width - 1; i >= 0; i--, x /= 8) {
    at[i] = (unsigned char)('0' + (x % 8));
    sum += at[i];
  }
  if (width == size - 2) {
    at[size - 2] = ' ';
    sum += ' ';
  }
  at[size - 1] = 0;
  return sum;
}

/* tarFiles' batch. */
typedef struct {
  int root;
  char **paths, **names;
  const double *meta; /* dev, ino, size, mode, uid, gid, mtime, offset per file */
  unsigned char *out;
  size_t out_len;
  unsigned char *ok;
  int32_t *errs;
} tar_batch;

#define TAR_META 8

/* One file's ustar header and content into out at its offset (zeroed by the caller). */
static void tar_each(void *arg, size_t i) {
  tar_batch *b = arg;
  const double *m = b->meta + TAR_META * i;
  size_t size = (size_t)m[2], off = (size_t)m[7], namelen = strlen(b->names[i]);
  if (off + 512 + size > b->out_len || namelen >= 100) {
    b->ok[i] = 2;
    b->errs[i] = EINVAL;
    return;
  }
  int fd = open_planned(b->root, b->paths[i], m, b->ok + i, b->errs + i);
  if (fd < 0) return;
  unsigned char *h = b->out + off;
  if (read_exactly(fd, h + 512, size) < 0) {
    b->ok[i] = errno == EIO ? 0 : 2;
    b->errs[i] = errno;
    close(fd);
    return;
  }
  close(fd);
  /* the checksum counts its own field as spaces; every byte not written stays zero */
  unsigned sum = 8 * ' ';
  for (size_t k = 0; k < namelen; k++) sum += (h[k] = (unsigned char)b->names[i][k]);
  sum += octal_field(h + 100, 8, (unsigned long long)m[3] & 07777);
  sum += octal_field(h + 108, 8, (unsigned long long)m[4]);
  sum += octal_field(h + 116, 8, (unsigned long long)m[5]);
  sum += octal_field(h + 124, 12, (unsigned long long)size);
  sum += octal_field(h + 136, 12, (unsigned long long)m[6]);
  h[156] = '0';
  sum += '0';
  memcpy(h + 257, "ustar\0" "00", 8);
  for (int k = 257; k < 265; k++) sum += h[k];
  sum += octal_field(h + 329, 8, 0);
  sum += octal_field(h + 337, 8, 0);
  octal_field(h + 148, 8, sum);
  b->ok[i] = 1;
}

/*
 * tarFiles(rootFd, paths, names, meta, out, ok, errs, threads): small regular files as ustar
 * entries, header and content, on threads: each file (paths: NUL-ended, beneath rootFd through no
 * symlink, still the file planned: meta's dev, ino, size) goes into `out` (zeroed) at meta's
 * offset, under its tar name (NUL-ended, under 100 bytes) with meta's mode, uid, gid and mtime,
 * byte for byte as tar-format.ts encodeUstarInto writes it. ok and errs as hashFiles gives them.
 */
static napi_value tar_files(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  if (get_args(env, info, 8, argv)) return NULL;
  tar_batch b = {0};
  int32_t threads;
  napi_get_value_int32(env, argv[0], &b.root);
  napi_get_value_int32(env, argv[7], &threads);
  path_list paths, names;
  if (get_paths(env, argv[1], "tarFiles", &paths)) return NULL;
  if (get_paths(env, argv[2], "tarFiles", &names)) {
    free_paths(&paths);
    return NULL;
  }
  void *meta, *out, *ok, *errs;
  size_t n_meta, n_out, n_ok, n_errs, boff;
  napi_typedarray_type t;
  napi_value ab;
  napi_get_typedarray_info(env, argv[3], &t, &n_meta, &meta, &ab, &boff);
  napi_get_buffer_info(env, argv[4], &out, &n_out);
  napi_get_typedarray_info(env, argv[5], &t, &n_ok, &ok, &ab, &boff);
  napi_get_typedarray_info(env, argv[6], &t, &n_errs, &errs, &ab, &boff);
  size_t count = paths.count;
  if (names.count != count || n_meta < TAR_META * count || n_ok < count || n_errs < count) {
    free_paths(&paths);
    free_paths(&names);
    napi_throw_range_error(env, NULL, "tarFiles: the lists of files are not the same length");
    return NULL;
  }
  b.paths = paths.at;
  b.names = names.at;
  b.meta = meta;
  b.out = out;
  b.out_len = n_out;
  b.ok = ok;
  b.errs = errs;
  run_parallel(count, threads, tar_each, &b);
  free_paths(&paths);
  free_paths(&names);
  return NULL;
}

/* writeNewFiles' batch: the files, and where their results go. */
typedef struct {
  char **paths;
  const unsigned char **datas;
  size_t *lens;
  const double *meta; /* uid, gid, mode, mtime per file */
  int32_t *results;   /* errno, and the step that failed (1 open, 2 write, 3 fchown, 4 fchmod, 5 futimens) */
  size_t count;
} write_batch;

static void write_each(void *arg, size_t i) {
  write_batch *b = arg;
  const double *m = b->meta + 4 * i;
  int32_t *r = b->results + 2 * i;
  const char *failed = NULL;
  if (create_file(b->paths[i], b->datas[i], b->lens[i], (uint32_t)m[0], (uint32_t)m[1], (uint32_t)m[2], (int64_t)m[3], &failed) == 0) return;
  r[0] = errno;
  r[1] = 1;
  while (r[1] < 5 && strcmp(FILE_STEPS[r[1] - 1], failed) != 0) r[1]++;
}

/*
 * writeNewFiles(paths, datas, meta, results, threads): writeNewFile for each file, on up to
 * `threads` threads: extracting a layer of 100,000 small files is that many creations, the
 * kernel's work. paths: each ended by a NUL, in directories that exist; datas: a Buffer each;
 * meta: uid, gid, mode, mtime each. results: per file, 0 or the errno and the step that failed
 * (1 open, 2 write, 3 fchown, 4 fchmod, 5 futimens). The caller orders what must be ordered (a path
 * twice, a file below another) into separate calls.
 */
static napi_value write_new_files(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  path_list paths;
  if (get_args(env, info, 5, argv) || get_paths(env, argv[0], "writeNewFiles", &paths)) return NULL;
  write_batch b = {0};
  uint32_t count;
  napi_get_array_length(env, argv[1], &count);
  b.datas = malloc((count ? count : 1) * sizeof(char *));
  b.lens = malloc((count ? count : 1) * sizeof(size_t));
  void *meta, *results;
  size_t n_meta, n_results, boff;
  napi_typedarray_type t;
  napi_value ab;
  napi_get_typedarray_info(env, argv[2], &t, &n_meta, &meta, &ab, &boff);
  napi_get_typedarray_info(env, argv[3], &t, &n_results, &results, &ab, &boff);
  if (!b.datas || !b.lens) {
    free_paths(&paths);
    free(b.datas);
    free(b.lens);
    napi_throw_error(env, NULL, "writeNewFiles: out of memory");
    return NULL;
  }
  const char *bad = paths.count != count ? "a path for each data" : n_meta < 4 * count ? "4 numbers of meta for each file" : n_results < 2 * count ? "2 results for each file" : NULL;
  for (uint32_t i = 0; !bad && i < count; i++) {
    napi_value v;
    void *d;
    napi_get_element(env, argv[1], i, &v);
    if (napi_get_buffer_info(env, v, &d, &b.lens[i]) != napi_ok) bad = "a Buffer for each file";
    b.datas[i] = d;
  }
  if (bad) {
    free_paths(&paths);
    free(b.datas);
    free(b.lens);
    char msg[128];
    snprintf(msg, sizeof msg, "writeNewFiles: expected %s", bad);
    napi_throw_type_error(env, NULL, msg);
    return NULL;
  }
  int32_t threads;
  napi_get_value_int32(env, argv[4], &threads);
  b.paths = paths.at;
  b.meta = meta;
  b.results = results;
  b.count = count;
  memset(results, 0, 2 * count * sizeof(int32_t));
  run_parallel(count, threads, write_each, &b);
  free_paths(&paths);
  free(b.datas);
  free(b.lens);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"listXattrs", NULL, list_xattrs, NULL, NULL, NULL, napi_default, NULL},
      {"getXattr", NULL, get_xattr, NULL, NULL, NULL, napi_default, NULL},
      {"setXattr", NULL, set_xattr, NULL, NULL, NULL, napi_default, NULL},
      {"mknod", NULL, do_mknod, NULL, NULL, NULL, napi_default, NULL},
      {"tryLock", NULL, try_lock, NULL, NULL, NULL, napi_default, NULL},
      {"writeNewFile", NULL, write_new_file, NULL, NULL, NULL, napi_default, NULL},
      {"finishFile", NULL, finish_file, NULL, NULL, NULL, napi_default, NULL},
      {"scanDir", NULL, scan_dir, NULL, NULL, NULL, napi_default, NULL},
      {"listNames", NULL, list_names, NULL, NULL, NULL, napi_default, NULL},
      {"scanDirs", NULL, scan_dirs, NULL, NULL, NULL, napi_default, NULL},
      {"hashFiles", NULL, hash_files, NULL, NULL, NULL, napi_default, NULL},
      {"tarFiles", NULL, tar_files, NULL, NULL, NULL, napi_default, NULL},
      {"writeNewFiles", NULL, write_new_files, NULL, NULL, NULL, napi_default, NULL},
      {"makeStepNetwork", NULL, make_step_network, NULL, NULL, NULL, napi_default, NULL},
      {"stopStepNetwork", NULL, stop_step_network, NULL, NULL, NULL, napi_default, NULL},
      {"loadSlirp", NULL, load_slirp, NULL, NULL, NULL, napi_default, NULL},
      {"readFileInto", NULL, read_file_into, NULL, NULL, NULL, napi_default, NULL},
      {"pipe", NULL, make_pipe, NULL, NULL, NULL, napi_default, NULL},
      {"spawn", NULL, do_spawn, NULL, NULL, NULL, napi_default, NULL},
      {"reap", NULL, reap, NULL, NULL, NULL, napi_default, NULL},
      {"sha256", NULL, sha256_hex, NULL, NULL, NULL, napi_default, NULL},
      {"randomHex", NULL, random_hex, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
