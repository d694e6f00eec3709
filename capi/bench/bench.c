// Figures of the C ABI (make bench-capi): hms_call latency for GetState and TransitionState
// on the embedded memory store and, in the same run, over gRPC on loopback through the
// library's remote mode against a real server; and a watch drained in batches.
//   bench SERVER_BINARY
#define _GNU_SOURCE
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hms_lifecycle.h"
#include "../test/server.h"


static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

// Protobuf requests for agent "agent-001": GetStateRequest{agent_id} and
// TransitionRequest{agent_id, target_state}.
static const uint8_t get_req[] = {0x0a, 9, 'a', 'g', 'e', 'n', 't', '-', '0', '0', '1'};
static uint8_t tr_req[2][13] = {{0x0a, 9, 'a', 'g', 'e', 'n', 't', '-', '0', '0', '1', 0x10, 3},
                                {0x0a, 9, 'a', 'g', 'e', 'n', 't', '-', '0', '0', '1', 0x10, 2}};

static void measure(const char *label, uint64_t h, const char *method, int n, int alternate) {
  double *lat = malloc(n * sizeof *lat);
  double start = now_ns();
  for (int i = 0; i < n; i++) {
    uint8_t *resp;
    size_t len;
    hms_status st = {0};
    double t0 = now_ns();
    int32_t code = alternate ? hms_call(h, method, HMS_FORMAT_PROTOBUF, tr_req[i % 2], sizeof tr_req[0], &resp, &len, &st)
                             : hms_call(h, method, HMS_FORMAT_PROTOBUF, get_req, sizeof get_req, &resp, &len, &st);
    lat[i] = now_ns() - t0;
    if (code != HMS_OK) {
      fprintf(stderr, "%s: %s\n", label, st.message);
      exit(1);
    }
    hms_free(resp);
  }
  double total = now_ns() - start;
  qsort(lat, n, sizeof *lat, cmp);
  printf("%-34s p50 %8.0f ns   p99 %8.0f ns   mean %8.0f ns   %9.0f calls/s\n", label, lat[n / 2], lat[n * 99 / 100], total / n, n / (total / 1e9));
  free(lat);
}

static uint64_t open_config(const char *config) {
  uint64_t h;
  hms_status st = {0};
  if (hms_open((const uint8_t *)config, strlen(config), &h, &st) != HMS_OK) {
    fprintf(stderr, "open %s: %s\n", config, st.message);
    exit(1);
  }
  uint8_t *r;
  size_t n;
  const char *reg = "{\"agentId\":\"agent-001\"}";
  if (hms_call(h, "hms.agent.lifecycle.v1.LifecycleManager/RegisterAgent", HMS_FORMAT_JSON, (const uint8_t *)reg, strlen(reg), &r, &n, &st) != HMS_OK) {
    fprintf(stderr, "register: %s\n", st.message);
    exit(1);
  }
  hms_free(r);
  hms_call(h, "hms.agent.lifecycle.v1.LifecycleManager/TransitionState", HMS_FORMAT_PROTOBUF, tr_req[1], sizeof tr_req[1], &r, &n, NULL);
  hms_free(r);
  return h;
}


int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: bench SERVER_BINARY\n");
    return 2;
  }
  const char *get = "hms.agent.lifecycle.v1.LifecycleManager/GetState";
  const char *tr = "hms.agent.lifecycle.v1.LifecycleManager/TransitionState";
  uint64_t h = open_config("{}");
  measure("warm-up", h, get, 20000, 0);
  measure("embedded GetState (hms_call)", h, get, 300000, 0);
  measure("embedded TransitionState (hms_call)", h, tr, 300000, 1);

  char url[256], config[320];
  pid_t pid = start_server(argv[1], NULL, url, sizeof url);
  if (pid < 0) {
    fprintf(stderr, "the server did not start\n");
    return 1;
  }
  snprintf(config, sizeof config, "{\"endpoint\":\"%s\",\"protocol\":\"grpc\"}", url);
  uint64_t r = open_config(config);
  measure("warm-up", r, get, 2000, 0);
  measure("loopback gRPC GetState (remote)", r, get, 20000, 0);
  measure("loopback gRPC TransitionState", r, tr, 20000, 1);
  hms_close(r, NULL);
  kill(pid, SIGTERM);
  waitpid(pid, NULL, 0);

  // Watch: N stored events drained through the library in batches of 1,000.
  enum { N = 300000 };
  for (int i = 0; i < N; i++) {
    uint8_t *resp;
    size_t len;
    hms_call(h, tr, HMS_FORMAT_PROTOBUF, tr_req[i % 2], sizeof tr_req[0], &resp, &len, NULL);
    hms_free(resp);
  }
  const uint8_t watch_req[] = {0x20, 3};  // from_sequence 3: the events just made
  uint64_t s;
  hms_watch(h, "hms.agent.lifecycle.v1.LifecycleManager/WatchEvents", HMS_FORMAT_PROTOBUF, watch_req, sizeof watch_req, &s, NULL);
  double t0 = now_ns();
  long got = 0;
  while (got < N) {
    uint8_t *b;
    size_t n;
    hms_status st = {0};
    if (hms_next(s, 5000, 1000, &b, &n, &st) != HMS_OK) {
      fprintf(stderr, "watch: %s\n", st.message);
      return 1;
    }
    for (size_t off = 0; off + 4 <= n; got++) off += 4 + ((uint32_t)b[off] | (uint32_t)b[off + 1] << 8 | (uint32_t)b[off + 2] << 16 | (uint32_t)b[off + 3] << 24);
    hms_free(b);
  }
  double secs = (now_ns() - t0) / 1e9;
  printf("watch drained in batches of 1,000     %ld events in %.3f s: %.0f events/s\n", got, secs, got / secs);
  hms_stream_close(s, NULL);
  hms_close(h, NULL);
  return 0;
}
