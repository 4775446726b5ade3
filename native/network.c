/*
 * RUN steps' default network, served inside tsbuild's own process.
 *
 * Each step gets a network namespace of its own, made here: loopback up, and tap0 (10.0.2.100/24,
 * default route through 10.0.2.2, MTU 65520), the addresses slirp4netns --configure gives. What
 * the step sends on tap0 goes to an instance of libslirp of its own, a user-mode TCP/IP stack that
 * makes the step's connections as ordinary sockets of tsbuild's, in the host's network (10.0.2.3
 * forwards DNS to the host's resolvers; the host's loopback is out of reach). An instance lives as
 * long as its step, so no step sees another's connections.
 *
 * This is what slirp4netns does, less a process for every step: starting slirp4netns costs about
 * 5 ms of CPU a step, an instance here about 0.5 ms.
 *
 * One thread serves every instance. libslirp keeps some state in globals (the host's resolver,
 * read once), so all of its calls run there; the JS thread hands it namespaces to serve and stop
 * through a list under a mutex and an eventfd that wakes it. The tap device is made persistent, so
 * closing its descriptor does not unregister the device then and there (tens of milliseconds of
 * RCU grace periods, with tsbuild's exit waiting on them): the device goes with its namespace,
 * which the kernel's own workqueue tears down once the last descriptor or process holding it ends.
 *
 * libslirp is loaded with dlopen on first use, so the addon builds without its headers and loads
 * without it (--network=none and host need none of it). Its interface, as libslirp.h (4.x)
 * declares it, is restated below for the calls made here.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "addon.h"

/* ---- libslirp's interface: SlirpCb, SlirpConfig version 1, and the five calls used ---- */

typedef struct Slirp Slirp;
typedef void (*slirp_timer_cb)(void *opaque);

enum { SLIRP_IN = 1, SLIRP_OUT = 2, SLIRP_PRI = 4, SLIRP_ERR = 8, SLIRP_HUP = 16 };

struct slirp_callbacks {
  ssize_t (*send_packet)(const void *buf, size_t len, void *opaque);
  void (*guest_error)(const char *msg, void *opaque);
  int64_t (*clock_get_ns)(void *opaque);
  void *(*timer_new)(slirp_timer_cb cb, void *cb_opaque, void *opaque);
  void (*timer_free)(void *timer, void *opaque);
  void (*timer_mod)(void *timer, int64_t expire_ms, void *opaque);
  void (*register_poll_fd)(int fd, void *opaque);
  void (*unregister_poll_fd)(int fd, void *opaque);
  void (*notify)(void *opaque);
  /* version 4 on; left NULL */
  void (*init_completed)(Slirp *slirp, void *opaque);
  void *(*timer_new_opaque)(int id, void *cb_opaque, void *opaque);
};

struct slirp_config {
  uint32_t version; /* 1: the fields below, no more */
  int restricted;
  bool in_enabled;
  struct in_addr vnetwork, vnetmask, vhost;
  bool in6_enabled;
  struct in6_addr vprefix_addr6;
  uint8_t vprefix_len;
  struct in6_addr vhost6;
  const char *vhostname, *tftp_server_name, *tftp_path, *bootfile;
  struct in_addr vdhcp_start, vnameserver;
  struct in6_addr vnameserver6;
  const char **vdnssearch;
  const char *vdomainname;
  size_t if_mtu, if_mru;
  bool disable_host_loopback, enable_emu;
};

typedef int (*slirp_add_poll_cb)(int fd, int events, void *opaque);
typedef int (*slirp_get_revents_cb)(int idx, void *opaque);

static struct {
  Slirp *(*new)(const struct slirp_config *cfg, const struct slirp_callbacks *cb, void *opaque);
  void (*cleanup)(Slirp *slirp);
  void (*pollfds_fill)(Slirp *slirp, uint32_t *timeout, slirp_add_poll_cb add_poll, void *opaque);
  void (*pollfds_poll)(Slirp *slirp, int select_error, slirp_get_revents_cb get_revents, void *opaque);
  void (*input)(Slirp *slirp, const uint8_t *pkt, int len);
} slirp;

