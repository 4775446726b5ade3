/*
 * tsbuild-sandbox: runs one RUN step's command the way a container runtime would.
 *
 * Node.js cannot unshare namespaces, mount, pivot_root or set capabilities, and a Node process is
 * multi-threaded (unshare(CLONE_NEWNS) needs a single thread), so this small helper does it:
 *
 *   helper (in tsbuild's namespaces)      unshare(mnt, pid, uts, ipc), fork, wait, relay exit status
 *     └─ init, PID 1 of the new pid ns    mount overlay + /proc /dev /sys + bind files, pivot_root
 *          └─ command                     groups/gid/uid, Docker's default capabilities, env, cwd, exec
 *
 * Every mount lives in the private mount namespace, so nothing outlives the step, however it ends.
 * The helper and init die with their parent (PR_SET_PDEATHSIG); PID 1's exit kills whatever the
 * command left running.
 *
 * Usage: tsbuild-sandbox [options] -- command [args...]
 *   --lowers-dir DIR      directory the lowerdir names in --overlay are relative to (short links)
 *   --overlay OPTS        overlay mount options (lowerdir=..,upperdir=..,workdir=..)
 *   --rootfs DIR          where to mount the overlay (becomes the new root)
 *   --erofs IMG:DIR       mount the EROFS image IMG (a layer not extracted) read-only on DIR before the
 *                         overlay, both relative to --lowers-dir (repeatable)
 *   --hostname NAME
 *   --bind SRC:DST        bind-mount host file SRC over DST inside the rootfs (repeatable)
 *   --uid N --gid N --groups N,N,...
 *   --cwd DIR             working directory inside the rootfs (created if missing)
 *   --env K=V             environment of the command (repeatable); nothing else is inherited
 *   --env-file PATH       more of it, NUL-separated, read and deleted at start (values such as
 *                         secrets stay off every command line)
 *   --mount TYPE RO SRC DST   an extra mount at DST: bind (SRC a host path), tmpfs (SRC its size,
 *                         "" for the default) or overlay (SRC its options, lowerdirs relative to
 *                         --lowers-dir; read-only); RO is 1 for read-only. Mounted in the order given (parents
 *                         first), after /proc, /dev and /sys; DST is resolved inside the rootfs as
 *                         a chroot would resolve it (openat2 RESOLVE_IN_ROOT: no symlink leaves it),
 *                         and a missing mount point is made where it would be (in /dev's tmpfs, in
 *                         another mount; the init layer holds those on the image's filesystem)
 *   --cgroup DIR          join this cgroup (its cgroup.procs) before anything else (repeatable: one per
 *                         v1 controller); every process of the step inherits it
 *   --rlimit NAME:SOFT:HARD  a ulimit of the command (nofile, nproc, core, stack, memlock, ...; -1 unlimited)
 *   --shm-size BYTES      size of /dev/shm (default 64 MiB, as Docker)
 *   --userns              tsbuild runs as root of a user namespace (rootless): /dev's nodes are bound
 *                         from the host's, /sys too when the network is the host's
 *   --insecure            RUN --security=insecure: every capability, no seccomp filter, /proc and /sys
 *                         not masked and /sys writable (a privileged container, as BuildKit's)
 *   --error-file PATH     where a failure to set the step up is described, in one line
 *   --net none|host|sandbox   none: a new network namespace with only loopback; host: the host's;
 *                         sandbox: the namespace --netns names, which tsbuild made and connected
 *   --netns PATH          the network namespace to join (/proc/<tsbuild>/fd/<n>: network-pool.ts
 *                         makes it and connects it with slirp4netns while the step before runs)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ITEMS 4096

static const char *lowers_dir, *overlay_opts, *rootfs, *hostname = "tsbuild", *cwd = "/";
static const char *binds[64];
static int nbinds;
static const char *erofs_images[512];
static int nerofs;
static char *envv[MAX_ITEMS + 1];
static int nenv;
static uid_t uid;
static gid_t gid;
static gid_t groups[256];
static int ngroups;
static char **command;
struct extra_mount {
  const char *type, *src, *dst;
  int ro;
};
static struct extra_mount mounts[64];
static int nmounts;
static int net_none, net_sandbox;
static const char *netns_path;
static int insecure; /* --insecure */
static int in_userns; /* --userns: root of a user namespace (rootless: native/userns.c), not the machine's root */
static const char *cgroups[8];
static int ncgroups;
static struct { int resource; struct rlimit limit; } rlimits[16];
static int nrlimits;
static unsigned long long shm_size = 65536ULL * 1024;

