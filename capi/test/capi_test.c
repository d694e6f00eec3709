// C tests of the library: every entry point, errors, streams, hooks, threads, fork and
// memory. Built with -Wall -Wextra -Werror against build/test/libhms_lifecycle.so (made with
// GOEXPERIMENT=cgocheck2) by `make test-c`; prints "N passed, N failed".
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hms_lifecycle.h"

static int passed, failed;
static const char *current;

#define CHECK(cond, ...)                                             \
  do {                                                               \
    if (!(cond)) {                                                   \
      fprintf(stderr, "FAIL %s (%s:%d): ", current, __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                                  \
      fprintf(stderr, "\n");                                         \
      failed++;                                                      \
      return;                                                        \
    }                                                                \
  } while (0)

#define AGENTS "hms.agent.lifecycle.v1.LifecycleManager/"
#define PLUGINS "hms.plugin.lifecycle.v1.PluginLifecycleManager/"

// squash copies s without whitespace, so that JSON is compared regardless of spacing.
static char *squash(const char *s, size_t n) {
  char *o = malloc(n + 1);
  size_t j = 0;
  for (size_t i = 0; i < n && s[i]; i++)
    if (s[i] != ' ' && s[i] != '\n' && s[i] != '\t') o[j++] = s[i];
  o[j] = 0;
  return o;
}

// has reports whether JSON bytes contain the fragment, whitespace aside.
static int has(const uint8_t *json, size_t n, const char *fragment) {
  char *a = squash((const char *)json, n), *b = squash(fragment, strlen(fragment));
  int ok = strstr(a, b) != NULL;
  free(a);
  free(b);
  return ok;
}

// call makes a JSON call; returns the code, the response in *resp (caller frees).
static int32_t call(uint64_t h, const char *method, const char *req, uint8_t **resp, size_t *n,
                    hms_status *st) {
  *resp = NULL;
  *n = 0;
  return hms_call(h, method, HMS_FORMAT_JSON, (const uint8_t *)req, strlen(req), resp, n, st);
}

static uint64_t open_memory(void) {
  uint64_t h = 0;
  hms_status st = {0};
  if (hms_open((const uint8_t *)"{}", 2, &h, &st) != HMS_OK) {
    fprintf(stderr, "open: %s\n", st.message);
    hms_free(st.message);
    return 0;
  }
  return h;
}

static void test_version(void) {
  current = "version";
  CHECK(hms_abi_version() == HMS_ABI_VERSION, "abi %u", hms_abi_version());
  passed++;
}

static void test_open_errors(void) {
  current = "open errors";
  uint64_t h = 0;
  hms_status st = {0};
  const char *bad = "{\"stor\":\"memory\"}";
  CHECK(hms_open((const uint8_t *)bad, strlen(bad), &h, &st) == HMS_INVALID_ARGUMENT, "code %d", st.code);
  CHECK(st.message && strstr(st.message, "stor"), "message %s", st.message);
  hms_free(st.message);
  const char *nodir = "{\"store\":\"sqlite\"}";
  CHECK(hms_open((const uint8_t *)nodir, strlen(nodir), &h, &st) == HMS_INVALID_ARGUMENT, "code %d", st.code);
  CHECK(strstr(st.message, "data_dir"), "message %s", st.message);
  hms_free(st.message);
  const char *notjson = "{";
  CHECK(hms_open((const uint8_t *)notjson, 1, &h, NULL) == HMS_INVALID_ARGUMENT, "not json accepted");
  CHECK(hms_handle_count() == 0, "handles %lld", (long long)hms_handle_count());
  passed++;
}

static void test_calls(void) {
  current = "calls";
  uint64_t h = open_memory();
  CHECK(h != 0, "open");
  uint8_t *r;
  size_t n;
  hms_status st = {0};
  CHECK(call(h, AGENTS "RegisterAgent", "{\"agentId\":\"c-1\",\"labels\":{\"team\":\"c\"}}", &r, &n, &st) == HMS_OK, "register: %s", st.message);
  CHECK(has(r, n, "\"state\":\"LIFECYCLE_STATE_INITIALIZED\""), "register response %.*s", (int)n, r);
  hms_free(r);
  // A refusal is an answer.
  CHECK(call(h, AGENTS "TransitionState", "{\"agentId\":\"c-1\",\"targetState\":\"PAUSED\"}", &r, &n, &st) == HMS_OK, "refused: %s", st.message);
  CHECK(!has(r, n, "\"success\":true") && has(r, n, "REFUSAL_REASON_INVALID_TRANSITION"), "refusal %.*s", (int)n, r);
  hms_free(r);
  CHECK(call(h, "/" AGENTS "TransitionState", "{\"agentId\":\"c-1\",\"targetState\":\"LIFECYCLE_STATE_ACTIVE\",\"reason\":\"go\"}", &r, &n, &st) == HMS_OK, "transition: %s", st.message);
  CHECK(has(r, n, "\"success\":true") && has(r, n, "\"initiatedBy\":\"ffi\""), "transition %.*s", (int)n, r);
  hms_free(r);
  // Errors: unknown agent, method, format, bad request, wrong handle kinds.
  CHECK(call(h, AGENTS "GetState", "{\"agentId\":\"nope\"}", &r, &n, &st) == HMS_NOT_FOUND, "code %d", st.code);
  CHECK(st.message && strstr(st.message, "nope"), "message %s", st.message);
  hms_free(st.message);
  CHECK(call(h, AGENTS "Fly", "{}", &r, &n, &st) == HMS_INVALID_ARGUMENT && strstr(st.message, "GetState"), "unknown method: %s", st.message);
  hms_free(st.message);
  CHECK(call(h, AGENTS "WatchEvents", "{}", &r, &n, &st) == HMS_INVALID_ARGUMENT && strstr(st.message, "hms_watch"), "stream via call: %s", st.message);
  hms_free(st.message);
  CHECK(hms_call(h, AGENTS "GetState", 7, (const uint8_t *)"{}", 2, &r, &n, &st) == HMS_INVALID_ARGUMENT && strstr(st.message, "format"), "format: %s", st.message);
  hms_free(st.message);
  CHECK(call(h, AGENTS "GetState", "{\"agentId\":", &r, &n, &st) == HMS_INVALID_ARGUMENT, "bad json code %d", st.code);
  hms_free(st.message);
  CHECK(hms_call(h, AGENTS "GetState", HMS_FORMAT_PROTOBUF, (const uint8_t *)"\xff\xff", 2, &r, &n, &st) == HMS_INVALID_ARGUMENT, "bad protobuf code %d", st.code);
  hms_free(st.message);
  CHECK(hms_call(h, NULL, HMS_FORMAT_JSON, NULL, 0, &r, &n, &st) == HMS_INVALID_ARGUMENT, "NULL method");
  hms_free(st.message);
  // Protobuf: an empty GetState request for agent "c-1" is field 1, length 3.
  const uint8_t pb[] = {0x0a, 3, 'c', '-', '1'};
  CHECK(hms_call(h, AGENTS "GetState", HMS_FORMAT_PROTOBUF, pb, sizeof pb, &r, &n, &st) == HMS_OK, "protobuf: %s", st.message);
  CHECK(n > 0 && r[0] == 0x08 && r[1] == 2, "protobuf state field: %02x %02x", r[0], r[1]);  // field 1 varint ACTIVE
  hms_free(r);
  CHECK(hms_close(h, &st) == HMS_OK, "close");
  CHECK(hms_close(h, &st) == HMS_OK, "close twice");
  CHECK(call(h, AGENTS "GetState", "{\"agentId\":\"c-1\"}", &r, &n, &st) == HMS_INVALID_ARGUMENT && strstr(st.message, "closed"), "closed handle: %s", st.message);
  hms_free(st.message);
  CHECK(call(987654, AGENTS "GetState", "{}", &r, &n, &st) == HMS_INVALID_ARGUMENT && strstr(st.message, "never opened"), "unknown handle: %s", st.message);
  hms_free(st.message);
  CHECK(hms_close(0, &st) == HMS_INVALID_ARGUMENT, "close 0");
  hms_free(st.message);
  passed++;
}

static void test_convert(void) {
  current = "convert";
  const char *json = "{\"agentId\":\"v-1\",\"targetState\":\"ACTIVE\",\"reason\":\"r\"}";
  uint8_t *pb, *cb, *back;
  size_t npb, ncb, nback;
  hms_status st = {0};
  CHECK(hms_convert("hms.agent.lifecycle.v1.TransitionRequest", HMS_FORMAT_JSON, (const uint8_t *)json, strlen(json), HMS_FORMAT_PROTOBUF, &pb, &npb, &st) == HMS_OK, "json→pb: %s", st.message);
  CHECK(hms_convert("hms.agent.lifecycle.v1.TransitionRequest", HMS_FORMAT_PROTOBUF, pb, npb, HMS_FORMAT_CBOR, &cb, &ncb, &st) == HMS_OK, "pb→cbor: %s", st.message);
  CHECK(hms_convert("hms.agent.lifecycle.v1.TransitionRequest", HMS_FORMAT_CBOR, cb, ncb, HMS_FORMAT_JSON, &back, &nback, &st) == HMS_OK, "cbor→json: %s", st.message);
  CHECK(has(back, nback, "\"targetState\":\"LIFECYCLE_STATE_ACTIVE\""), "round trip %.*s", (int)nback, back);
  hms_free(pb);
  hms_free(cb);
  hms_free(back);
  CHECK(hms_convert("hms.Nope", HMS_FORMAT_JSON, (const uint8_t *)"{}", 2, HMS_FORMAT_JSON, &back, &nback, &st) == HMS_INVALID_ARGUMENT, "unknown message");
  hms_free(st.message);
  passed++;
}

// take returns the batch's items count and the offsets of up to max items.
static int items(const uint8_t *b, size_t n, const uint8_t **item, size_t *len, int max) {
  int k = 0;
  for (size_t off = 0; off + 4 <= n && k < max;) {
    uint32_t l = (uint32_t)b[off] | (uint32_t)b[off + 1] << 8 | (uint32_t)b[off + 2] << 16 | (uint32_t)b[off + 3] << 24;
    item[k] = b + off + 4;
    len[k] = l;
    k++;
    off += 4 + l;
  }
  return k;
}

struct closer {
  uint64_t stream;
};

static void *close_later(void *arg) {
  struct closer *c = arg;
  usleep(100 * 1000);
  hms_stream_close(c->stream, NULL);
  return NULL;
}

static void test_watch(void) {
  current = "watch";
  uint64_t h = open_memory();
  uint8_t *r;
  size_t n;
  hms_status st = {0};
  CHECK(call(h, AGENTS "RegisterAgent", "{\"agentId\":\"w-1\"}", &r, &n, &st) == HMS_OK, "register");
  hms_free(r);
  uint64_t s = 0;
  const char *req = "{\"agentId\":\"w-1\",\"fromSequence\":\"1\"}";
  CHECK(hms_watch(h, AGENTS "WatchEvents", HMS_FORMAT_JSON, (const uint8_t *)req, strlen(req), &s, &st) == HMS_OK, "watch: %s", st.message);
  int32_t fd = -1;
  CHECK(hms_stream_fd(s, &fd, &st) == HMS_OK && fd >= 0, "fd");
  struct pollfd p = {.fd = fd, .events = POLLIN};
  CHECK(poll(&p, 1, 5000) == 1, "fd not readable with the registration waiting");
  const char *targets[] = {"ACTIVE", "PAUSED", "ACTIVE"};
  for (int i = 0; i < 3; i++) {
    char body[128];
    snprintf(body, sizeof body, "{\"agentId\":\"w-1\",\"targetState\":\"%s\"}", targets[i]);
    CHECK(call(h, AGENTS "TransitionState", body, &r, &n, &st) == HMS_OK, "transition");
    hms_free(r);
  }
  int got = 0;
  uint64_t last = 0;
  for (int tries = 0; got < 4 && tries < 50; tries++) {
    uint8_t *b;
    size_t bn;
    CHECK(hms_next(s, 1000, 2, &b, &bn, &st) == HMS_OK, "next: %s", st.message);
    const uint8_t *it[8];
    size_t il[8];
    int k = items(b, bn, it, il, 8);
    CHECK(k <= 2, "max_items not honoured: %d", k);
    for (int i = 0; i < k; i++) {
      char want[64];
      snprintf(want, sizeof want, "\"sequence\":\"%llu\"", (unsigned long long)(last + 1));
      CHECK(has(it[i], il[i], want), "event %d out of order: %.*s", got + i, (int)il[i], it[i]);
      last++;
    }
    got += k;
    hms_free(b);
  }
  CHECK(got == 4, "got %d events", got);
  // Nothing waiting: the descriptor is not readable and a zero timeout returns nothing.
  CHECK(poll(&p, 1, 0) == 0, "fd readable with nothing waiting");
  uint8_t *b = (uint8_t *)1;
  size_t bn = 7;
  CHECK(hms_next(s, 0, 0, &b, &bn, &st) == HMS_OK && bn == 0 && b == NULL, "timeout");
  // Closing from another thread wakes a blocked next.
  pthread_t t;
  struct closer c = {s};
  pthread_create(&t, NULL, close_later, &c);
  CHECK(hms_next(s, -1, 0, &b, &bn, &st) == HMS_CANCELLED, "blocked next after close: %d", st.code);
  hms_free(st.message);
  pthread_join(t, NULL);
  CHECK(hms_stream_close(s, &st) == HMS_OK, "close twice");
  CHECK(hms_next(s, 0, 0, &b, &bn, &st) == HMS_INVALID_ARGUMENT, "next on closed stream");
  hms_free(st.message);
  // A stream ends with UNAVAILABLE when its manager closes, with the resume point.
  CHECK(hms_watch(h, AGENTS "WatchEvents", HMS_FORMAT_JSON, (const uint8_t *)"{}", 2, &s, &st) == HMS_OK, "watch");
  CHECK(hms_close(h, &st) == HMS_OK, "close");
  CHECK(hms_next(s, 5000, 0, &b, &bn, &st) == HMS_UNAVAILABLE, "after manager close: %d", st.code);
  hms_free(st.message);
  CHECK(hms_stream_close(s, &st) == HMS_OK, "close stream");
  CHECK(hms_handle_count() == 0, "handles left: %lld", (long long)hms_handle_count());
  passed++;
}

struct hookctx {
  uint64_t worker;
  int answered;
  const char *decision;  // JSON fragment after the invocation id
};

// serve answers invocations until the worker ends.
static void *serve(void *arg) {
  struct hookctx *c = arg;
  for (;;) {
    uint8_t *b;
    size_t n;
    hms_status st = {0};
    if (hms_next(c->worker, -1, 0, &b, &n, &st) != HMS_OK) {
      hms_free(st.message);
      return NULL;
    }
    const uint8_t *it[16];
    size_t il[16];
    int k = items(b, n, it, il, 16);
    for (int i = 0; i < k; i++) {
      char *inv = squash((const char *)it[i], il[i]);
      char *id = strstr(inv, "\"invocationId\":\"");
      if (id) {
        id += strlen("\"invocationId\":\"");
        *strchr(id, '"') = 0;
        char reply[256];
        snprintf(reply, sizeof reply, "{\"invocationId\":\"%s\",%s}", id, c->decision);
        if (hms_hook_complete(c->worker, (const uint8_t *)reply, strlen(reply), NULL) == HMS_OK) c->answered++;
      }
      free(inv);
    }
    hms_free(b);
  }
}

static void test_hooks(void) {
  current = "hooks";
  uint64_t h = open_memory();
  uint8_t *r;
  size_t n;
  hms_status st = {0};
  CHECK(call(h, AGENTS "RegisterAgent", "{\"agentId\":\"h-1\"}", &r, &n, &st) == HMS_OK, "register");
  hms_free(r);
  CHECK(call(h, AGENTS "RegisterHook", "{\"hookName\":\"gate\",\"triggerStates\":[\"ACTIVE\"],\"isBlocking\":true,\"timeoutMs\":2000,\"config\":{\"callback\":\"gate\"}}", &r, &n, &st) == HMS_OK, "hook: %s", st.message);
  CHECK(has(r, n, "\"success\":true"), "hook %.*s", (int)n, r);
  hms_free(r);
  struct hookctx c = {0, 0, "\"veto\":true,\"reason\":\"not during the freeze\""};
  const char *hello = "{\"callbacks\":[\"gate\"]}";
  CHECK(hms_hooks_open(h, HMS_FORMAT_JSON, (const uint8_t *)hello, strlen(hello), &c.worker, &st) == HMS_OK, "hooks_open: %s", st.message);
  uint64_t dup;
  CHECK(hms_hooks_open(h, HMS_FORMAT_JSON, (const uint8_t *)hello, strlen(hello), &dup, &st) == HMS_ALREADY_EXISTS, "second worker: %d", st.code);
  hms_free(st.message);
  pthread_t t;
  pthread_create(&t, NULL, serve, &c);
  CHECK(call(h, AGENTS "TransitionState", "{\"agentId\":\"h-1\",\"targetState\":\"ACTIVE\"}", &r, &n, &st) == HMS_OK, "transition");
  CHECK(!has(r, n, "\"success\":true") && has(r, n, "REFUSAL_REASON_HOOK_VETOED") && has(r, n, "not during the freeze"), "veto %.*s", (int)n, r);
  hms_free(r);
  CHECK(c.answered == 1, "answered %d", c.answered);
  const char *reply = "{\"invocationId\":\"inv-1\"}";
  CHECK(hms_hook_complete(c.worker, (const uint8_t *)reply, strlen(reply), &st) == HMS_NOT_FOUND, "completed twice: %d", st.code);
  hms_free(st.message);
  hms_stream_close(c.worker, NULL);
  pthread_join(t, NULL);
  // Without a worker the hook fails, and failure_policy fail refuses.
  CHECK(call(h, AGENTS "TransitionState", "{\"agentId\":\"h-1\",\"targetState\":\"ACTIVE\"}", &r, &n, &st) == HMS_OK, "transition");
  CHECK(has(r, n, "REFUSAL_REASON_HOOK_FAILED"), "no worker %.*s", (int)n, r);
  hms_free(r);
  // A worker that allows.
  struct hookctx a = {0, 0, "\"veto\":false"};
  CHECK(hms_hooks_open(h, HMS_FORMAT_JSON, (const uint8_t *)hello, strlen(hello), &a.worker, &st) == HMS_OK, "hooks_open");
  pthread_create(&t, NULL, serve, &a);
  CHECK(call(h, AGENTS "TransitionState", "{\"agentId\":\"h-1\",\"targetState\":\"ACTIVE\"}", &r, &n, &st) == HMS_OK, "transition");
  CHECK(has(r, n, "\"success\":true"), "allowed %.*s", (int)n, r);
  hms_free(r);
  hms_close(h, NULL);  // ends the worker: the serving thread returns
  pthread_join(t, NULL);
  hms_stream_close(a.worker, NULL);
  CHECK(hms_handle_count() == 0, "handles left");
  passed++;
}

struct runner {
  uint64_t h;
  int id, ok;
};

static void *transitions(void *arg) {
  struct runner *x = arg;
  char body[160];
  uint8_t *r;
  size_t n;
  snprintf(body, sizeof body, "{\"agentId\":\"t-%d\"}", x->id);
  if (call(x->h, AGENTS "RegisterAgent", body, &r, &n, NULL) != HMS_OK) return NULL;
  hms_free(r);
  const char *cycle[] = {"ACTIVE", "PAUSED"};
  for (int i = 0; i < 200; i++) {
    snprintf(body, sizeof body, "{\"agentId\":\"t-%d\",\"targetState\":\"%s\"}", x->id, cycle[i % 2]);
    if (call(x->h, AGENTS "TransitionState", body, &r, &n, NULL) != HMS_OK) return NULL;
    if (has(r, n, "\"success\":true")) x->ok++;
    hms_free(r);
  }
  return NULL;
}

static void test_threads(void) {
  current = "threads";
  uint64_t h = open_memory();
  enum { N = 8 };
  pthread_t t[N];
  struct runner x[N];
  for (int i = 0; i < N; i++) {
    x[i] = (struct runner){h, i, 0};
    pthread_create(&t[i], NULL, transitions, &x[i]);
  }
  for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < N; i++) CHECK(x[i].ok == 200, "thread %d: %d transitions", i, x[i].ok);
  uint8_t *r;
  size_t n;
  CHECK(call(h, AGENTS "GetTransitionHistory", "{\"limit\":1000}", &r, &n, NULL) == HMS_OK, "history");
  hms_free(r);
  hms_close(h, NULL);
  passed++;
}