static bool slirp_loaded;
static char slirp_error[512];

static void drop_log(const char *domain, int level, const char *message, void *data) { (void)domain, (void)level, (void)message, (void)data; }

/* Loads libslirp once (JS thread only); false with slirp_error set when it cannot. */
static bool load_library(void) {
  if (slirp_loaded) return true;
  if (slirp_error[0]) return false;
  void *lib = dlopen("libslirp.so.0", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    snprintf(slirp_error, sizeof slirp_error, "%s", dlerror());
    return false;
  }
  struct { void **to; const char *name; } syms[] = {
      {(void **)&slirp.new, "slirp_new"},
      {(void **)&slirp.cleanup, "slirp_cleanup"},
      {(void **)&slirp.pollfds_fill, "slirp_pollfds_fill"},
      {(void **)&slirp.pollfds_poll, "slirp_pollfds_poll"},
      {(void **)&slirp.input, "slirp_input"},
  };
  for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
    *syms[i].to = dlsym(lib, syms[i].name);
    if (!*syms[i].to) {
      snprintf(slirp_error, sizeof slirp_error, "libslirp.so.0 has no %s", syms[i].name);
      return false;
    }
  }
  /*
   * libslirp's own complaints (a frame it could not send, a guest's odd packet) would land on
   * tsbuild's stderr amid the build's output; slirp4netns kept them on a stderr of its own, read
   * only when it failed. glib's g_error still aborts.
   */
  void (*set_handler)(const char *domain, int levels, void (*fn)(const char *, int, const char *, void *), void *data) = dlsym(lib, "g_log_set_handler");
  if (set_handler) set_handler("Slirp", (int)~3u /* every level, not the two flags */, drop_log, NULL);
  slirp_loaded = true;
  return true;
}

/* ---- the namespace and its tap device ---- */

#define TAP_MTU 65520

struct netns_made {
  int netns, tap;
  int err;
  const char *failed, *on; /* the call that failed, and what it acted on */
};

static int set_ipv4(int s, unsigned long request, const char *dev, const char *addr) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, dev);
  struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
  sin->sin_family = AF_INET;
  inet_pton(AF_INET, addr, &sin->sin_addr);
  return ioctl(s, request, &ifr);
}

static int set_up(int s, const char *dev) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, dev);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) return -1;
  ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
  return ioctl(s, SIOCSIFFLAGS, &ifr);
}

/* tap0 in the calling thread's namespace, addressed and routed; its descriptor, or -1 with m->failed. */
static int make_tap(int s, struct netns_made *m) {
  int tap = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (tap < 0) return m->failed = "open", m->on = "/dev/net/tun", -1;
  m->on = "tap0";
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strcpy(ifr.ifr_name, "tap0");
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (ioctl(tap, TUNSETIFF, &ifr) < 0) m->failed = "ioctl TUNSETIFF";
  else if (ioctl(tap, TUNSETPERSIST, 1) < 0) m->failed = "ioctl TUNSETPERSIST";
  else if ((ifr.ifr_mtu = TAP_MTU, ioctl(s, SIOCSIFMTU, &ifr)) < 0) m->failed = "ioctl SIOCSIFMTU";
  else if (set_ipv4(s, SIOCSIFADDR, "tap0", "10.0.2.100") < 0) m->failed = "ioctl SIOCSIFADDR";
  else if (set_ipv4(s, SIOCSIFNETMASK, "tap0", "255.255.255.0") < 0) m->failed = "ioctl SIOCSIFNETMASK";
  else if (set_up(s, "tap0") < 0) m->failed = "ioctl SIOCSIFFLAGS";
  else {
    struct rtentry route;
    memset(&route, 0, sizeof route);
    struct sockaddr_in *gw = (struct sockaddr_in *)&route.rt_gateway, *dst = (struct sockaddr_in *)&route.rt_dst, *mask = (struct sockaddr_in *)&route.rt_genmask;
    gw->sin_family = dst->sin_family = mask->sin_family = AF_INET;
    inet_pton(AF_INET, "10.0.2.2", &gw->sin_addr);
    route.rt_flags = RTF_UP | RTF_GATEWAY;
    route.rt_dev = "tap0";
    if (ioctl(s, SIOCADDRT, &route) < 0) m->failed = "ioctl SIOCADDRT", m->on = "default via 10.0.2.2";
    else return tap;
  }
  int err = errno;
  close(tap);
  errno = err;
  return -1;
}