/* `nofile` → RLIMIT_NOFILE, as docker's --ulimit names them. */
static int rlimit_resource(const char *name) {
  static const struct { const char *name; int resource; } names[] = {
      {"core", RLIMIT_CORE}, {"cpu", RLIMIT_CPU}, {"data", RLIMIT_DATA}, {"fsize", RLIMIT_FSIZE},
      {"locks", RLIMIT_LOCKS}, {"memlock", RLIMIT_MEMLOCK}, {"msgqueue", RLIMIT_MSGQUEUE},
      {"nice", RLIMIT_NICE}, {"nofile", RLIMIT_NOFILE}, {"nproc", RLIMIT_NPROC}, {"rss", RLIMIT_RSS},
      {"rtprio", RLIMIT_RTPRIO}, {"rttime", RLIMIT_RTTIME}, {"sigpending", RLIMIT_SIGPENDING},
      {"stack", RLIMIT_STACK}, {"as", RLIMIT_AS}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(names[i].name, name) == 0) return names[i].resource;
  return -1;
}
/* --error-file, opened at start: a step fails after pivot_root too, where the path is out of reach */
static int error_fd = -1;
static volatile pid_t forward_to;

/* Fails the step before its command runs: one line on stderr and in --error-file, exit 125. */
static void die(const char *fmt, ...) {
  int err = errno;
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (err && n >= 0 && (size_t)n < sizeof msg) snprintf(msg + n, sizeof msg - n, ": %s", strerror(err));
  fprintf(stderr, "tsbuild-sandbox: %s\n", msg);
  if (error_fd >= 0 && write(error_fd, msg, strlen(msg)) < 0) { /* nothing more to say */ }
  _exit(125);
}

static void usage(const char *why) {
  errno = 0;
  die("%s (usage: tsbuild-sandbox [options] -- command [args...])", why);
}

static void read_env_file(const char *file) {
  FILE *f = fopen(file, "r");
  if (!f) die("open %s", file);
  static char buf[1 << 20];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  unlink(file);
  buf[n] = 0;
  for (size_t off = 0; off < n;) {
    size_t len = strlen(buf + off);
    if (len > 0) {
      if (nenv >= MAX_ITEMS) usage("too many environment variables");
      envv[nenv++] = buf + off;
    }
    off += len + 1;
  }
}