// The library installs no handler for the signals a host owns, SQLite and plugins included.
static void test_signals(void) {
  current = "signals";
  char dir[] = "/tmp/hms-capi-signals-XXXXXX";
  CHECK(mkdtemp(dir) != NULL, "mkdtemp");
  char config[160];
  snprintf(config, sizeof config, "{\"store\":\"sqlite\",\"data_dir\":\"%s\",\"sqlite_sync\":\"normal\"}", dir);
  uint64_t h = 0;
  hms_status st = {0};
  CHECK(hms_open((const uint8_t *)config, strlen(config), &h, &st) == HMS_OK, "open sqlite: %s", st.message);
  uint8_t *r;
  size_t n;
  CHECK(call(h, AGENTS "RegisterAgent", "{\"agentId\":\"s-1\"}", &r, &n, &st) == HMS_OK, "register");
  hms_free(r);
  hms_close(h, NULL);
  const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD, SIGALRM};
  for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
    struct sigaction sa;
    CHECK(sigaction(sigs[i], NULL, &sa) == 0, "sigaction");
    // Ignored is the host's doing too: started by nohup, or in the background of a shell.
    CHECK(sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN,
          "signal %d (%s) has a handler the host did not install", sigs[i], strsignal(sigs[i]));
  }
  char rm[200];
  snprintf(rm, sizeof rm, "rm -rf %s", dir);
  CHECK(system(rm) == 0, "rm");
  passed++;
}