/*
 * A network namespace belongs to a thread: one made for the purpose enters a new one, sets it up
 * and ends, leaving the namespace held by a descriptor (and the tap device by its own).
 */
static void *netns_thread(void *arg) {
  struct netns_made *m = arg;
  m->netns = m->tap = -1;
  int s = -1;
  if (unshare(CLONE_NEWNET) < 0) m->failed = "unshare", m->on = "a network namespace";
  else if ((s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0) m->failed = "socket", m->on = "AF_INET";
  else if (set_up(s, "lo") < 0) m->failed = "ioctl SIOCSIFFLAGS", m->on = "lo";
  else if ((m->tap = make_tap(s, m)) >= 0 && (m->netns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) < 0) m->failed = "open", m->on = "/proc/thread-self/ns/net";
  m->err = errno;
  if (s >= 0) close(s);
  if (m->netns < 0 && m->tap >= 0) close(m->tap);
  return NULL;
}

/* ---- the thread that serves every step's slirp ---- */

typedef struct timer {
  struct timer *next;
  slirp_timer_cb cb;
  void *cb_opaque;
  int64_t expire_ms; /* -1 while not set */
} timer;

typedef struct instance {
  struct instance *next;
  int32_t id;
  int tap;
  Slirp *slirp;  /* made and ended on the thread */
  bool stopping; /* set by stopStepNetwork */
} instance;

static struct {
  pthread_mutex_t lock; /* over `instances`, `next_id` and each instance's `stopping` */
  instance *instances;
  int32_t next_id;
  int wake;             /* eventfd: the thread's list changed */
  bool started;
  /* the thread's own */
  timer *timers;
  struct pollfd *fds;
  int nfds, cap;
} loop = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = -1};

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static ssize_t send_packet(const void *buf, size_t len, void *opaque) {
  ssize_t n = write(((instance *)opaque)->tap, buf, len);
  /* a full queue drops the frame, as a busy wire would: TCP sends it again */
  return n < 0 && (errno == EAGAIN || errno == ENOBUFS) ? (ssize_t)len : n;
}
static void guest_error(const char *msg, void *opaque) { (void)msg, (void)opaque; }
static int64_t clock_get_ns(void *opaque) { return (void)opaque, now_ns(); }
static void *timer_new(slirp_timer_cb cb, void *cb_opaque, void *opaque) {
  (void)opaque;
  timer *t = calloc(1, sizeof *t);
  if (!t) abort(); /* as libslirp's own g_new does */
  *t = (timer){.next = loop.timers, .cb = cb, .cb_opaque = cb_opaque, .expire_ms = -1};
  loop.timers = t;
  return t;
}
static void timer_free(void *gone, void *opaque) {
  (void)opaque;
  for (timer **t = &loop.timers; *t; t = &(*t)->next) {
    if (*t == gone) {
      *t = (*t)->next;
      free(gone);
      return;
    }
  }
}
static void timer_mod(void *t, int64_t expire_ms, void *opaque) { (void)opaque, ((timer *)t)->expire_ms = expire_ms; }
static void poll_fd_noop(int fd, void *opaque) { (void)fd, (void)opaque; }
static void notify_noop(void *opaque) { (void)opaque; } /* every call runs on the loop thread, which polls again next */

static const struct slirp_callbacks callbacks = {
    .send_packet = send_packet,
    .guest_error = guest_error,
    .clock_get_ns = clock_get_ns,
    .timer_new = timer_new,
    .timer_free = timer_free,
    .timer_mod = timer_mod,
    .register_poll_fd = poll_fd_noop,
    .unregister_poll_fd = poll_fd_noop,
    .notify = notify_noop,
};