static void parse_args(int argc, char **argv) {
  int i;
  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--insecure") == 0) {
      insecure = 1;
      continue;
    }
    if (strcmp(a, "--userns") == 0) {
      in_userns = 1;
      continue;
    }
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (strcmp(a, "--mount") == 0) {
      if (i + 4 >= argc) usage("--mount needs TYPE RO SRC DST");
      if (nmounts >= 64) usage("too many --mount");
      mounts[nmounts].type = argv[i + 1];
      mounts[nmounts].ro = strcmp(argv[i + 2], "1") == 0;
      mounts[nmounts].src = argv[i + 3];
      mounts[nmounts].dst = argv[i + 4];
      nmounts++;
      i += 4;
      continue;
    }
    if (i + 1 >= argc) usage("missing option value");
    const char *v = argv[++i];
    if (strcmp(a, "--lowers-dir") == 0) lowers_dir = v;
    else if (strcmp(a, "--overlay") == 0) overlay_opts = v;
    else if (strcmp(a, "--rootfs") == 0) rootfs = v;
    else if (strcmp(a, "--hostname") == 0) hostname = v;
    else if (strcmp(a, "--cwd") == 0) cwd = v;
    else if (strcmp(a, "--cgroup") == 0) {
      if (ncgroups >= 8) usage("too many --cgroup");
      cgroups[ncgroups++] = v;
    } else if (strcmp(a, "--shm-size") == 0) shm_size = strtoull(v, NULL, 10);
    else if (strcmp(a, "--rlimit") == 0) {
      char name[32];
      long long soft, hard;
      if (nrlimits >= 16) usage("too many --rlimit");
      if (sscanf(v, "%31[a-z]:%lld:%lld", name, &soft, &hard) != 3 || rlimit_resource(name) < 0) usage("--rlimit NAME:SOFT:HARD");
      rlimits[nrlimits].resource = rlimit_resource(name);
      rlimits[nrlimits].limit.rlim_cur = soft < 0 ? RLIM_INFINITY : (rlim_t)soft;
      rlimits[nrlimits].limit.rlim_max = hard < 0 ? RLIM_INFINITY : (rlim_t)hard;
      nrlimits++;
    }
    else if (strcmp(a, "--env-file") == 0) read_env_file(v);
    else if (strcmp(a, "--error-file") == 0) error_fd = open(v, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    else if (strcmp(a, "--net") == 0) {
      if (strcmp(v, "none") == 0) net_none = 1;
      else if (strcmp(v, "sandbox") == 0) net_sandbox = 1;
      else if (strcmp(v, "host") != 0) usage("--net is none, host or sandbox");
    } else if (strcmp(a, "--netns") == 0) netns_path = v;
    else if (strcmp(a, "--uid") == 0) uid = (uid_t)strtoul(v, NULL, 10);
    else if (strcmp(a, "--gid") == 0) gid = (gid_t)strtoul(v, NULL, 10);
    else if (strcmp(a, "--erofs") == 0) {
      if (nerofs >= 512) usage("too many --erofs");
      erofs_images[nerofs++] = v;
    } else if (strcmp(a, "--bind") == 0) {
      if (nbinds >= 64) usage("too many --bind");
      binds[nbinds++] = v;
    } else if (strcmp(a, "--env") == 0) {
      if (nenv >= MAX_ITEMS) usage("too many --env");
      envv[nenv++] = (char *)v;
    } else if (strcmp(a, "--groups") == 0) {
      char *copy = strdup(v), *save = NULL;
      for (char *t = strtok_r(copy, ",", &save); t && ngroups < 256; t = strtok_r(NULL, ",", &save))
        groups[ngroups++] = (gid_t)strtoul(t, NULL, 10);
    } else usage("unknown option");
  }
  if (i >= argc) usage("no command");
  if (!rootfs || !overlay_opts) usage("--rootfs and --overlay are required");
  command = argv + i;
}

static void mountf(const char *src, const char *dst, const char *type, unsigned long flags,
                   const char *data) {
  if (mount(src, dst, type, flags, data) < 0) die("mount %s on %s", type ? type : src, dst);
}

