/*
 * tsbuild-userns: runs a command as root of a new user namespace that maps the caller's own id to
 * 0 and its subordinate ids (/etc/subuid, /etc/subgid) to 1, 2, ...: how an ordinary user builds.
 *
 * Mounting overlayfs, making namespaces and chown-ing files to the image's ids all work inside
 * that namespace, and nothing else of the machine becomes reachable. The id maps are written by
 * the distribution's setuid newuidmap and newgidmap (shadow's uidmap package), which check
 * /etc/subuid and /etc/subgid themselves: tsbuild has no setuid helper of its own.
 *
 *   tsbuild-userns (this process)       unshare(CLONE_NEWUSER), wait for the maps, become 0, exec
 *     └─ mapper (a child, outside)      newuidmap PARENT 0 UID 1 ..., newgidmap PARENT 0 GID 1 ...
 *
 * Root without CAP_SYS_ADMIN (a container run without privileges, as CI runners start jobs) cannot
 * mount either: it gets a user namespace too, where it stays root, with every id it has mapped to
 * itself (0 0 N, N short of the whole range so that it still reads as a user namespace); the
 * mapper writes that map directly, with the CAP_SETUID and CAP_SETGID root keeps.
 *
 * The command replaces this process (same pid, its exit status is the caller's), and it must be
 * exec'd before any thread exists: unshare(CLONE_NEWUSER) refuses a multi-threaded process, which
 * is why Node cannot do this itself.
 *
 * Usage: tsbuild-userns command [args...]
 * Failures are one line on stderr, exit 125.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_RANGES 64

static const char *user_name = "?";

static void fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("tsbuild: error: rootless: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(125);
}

static int read_flag(const char *file) {
  FILE *f = fopen(file, "r");
  int v = -1;
  if (!f) return -1;
  if (fscanf(f, "%d", &v) != 1) v = -1;
  fclose(f);
  return v;
}

struct range {
  unsigned long start, count;
};

/* The caller's ranges in /etc/subuid or /etc/subgid ("user:start:count" or "uid:start:count"). */
static int read_ranges(const char *file, const char *name, unsigned long id, struct range *out) {
  FILE *f = fopen(file, "r");
  if (!f) return 0;
  char line[512];
  int n = 0;
  while (n < MAX_RANGES && fgets(line, sizeof line, f)) {
    char who[256];
    unsigned long start, count;
    if (sscanf(line, "%255[^:\n]:%lu:%lu", who, &start, &count) != 3 || count == 0) continue;
    char *end;
    unsigned long as_id = strtoul(who, &end, 10);
    if (strcmp(who, name) == 0 || (*end == 0 && end != who && as_id == id)) out[n++] = (struct range){start, count};
  }
  fclose(f);
  return n;
}

static const char *find_tool(const char *tool) {
  static char buf[2][4096];
  static int which;
  const char *path = getenv("PATH");
  char dirs[8192];
  snprintf(dirs, sizeof dirs, "%s:/usr/bin:/usr/sbin:/bin:/sbin", path ? path : "");
  for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
    char *b = buf[which];
    snprintf(b, sizeof buf[0], "%s/%s", d, tool);
    if (access(b, X_OK) == 0) {
      which ^= 1;
      return b;
    }
  }
  return NULL;
}

/* Why mapping failed, in one line (a tool's message, or the errno of a direct write). */
static char why[512];