static Slirp *new_slirp(instance *in) {
  struct slirp_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.version = 1;
  cfg.in_enabled = true;
  inet_pton(AF_INET, "10.0.2.0", &cfg.vnetwork);
  inet_pton(AF_INET, "255.255.255.0", &cfg.vnetmask);
  inet_pton(AF_INET, "10.0.2.2", &cfg.vhost);
  inet_pton(AF_INET, "10.0.2.15", &cfg.vdhcp_start);
  inet_pton(AF_INET, "10.0.2.3", &cfg.vnameserver);
  cfg.if_mtu = cfg.if_mru = TAP_MTU;
  cfg.disable_host_loopback = true;
  return slirp.new(&cfg, &callbacks, in);
}

static int add_poll(int fd, int events, void *opaque) {
  (void)opaque;
  if (loop.nfds == loop.cap) {
    int cap = loop.cap ? loop.cap * 2 : 64;
    struct pollfd *fds = realloc(loop.fds, cap * sizeof *fds);
    if (!fds) abort();
    loop.fds = fds, loop.cap = cap;
  }
  short ev = (events & SLIRP_IN ? POLLIN : 0) | (events & SLIRP_OUT ? POLLOUT : 0) | (events & SLIRP_PRI ? POLLPRI : 0);
  loop.fds[loop.nfds] = (struct pollfd){.fd = fd, .events = ev};
  return loop.nfds++;
}

static int get_revents(int idx, void *opaque) {
  (void)opaque;
  short r = loop.fds[idx].revents;
  return (r & POLLIN ? SLIRP_IN : 0) | (r & POLLOUT ? SLIRP_OUT : 0) | (r & POLLPRI ? SLIRP_PRI : 0) | (r & POLLERR ? SLIRP_ERR : 0) | (r & POLLHUP ? SLIRP_HUP : 0);
}

/* Ends stopped instances, starts new ones; the live ones, in `live` (at most `max`). */
static int reconcile(instance **live, int max) {
  int n = 0;
  pthread_mutex_lock(&loop.lock);
  for (instance **p = &loop.instances; *p;) {
    instance *in = *p;
    if (in->stopping) {
      *p = in->next;
      if (in->slirp) slirp.cleanup(in->slirp); /* closes its sockets, frees its timers */
      close(in->tap);
      free(in);
      continue;
    }
    if (!in->slirp) in->slirp = new_slirp(in);
    if (in->slirp && n < max) live[n++] = in;
    p = &in->next;
  }
  pthread_mutex_unlock(&loop.lock);
  return n;
}

/* steps served at once: more than a build runs in parallel (those beyond wait their turn) */
#define MAX_LIVE 256

static void *serve(void *arg) {
  (void)arg;
  static uint8_t frame[TAP_MTU + 64];
  instance *live[MAX_LIVE];
  int tap_index[MAX_LIVE];
  for (;;) {
    int n = reconcile(live, MAX_LIVE);
    loop.nfds = 0;
    add_poll(loop.wake, SLIRP_IN, NULL);
    uint32_t timeout = UINT32_MAX;
    for (int i = 0; i < n; i++) {
      tap_index[i] = add_poll(live[i]->tap, SLIRP_IN, NULL);
      slirp.pollfds_fill(live[i]->slirp, &timeout, add_poll, NULL);
    }
    int64_t now_ms = now_ns() / 1000000;
    for (timer *t = loop.timers; t; t = t->next) {
      if (t->expire_ms < 0) continue;
      int64_t wait = t->expire_ms > now_ms ? t->expire_ms - now_ms : 0;
      if ((uint64_t)wait < timeout) timeout = (uint32_t)wait;
    }
    int ready = poll(loop.fds, loop.nfds, timeout == UINT32_MAX ? -1 : (int)timeout);
    if (ready < 0 && errno != EINTR) ready = -1;
    else if (ready < 0) ready = 0;
    if (loop.fds[0].revents & POLLIN) {
      uint64_t count;
      if (read(loop.wake, &count, sizeof count) < 0) { /* another wake-up raced it: nothing to do */
      }
    }
    for (int i = 0; i < n; i++) {
      if (loop.fds[tap_index[i]].revents & POLLIN) {
        for (int k = 0; k < 64; k++) { /* at most this many frames a turn, so no step starves the rest */
          ssize_t len = read(live[i]->tap, frame, sizeof frame);
          if (len <= 0) break;
          slirp.input(live[i]->slirp, frame, (int)len);
        }
      }
      slirp.pollfds_poll(live[i]->slirp, ready < 0, get_revents, NULL);
    }
    now_ms = now_ns() / 1000000;
    for (timer *t = loop.timers; t;) {
      if (t->expire_ms >= 0 && t->expire_ms <= now_ms) {
        t->expire_ms = -1;
        t->cb(t->cb_opaque); /* may add or free timers: look again from the start */
        t = loop.timers;
      } else {
        t = t->next;
      }
    }
  }
  return NULL;
}