/* A device node of /dev; in a user namespace, where mknod is refused, the host's node bound there. */
static void make_dev(const char *name, unsigned major, unsigned minor) {
  if (in_userns) {
    char host[64];
    snprintf(host, sizeof host, "/dev/%s", name);
    int fd = open(name, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
    if (fd < 0) die("make /dev/%s", name);
    close(fd);
    mountf(host, name, NULL, MS_BIND, NULL);
    return;
  }
  if (mknod(name, S_IFCHR | 0666, makedev(major, minor)) < 0) die("mknod /dev/%s", name);
  chmod(name, 0666); /* mknod is subject to umask */
}

/*
 * Remounts a bind mount with `flags` added. Flags it already has are kept: in a user namespace,
 * those of a mount made outside it (nosuid, nodev, noexec, atime) are locked, and a remount without
 * them is refused.
 */
static int remount_bind(const char *path, unsigned long flags) {
  struct statvfs st;
  if (statvfs(path, &st) == 0) {
    if (st.f_flag & ST_NOSUID) flags |= MS_NOSUID;
    if (st.f_flag & ST_NODEV) flags |= MS_NODEV;
    if (st.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
    if (st.f_flag & ST_NOATIME) flags |= MS_NOATIME;
    if (st.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
    if (st.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  }
  return mount(NULL, path, NULL, MS_BIND | MS_REMOUNT | flags, NULL);
}

static void remount_readonly(const char *path) {
  if (remount_bind(path, MS_RDONLY) < 0) die("remount %s read-only", path);
}

/*
 * /sys, read-only unless --insecure. A sysfs of its own needs a network namespace of its own when
 * in a user namespace: with the host's network (--network=host, rootless) the host's /sys is bound
 * instead, as rootless Docker does.
 */
static void mount_sys(void) {
  unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC | (insecure ? 0 : MS_RDONLY);
  if (mount("sysfs", "sys", "sysfs", flags, NULL) == 0) return;
  if (!in_userns || errno != EPERM) die("mount sysfs on sys");
  mountf("/sys", "sys", NULL, MS_BIND | MS_REC, NULL);
  if (insecure) return;
  /* every mount under it too (the host's cgroup tree is one): a remount would change only the top */
  struct { unsigned long long attr_set, attr_clr, propagation, userns_fd; } attr = {1 /* MOUNT_ATTR_RDONLY */, 0, 0, 0};
  if (syscall(442 /* mount_setattr */, AT_FDCWD, "sys", 0x8000 /* AT_RECURSIVE */, &attr, sizeof attr) < 0)
    die("make the host's /sys read-only in the step (mount_setattr, Linux 5.12+)");
}

/* /proc of the step's own PID namespace. */
static void mount_proc(void) {
  if (mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) == 0) return;
  if (in_userns && errno == EPERM) {
    errno = 0;
    die("cannot mount /proc in a user namespace: this machine's /proc has paths masked (in a container: "
        "procMount: Unmasked in Kubernetes, --security-opt systempaths=unconfined in Docker)");
  }
  die("mount proc on proc");
}

/* /dev as Docker makes it: a small tmpfs with the usual nodes, a private devpts, /dev/shm, mqueue. */
static void setup_dev(void) {
  mountf("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k");
  if (chdir("dev") < 0) die("chdir /dev");
  make_dev("null", 1, 3);
  make_dev("zero", 1, 5);
  make_dev("full", 1, 7);
  make_dev("random", 1, 8);
  make_dev("urandom", 1, 9);
  make_dev("tty", 5, 0);
  mkdir("pts", 0755);
  mkdir("shm", 01777);
  mkdir("mqueue", 0755);
  mountf("devpts", "pts", "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5");
  char shm_opts[64];
  snprintf(shm_opts, sizeof shm_opts, "mode=1777,size=%llu", shm_size);
  mountf("shm", "shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, shm_opts);
  mountf("mqueue", "mqueue", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  symlink("pts/ptmx", "ptmx");
  symlink("/proc/self/fd", "fd");
  symlink("/proc/self/fd/0", "stdin");
  symlink("/proc/self/fd/1", "stdout");
  symlink("/proc/self/fd/2", "stderr");
  if (chdir("..") < 0) die("chdir /");
}

/* Paths of /proc and /sys that Docker hides or makes read-only in every container. */
static void protect_kernel_paths(void) {
  static const char *masked[] = {"proc/asound", "proc/acpi", "proc/kcore", "proc/keys",
                                 "proc/latency_stats", "proc/timer_list", "proc/timer_stats",
                                 "proc/sched_debug", "proc/scsi", "sys/firmware", NULL};
  static const char *readonly[] = {"proc/bus", "proc/fs", "proc/irq", "proc/sys",
                                   "proc/sysrq-trigger", NULL};
  struct stat st;
  for (int i = 0; masked[i]; i++) {
    if (lstat(masked[i], &st) < 0) continue;
    if (S_ISDIR(st.st_mode)) mountf("tmpfs", masked[i], "tmpfs", MS_RDONLY, NULL);
    else mountf("dev/null", masked[i], NULL, MS_BIND, NULL);
  }
  for (int i = 0; readonly[i]; i++) {
    if (lstat(readonly[i], &st) < 0) continue;
    mountf(readonly[i], readonly[i], NULL, MS_BIND | MS_REC, NULL);
    remount_readonly(readonly[i]);
  }
}

static void make_file_mountpoint(const char *rel) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", rel);
  for (char *p = buf; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    mkdir(buf, 0755);
    *p = '/';
  }
  int fd = open(buf, O_CREAT | O_WRONLY | O_CLOEXEC, 0755);
  if (fd >= 0) close(fd);
}

static int root_fd = -1; /* the new root (the overlay), for resolving mount targets inside it */

/* `path` (relative to the new root) resolved as a chroot would: symlinks and .. never leave it. */
static int open_in_root(const char *path, int flags) {
  struct open_how how;
  memset(&how, 0, sizeof how);
  how.flags = (unsigned long long)(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  return (int)syscall(SYS_openat2, root_fd, path, &how, sizeof how);
}

/*
 * The mount point of an extra mount, as an O_PATH descriptor: `dst` resolved inside the new root,
 * each missing component made on the way (directories; the last one an empty file when `file`).
 * Missing components can only be inside /dev's tmpfs or inside another mount: the init layer holds
 * every mount point on the image's own filesystem, so nothing is made in the step's layer.
 */
static int mount_point(const char *dst, int file) {
  char rel[4096];
  while (*dst == '/') dst++;
  if (snprintf(rel, sizeof rel, "%s", *dst ? dst : ".") >= (int)sizeof rel) usage("--mount target too long");
  int fd = open_in_root(rel, O_PATH);
  if (fd >= 0) return fd;
  if (errno != ENOENT) die("--mount target /%s", dst);
  for (char *p = rel;; p++) {
    if (*p != '/' && *p != 0) continue;
    char saved = *p;
    *p = 0;
    int have = open_in_root(rel, O_PATH);
    if (have >= 0) close(have);
    else if (errno != ENOENT) die("--mount target /%s: /%s", dst, rel);
    else {
      /* make it in its parent, itself resolved inside the root */
      char *slash = strrchr(rel, '/');
      const char *name = slash ? slash + 1 : rel;
      if (slash) *slash = 0;
      int parent = open_in_root(slash ? rel : ".", O_PATH | O_DIRECTORY);
      if (slash) *slash = '/';
      if (parent < 0) die("--mount target /%s: /%s is not a directory", dst, rel);
      int made;
      if (saved == 0 && file) {
        made = openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (made >= 0) close(made);
      } else made = mkdirat(parent, name, 0755);
      close(parent);
      if (made < 0 && errno != EEXIST) die("--mount target /%s: cannot make its mount point /%s", dst, rel);
    }
    *p = saved;
    if (saved == 0) break;
  }
  fd = open_in_root(rel, O_PATH);
  if (fd < 0) die("--mount target /%s", dst);
  return fd;
}

/* RUN --mount: binds, tmpfs, and read-only overlays of other stages (lowerdirs in the lowers dir). */
static void extra_mounts(void) {
  char at[64], opts[8192];
  for (int i = 0; i < nmounts; i++) {
    const struct extra_mount *m = &mounts[i];
    struct stat src;
    int is_bind = strcmp(m->type, "bind") == 0;
    if (is_bind && stat(m->src, &src) < 0) die("--mount source for /%s", m->dst);
    int file = is_bind && !S_ISDIR(src.st_mode);
    int fd = mount_point(m->dst, file);
    struct stat st;
    if (fstat(fd, &st) < 0) die("--mount target %s", m->dst);
    if (file && S_ISDIR(st.st_mode)) { errno = 0; die("--mount target %s is a directory, and the mount is a file", m->dst); }
    if (!file && !S_ISDIR(st.st_mode)) { errno = 0; die("--mount target %s is not a directory", m->dst); }
    snprintf(at, sizeof at, "/proc/self/fd/%d", fd);
    if (strcmp(m->type, "overlay") == 0) {
      int back = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (back < 0 || chdir(lowers_dir) < 0) die("chdir %s", lowers_dir);
      if (mount("overlay", at, "overlay", MS_RDONLY | MS_NODEV | MS_NOSUID, m->src) < 0) die("--mount at %s", m->dst);
      if (fchdir(back) < 0) die("fchdir");
      close(back);
    } else if (strcmp(m->type, "tmpfs") == 0) {
      if (*m->src) snprintf(opts, sizeof opts, "size=%s", m->src);
      if (mount("tmpfs", at, "tmpfs", MS_NOSUID | MS_NODEV, *m->src ? opts : NULL) < 0) die("--mount type=tmpfs at %s", m->dst);
    } else if (is_bind) {
      if (mount(m->src, at, NULL, MS_BIND | MS_REC, NULL) < 0) die("--mount at %s", m->dst);
      /* every bind is nosuid,nodev (read-only too when asked): a step cannot open host devices
         through it. The remount is of the new mount, reached by resolving the target again. */
      int on = mount_point(m->dst, file);
      snprintf(at, sizeof at, "/proc/self/fd/%d", on);
      if (remount_bind(at, MS_NOSUID | MS_NODEV | (m->ro ? MS_RDONLY : 0)) < 0) die("--mount at %s", m->dst);
      close(on);
    } else usage("unknown --mount type");
    close(fd);
  }
}

static void loopback_up(void) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "lo");
  if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) die("loopback");
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) die("loopback up");
  close(fd);
}

static void setup_rootfs(void) {
  mountf(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
  if (lowers_dir && chdir(lowers_dir) < 0) die("chdir %s", lowers_dir);
  /* layers kept as EROFS images: mounted from the file (no loop device), in this namespace only */
  for (int i = 0; i < nerofs; i++) {
    char *spec = strdup(erofs_images[i]), *colon = strrchr(spec, ':');
    if (!colon) usage("--erofs needs IMG:DIR");
    *colon = 0;
    if (mount(spec, colon + 1, "erofs", MS_RDONLY | MS_NODEV | MS_NOSUID, NULL) < 0) die("mount erofs image %s", spec);
    free(spec);
  }
  /* nodev: device nodes a step creates in its rootfs cannot open host devices; /dev is our tmpfs */
  if (mount("overlay", rootfs, "overlay", MS_NODEV, overlay_opts) < 0) {
    struct utsname u;
    struct statfs fs;
    if (errno == EINVAL && statfs(".", &fs) == 0 && fs.f_type == 0x794c7630 /* OVERLAYFS_SUPER_MAGIC */) {
      errno = 0;
      die("mount overlay: the store is on an overlayfs (a container's own filesystem), which cannot hold another "
          "overlay's layers: put it on a volume (--root or TSBUILD_ROOT; an emptyDir in Kubernetes)");
    }
    if (in_userns && errno != ENOSPC && uname(&u) == 0)
      die("mount overlay in a user namespace (rootless needs Linux 5.11 or later, and a store on a filesystem with "
          "user xattrs, such as ext4, xfs or btrfs; this kernel is %s)", u.release);
    die("mount overlay on %s", rootfs);
  }
  if (net_none) loopback_up(); /* a sandbox network namespace has it up already (makeNetns) */
  if (chdir(rootfs) < 0) die("chdir %s", rootfs);
  root_fd = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) die("open the new root");
  mount_proc();
  setup_dev();
  mount_sys();
  for (int i = 0; i < nbinds; i++) {
    char *spec = strdup(binds[i]), *colon = strchr(spec, ':');
    if (!colon) usage("--bind needs SRC:DST");
    *colon = 0;
    const char *dst = colon + 1;
    while (*dst == '/') dst++;
    /* /dev is our own tmpfs: mount points there (heredoc scripts in /dev/pipes) are made here */
    if (strncmp(dst, "dev/", 4) == 0) make_file_mountpoint(dst);
    mountf(spec, dst, NULL, MS_BIND, NULL);
  }
  extra_mounts();
  close(root_fd);
  if (!insecure) protect_kernel_paths();
  /* pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves the new. */
  if (syscall(SYS_pivot_root, ".", ".") < 0) die("pivot_root");
  if (umount2(".", MNT_DETACH) < 0) die("umount old root");
  if (chdir("/") < 0) die("chdir /");
}

/* Docker's default capability set for containers. */
static const int default_caps[] = {
    CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FSETID, CAP_FOWNER, CAP_MKNOD, CAP_NET_RAW, CAP_SETGID,
    CAP_SETUID, CAP_SETFCAP, CAP_SETPCAP, CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT, CAP_KILL,
    CAP_AUDIT_WRITE};

static int is_default_cap(int cap) {
  if (insecure) return 1; /* --insecure keeps them all */
  for (size_t i = 0; i < sizeof default_caps / sizeof default_caps[0]; i++)
    if (default_caps[i] == cap) return 1;
  return 0;
}

/*
 * A seccomp filter in the spirit of Docker's default profile: what the capability set does not
 * already forbid but still reaches outside the step: the kernel keyring (shared with the host),
 * new namespaces (clone/unshare/setns), BPF, perf, userfaultfd, module and kexec loading.
 */
#if defined(__x86_64__)
#define SANDBOX_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SANDBOX_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

#define NS_FLAGS 0x7E020000u /* CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET */
#define DENY(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM)

static void install_seccomp(void) {
#ifdef SANDBOX_AUDIT_ARCH
  struct sock_filter filter[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SANDBOX_AUDIT_ARCH, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
      DENY(__NR_keyctl), DENY(__NR_add_key), DENY(__NR_request_key),
      DENY(__NR_unshare), DENY(__NR_setns), DENY(__NR_bpf), DENY(__NR_perf_event_open),
      DENY(__NR_userfaultfd), DENY(__NR_kexec_load), DENY(__NR_kexec_file_load),
      DENY(__NR_init_module), DENY(__NR_finit_module), DENY(__NR_delete_module),
      DENY(__NR_open_by_handle_at), DENY(__NR_name_to_handle_at), DENY(__NR_mount), DENY(__NR_umount2),
      DENY(__NR_pivot_root), DENY(__NR_swapon), DENY(__NR_swapoff), DENY(__NR_acct), DENY(__NR_quotactl),
      /* clone3 passes its flags in memory the filter cannot read: report it missing, libc falls back to clone */
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
      BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, NS_FLAGS, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {(unsigned short)(sizeof filter / sizeof filter[0]), filter};
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0) die("seccomp");
#endif
}

/* A user namespace (rootless) maps only so many ids: a step's user beyond them gets a line that says so. */
static void die_if_unmapped(const char *what) {
  if (!in_userns || errno != EINVAL) return;
  errno = 0;
  die("the step's user %u:%u: %s is beyond the ids this rootless build maps (/etc/subuid, /etc/subgid)", uid, gid, what);
}

static void drop_privileges(void) {
  int last = CAP_LAST_CAP;
  FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "r");
  if (f) {
    if (fscanf(f, "%d", &last) != 1) last = CAP_LAST_CAP;
    fclose(f);
  }
  for (int cap = 0; cap <= last; cap++)
    if (!is_default_cap(cap) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
      die("drop capability %d", cap);
  if (setgroups(ngroups, groups) < 0) {
    die_if_unmapped("a group");
    die("setgroups");
  }
  if (setgid(gid) < 0) {
    die_if_unmapped("the gid");
    die("setgid %u", gid);
  }
  if (setuid(uid) < 0) { /* a non-root uid loses its effective set here */
    die_if_unmapped("the uid");
    die("setuid %u", uid);
  }
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (uid == 0 && insecure) {
    /* every capability this process holds (the machine's bounding set may lack some) */
    if (syscall(SYS_capget, &hdr, data) < 0) die("capget");
    for (int i = 0; i < 2; i++) {
      data[i].effective = data[i].permitted;
      data[i].inheritable = 0;
    }
  } else if (uid == 0) {
    for (size_t i = 0; i < sizeof default_caps / sizeof default_caps[0]; i++) {
      int cap = default_caps[i];
      data[cap / 32].effective |= 1u << (cap % 32);
      data[cap / 32].permitted |= 1u << (cap % 32);
      /* inheritable stays empty, as in Docker since CVE-2022-24769 */
    }
  }
  if (syscall(SYS_capset, &hdr, data) < 0) die("capset");
}

static void make_dirs(const char *path) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    mkdir(buf, 0755);
    *p = '/';
  }
  mkdir(buf, 0755);
}