/* Runs `tool PID 0 OWN 1 START COUNT ...` (inside ids 1.. follow the ranges in order); 0 when done. */
static int run_map(const char *tool, pid_t pid, unsigned long own, const struct range *r, int n) {
  char *argv[4 + 3 * (MAX_RANGES + 1)];
  char nums[3 * (MAX_RANGES + 2)][24];
  int a = 0, k = 0;
  argv[a++] = (char *)tool;
  snprintf(nums[k], 24, "%d", (int)pid);
  argv[a++] = nums[k++];
  unsigned long inside = 0;
  for (int i = -1; i < n; i++) {
    unsigned long start = i < 0 ? own : r[i].start, count = i < 0 ? 1 : r[i].count;
    snprintf(nums[k], 24, "%lu", inside), argv[a++] = nums[k++];
    snprintf(nums[k], 24, "%lu", start), argv[a++] = nums[k++];
    snprintf(nums[k], 24, "%lu", count), argv[a++] = nums[k++];
    inside += count;
  }
  argv[a] = NULL;
  int err[2];
  if (pipe2(err, O_CLOEXEC) < 0) return -1;
  pid_t child = fork();
  if (child < 0) return -1;
  if (child == 0) {
    dup2(err[1], 2);
    execv(tool, argv);
    fprintf(stderr, "%s: %s", tool, strerror(errno));
    _exit(127);
  }
  close(err[1]);
  size_t len = 0;
  ssize_t got;
  while (len < sizeof why - 1 && (got = read(err[0], why + len, sizeof why - 1 - len)) != 0) {
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) break;
    len += (size_t)got;
  }
  why[len] = 0;
  for (char *c = why; *c; c++)
    if (*c == '\n') *c = c[1] ? ' ' : 0;
  close(err[0]);
  int status;
  while (waitpid(child, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Writes "0 0 COUNT" to /proc/PID/{uid,gid}_map (root's own ids, as many as its own map has). */
static int write_map(pid_t pid, const char *which, unsigned long count) {
  char file[64], line[64];
  snprintf(file, sizeof file, "/proc/%d/%s", (int)pid, which);
  int n = snprintf(line, sizeof line, "0 0 %lu\n", count);
  int fd = open(file, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, line, (size_t)n) != n) {
    snprintf(why, sizeof why, "writing %s: %s", file, strerror(errno));
    if (fd >= 0) close(fd);
    return 1;
  }
  close(fd);
  return 0;
}

/* How many ids, from 0 up without a gap, this process's namespace maps (its uid_map or gid_map). */
static unsigned long own_ids(const char *file) {
  FILE *f = fopen(file, "r");
  unsigned long inside, outside, count, next = 0;
  if (!f) return 65536;
  while (fscanf(f, "%lu %lu %lu", &inside, &outside, &count) == 3)
    if (inside == next) next += count;
  fclose(f);
  /* all of them would read as the machine's own map: one short still reads as a user namespace */
  return next >= 4294967295UL ? 4294967294UL : next;
}

/* Why unshare(CLONE_NEWUSER) was refused, and what enables it. */
static void explain_unshare(int err) {
  if (err == ENOSPC || read_flag("/proc/sys/user/max_user_namespaces") == 0)
    fail("user namespaces are turned off (user.max_user_namespaces); enable them: sysctl -w user.max_user_namespaces=28633");
  if (read_flag("/proc/sys/kernel/unprivileged_userns_clone") == 0)
    fail("this kernel keeps user namespaces to root (kernel.unprivileged_userns_clone=0); enable them: sysctl -w kernel.unprivileged_userns_clone=1");
  if (read_flag("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == 1)
    fail("AppArmor keeps user namespaces from unconfined programs (kernel.apparmor_restrict_unprivileged_userns=1); "
         "allow them: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor profile for node with `userns,`");
  fail("cannot make a user namespace: %s (inside a container, its seccomp profile must allow unshare: "
       "seccompProfile Unconfined in Kubernetes, --security-opt seccomp=unconfined in Docker)", strerror(err));
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs("usage: tsbuild-userns command [args...]\n", stderr);
    return 125;
  }
  uid_t uid = getuid();
  gid_t gid = getgid();
  int as_root = uid == 0;
  struct passwd *pw = getpwuid(uid);
  char uid_text[24];
  snprintf(uid_text, sizeof uid_text, "%u", (unsigned)uid);
  user_name = pw ? pw->pw_name : uid_text;

  struct range uids[MAX_RANGES], gids[MAX_RANGES];
  int nuids = 0, ngids = 0;
  const char *newuidmap = NULL, *newgidmap = NULL;
  if (!as_root) {
    nuids = read_ranges("/etc/subuid", user_name, uid, uids);
    ngids = read_ranges("/etc/subgid", user_name, uid, gids); /* keyed by user too */
    if (nuids == 0 || ngids == 0)
      fail("%s has no subordinate %s ids in %s; as root, give it some: usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s",
           user_name, nuids == 0 ? "user" : "group", nuids == 0 ? "/etc/subuid" : "/etc/subgid", user_name);
    newuidmap = find_tool("newuidmap");
    newgidmap = find_tool("newgidmap");
    if (!newuidmap || !newgidmap)
      fail("newuidmap and newgidmap are not installed (Debian and Ubuntu: apt-get install uidmap; Fedora: dnf install shadow-utils)");
  }
  unsigned long root_uids = as_root ? own_ids("/proc/self/uid_map") : 0;
  unsigned long root_gids = as_root ? own_ids("/proc/self/gid_map") : 0;

  int to_mapper[2], from_mapper[2];
  if (pipe2(to_mapper, O_CLOEXEC) < 0 || pipe2(from_mapper, O_CLOEXEC) < 0) fail("pipe: %s", strerror(errno));
  pid_t self = getpid(), caller = getppid();
  pid_t mapper = fork();
  if (mapper < 0) fail("fork: %s", strerror(errno));
  if (mapper == 0) {
    char go, result = 0;
    close(to_mapper[1]);
    close(from_mapper[0]);
    /* the maps name the parent by pid: once it is gone, that pid may be another process's */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != self) _exit(1);
    if (read(to_mapper[0], &go, 1) != 1) _exit(0); /* unshare failed: the parent says why */
    if (as_root) {
      if (write_map(self, "uid_map", root_uids) != 0) result = 'u';
      else if (write_map(self, "gid_map", root_gids) != 0) result = 'g';
    } else {
      if (run_map(newuidmap, self, uid, uids, nuids) != 0) result = 'u';
      else if (run_map(newgidmap, self, gid, gids, ngids) != 0) result = 'g';
    }
    if (write(from_mapper[1], &result, 1) != 1 || (result && write(from_mapper[1], why, strlen(why) + 1) < 0)) _exit(1);
    _exit(0);
  }
  close(to_mapper[0]);
  close(from_mapper[1]);
  if (unshare(CLONE_NEWUSER) < 0) explain_unshare(errno);
  char result = '?';
  if (write(to_mapper[1], "1", 1) != 1 || read(from_mapper[0], &result, 1) != 1) result = '?';
  if (result == 'u' || result == 'g') {
    ssize_t got = read(from_mapper[0], why, sizeof why - 1);
    why[got > 0 ? got : 0] = 0;
  }
  while (waitpid(mapper, NULL, 0) < 0 && errno == EINTR) {
  }
  if (result != 0 && as_root) fail("root without CAP_SYS_ADMIN cannot map its ids into a user namespace: %s", why);
  if (result == 'u' || result == 'g')
    fail("%s could not map %s's subordinate ids: %s%s", result == 'u' ? "newuidmap" : "newgidmap", user_name, why,
         strstr(why, "Operation not permitted")
             ? " (in a container, give newuidmap and newgidmap file capabilities instead of the setuid bit: "
               "chmod u-s, setcap cap_setuid=ep /usr/bin/newuidmap, setcap cap_setgid=ep /usr/bin/newgidmap)"
             : "");
  if (result != 0) fail("could not map the user namespace's ids");
  if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0) fail("cannot become root of the user namespace: %s", strerror(errno));
  /* the command ends when the tsbuild that waits for it does (set after setresuid, which clears it) */
  if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != caller) fail("tsbuild ended before its command started");
  execvp(argv[1], argv + 1);
  fail("exec %s: %s", argv[1], strerror(errno));
}