/* Starts the serving thread once, with every signal blocked in it (they are Node's to handle). */
static int start_loop(void) {
  if (loop.started) return 0;
  loop.wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (loop.wake < 0) return -1;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t id;
  int err = pthread_create(&id, &attr, serve, NULL);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (err != 0) {
    close(loop.wake);
    loop.wake = -1;
    errno = err;
    return -1;
  }
  loop.started = true;
  return 0;
}

static void wake_loop(void) {
  uint64_t one = 1;
  if (write(loop.wake, &one, sizeof one) < 0) { /* the counter is already non-zero: it will wake */
  }
}

/* ---- what JS calls ---- */

/* loadSlirp(): "" once libslirp is loaded, else why it cannot be. */
napi_value load_slirp(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  napi_create_string_utf8(env, load_library() ? "" : slirp_error, NAPI_AUTO_LENGTH, &result);
  return result;
}

/*
 * makeStepNetwork(): [descriptor of the new namespace, id of its slirp instance]. The namespace is
 * ready when this returns: addressed and routed, its frames queued on tap0 until the thread reads them.
 */
napi_value make_step_network(napi_env env, napi_callback_info info) {
  (void)info;
  if (!load_library()) {
    napi_throw_error(env, "ENOSLIRP", slirp_error);
    return NULL;
  }
  if (start_loop() < 0) return throw_errno(env, "pthread_create", "network thread");
  struct netns_made m = {.netns = -1, .tap = -1};
  pthread_t id;
  int err = pthread_create(&id, NULL, netns_thread, &m);
  if (err != 0) {
    errno = err;
    return throw_errno(env, "pthread_create", "a network namespace");
  }
  pthread_join(id, NULL);
  if (m.netns < 0) {
    errno = m.err;
    return throw_errno(env, m.failed, m.on);
  }
  instance *in = calloc(1, sizeof *in);
  if (!in) {
    close(m.netns), close(m.tap);
    errno = ENOMEM;
    return throw_errno(env, "calloc", "a slirp instance");
  }
  in->tap = m.tap;
  pthread_mutex_lock(&loop.lock);
  in->id = ++loop.next_id;
  in->next = loop.instances;
  loop.instances = in;
  pthread_mutex_unlock(&loop.lock);
  wake_loop();
  napi_value result, fd, nid;
  napi_create_array_with_length(env, 2, &result);
  napi_create_int32(env, m.netns, &fd);
  napi_create_int32(env, in->id, &nid);
  napi_set_element(env, result, 0, fd);
  napi_set_element(env, result, 1, nid);
  return result;
}

/* stopStepNetwork(id): the thread ends the instance (its connections closed) and its tap descriptor; the caller closes the namespace's. */
napi_value stop_step_network(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int32_t id;
  if (get_args(env, info, 1, argv) < 0 || napi_get_value_int32(env, argv[0], &id) != napi_ok) return NULL;
  pthread_mutex_lock(&loop.lock);
  for (instance *in = loop.instances; in; in = in->next) {
    if (in->id == id) in->stopping = true;
  }
  pthread_mutex_unlock(&loop.lock);
  wake_loop();
  return NULL;
}