static void exec_command(void) {
  if (chdir(cwd) < 0) {
    make_dirs(cwd);
    if (chdir(cwd) < 0) die("chdir %s", cwd);
  }
  for (int i = 0; i < nrlimits; i++)
    if (setrlimit(rlimits[i].resource, &rlimits[i].limit) < 0) die("--ulimit: setrlimit");
  if (!insecure) install_seccomp();
  drop_privileges();
  syscall(SYS_close_range, 3, ~0U, 0); /* nothing tsbuild had open reaches the command */
  envv[nenv] = NULL;
  extern char **environ;
  environ = envv; /* execvp searches the command's PATH, not ours */
  execvp(command[0], command);
  int code = errno == ENOENT ? 127 : 126;
  fprintf(stderr, "tsbuild-sandbox: exec %s: %s\n", command[0], strerror(errno));
  _exit(code);
}

static void forward_signal(int sig) {
  if (forward_to > 0) kill(forward_to, sig);
}

static void forward_signals_to(pid_t pid) {
  forward_to = pid;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = forward_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
}

static int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 125;
}

/* PID 1: reap everything; when the command ends, end too (which kills what it left behind). */
static char *args_start, *args_end; /* this program's arguments, as /proc/PID/cmdline shows them */

/*
 * PID 1 of the step shows in its /proc as the command's init, not with this program's arguments
 * (host paths of the store and the step): once the command runs, they are overwritten.
 */