static void test_fork(void) {
  current = "fork";
  pid_t pid = fork();
  if (pid == 0) {
    uint64_t h;
    hms_status st = {0};
    int32_t code = hms_open((const uint8_t *)"{}", 2, &h, &st);
    _exit(code == HMS_FAILED_PRECONDITION && st.message && strstr(st.message, "fork") ? 0 : 1);
  }
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the forked child's call was not refused (status %d)", status);
  passed++;
}

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, resident = 0;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  fclose(f);
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void cycle(int i) {
  uint64_t h = open_memory();
  char body[96];
  uint8_t *r;
  size_t n;
  snprintf(body, sizeof body, "{\"agentId\":\"m-%d\"}", i);
  call(h, AGENTS "RegisterAgent", body, &r, &n, NULL);
  hms_free(r);
  snprintf(body, sizeof body, "{\"agentId\":\"m-%d\",\"targetState\":\"ACTIVE\"}", i);
  call(h, AGENTS "TransitionState", body, &r, &n, NULL);
  hms_free(r);
  uint64_t s;
  hms_watch(h, AGENTS "WatchEvents", HMS_FORMAT_JSON, (const uint8_t *)"{}", 2, &s, NULL);
  hms_stream_close(s, NULL);
  hms_close(h, NULL);
}

static void test_memory(void) {
  current = "memory";
  for (int i = 0; i < 300; i++) cycle(i);  // warm up: heaps and caches reach their size
  long before = rss_kb();
  for (int i = 0; i < 3000; i++) cycle(i);
  long after = rss_kb();
  CHECK(hms_handle_count() == 0, "handles left: %lld", (long long)hms_handle_count());
  // A leak of even one small buffer per cycle would show as 3000 × its size.
  CHECK(after - before < 16 * 1024, "RSS grew by %ld KiB over 3000 open/call/watch/close cycles (%ld → %ld)", after - before, before, after);
  printf("memory: RSS %ld KiB before, %ld KiB after 3000 cycles\n", before, after);
  passed++;
}

int main(void) {
  test_version();
  test_open_errors();
  test_calls();
  test_convert();
  test_watch();
  test_hooks();
  test_threads();
  test_signals();
  test_fork();
  test_memory();
  if (hms_handle_count() != 0) {
    fprintf(stderr, "FAIL: %lld handles left at the end\n", (long long)hms_handle_count());
    failed++;
  }
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