static void hide_arguments(void) {
  static const char name[] = "tsbuild-init";
  size_t size = (size_t)(args_end - args_start);
  if (size <= sizeof name) return;
  memset(args_start, 0, size);
  memcpy(args_start, name, sizeof name);
  /* a last byte that is not NUL tells the kernel the arguments were rewritten (setproctitle): it
     then shows them up to the first NUL, the name alone, not the whole zeroed area */
  args_end[-1] = ' ';
}

static int run_init(void) {
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) die("prctl");
  setup_rootfs();
  pid_t child = fork();
  if (child < 0) die("fork");
  if (child == 0) {
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    exec_command();
  }
  forward_signals_to(child);
  hide_arguments();
  for (;;) {
    int status;
    pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0 && errno == EINTR) continue;
    if (pid < 0) die("waitpid");
    if (pid == child) return exit_code(status);
  }
}

/* Joins the step's cgroups (limits): first, so that every process the step makes is counted. */
static void join_cgroups(void) {
  for (int i = 0; i < ncgroups; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/cgroup.procs", cgroups[i]);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) die("join cgroup %s", cgroups[i]);
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%d", (int)getpid());
    if (write(fd, pid, (size_t)n) != n) die("join cgroup %s", cgroups[i]);
    close(fd);
  }
}

int main(int argc, char **argv) {
  args_start = argv[0];
  args_end = argv[argc - 1] + strlen(argv[argc - 1]) + 1;
  parse_args(argc, argv);
  join_cgroups();
  pid_t parent = getppid();
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent) _exit(125);
  if (net_sandbox) {
    /* a namespace made and connected ahead of the step, for this step alone */
    if (!netns_path) usage("--net sandbox needs --netns");
    int fd = open(netns_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || setns(fd, CLONE_NEWNET) < 0) die("join the step's network namespace %s", netns_path);
    close(fd);
  }
  if (unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | (net_none ? CLONE_NEWNET : 0)) < 0) die("unshare");
  if (sethostname(hostname, strlen(hostname)) < 0) die("sethostname");
  pid_t init = fork();
  if (init < 0) die("fork");
  if (init == 0) _exit(run_init());
  forward_signals_to(init);
  for (;;) {
    int status;
    pid_t pid = waitpid(init, &status, 0);
    if (pid < 0 && errno == EINTR) continue;
    if (pid < 0) die("waitpid");
    return exit_code(status);
  }
}
