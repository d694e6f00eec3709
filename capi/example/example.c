// A complete program on the C library: open an embedded manager, register an agent,
// transition it, watch its events, veto a transition from a hook, close.
//   cc example.c -Ibuild/lib -Lbuild/lib -lhms_lifecycle -lpthread -Wl,-rpath,build/lib
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hms_lifecycle.h"

#define AGENTS "hms.agent.lifecycle.v1.LifecycleManager/"

static uint64_t manager;

// call makes a JSON call and prints the response (or the error).
static int call(const char *method, const char *request) {
  uint8_t *resp = NULL;
  size_t len = 0;
  hms_status st = {0};
  int32_t code = hms_call(manager, method, HMS_FORMAT_JSON, (const uint8_t *)request, strlen(request), &resp, &len, &st);
  if (code != HMS_OK) {
    printf("%s failed (%d): %s\n", method, code, st.message);
    hms_free(st.message);
    return code;
  }
  printf("%s -> %.*s\n", strrchr(method, '/') + 1, (int)len, (const char *)resp);
  hms_free(resp);
  return HMS_OK;
}

// serve_hooks answers every invocation of the "freeze" callback with a veto.
static void *serve_hooks(void *arg) {
  uint64_t worker = *(uint64_t *)arg;
  for (;;) {
    uint8_t *batch;
    size_t len;
    if (hms_next(worker, -1, 0, &batch, &len, NULL) != HMS_OK) return NULL;  // closed
    for (size_t off = 0; off + 4 <= len;) {
      uint32_t n = batch[off] | batch[off + 1] << 8 | batch[off + 2] << 16 | (uint32_t)batch[off + 3] << 24;
      const char *inv = (const char *)batch + off + 4;
      // The invocation is a HookInvocation in JSON: take its id.
      const char *id = strstr(inv, "\"invocationId\":");
      char reply[256];
      if (id && sscanf(id, "\"invocationId\": \"%63[^\"]\"", reply + 200) == 1) {
        snprintf(reply, 200, "{\"invocationId\":\"%s\",\"veto\":true,\"reason\":\"change freeze\"}", reply + 200);
        hms_hook_complete(worker, (const uint8_t *)reply, strlen(reply), NULL);
      }
      (void)n;
      off += 4 + n;
    }
    hms_free(batch);
  }
}

int main(void) {
  if (hms_abi_version() != HMS_ABI_VERSION) {
    fprintf(stderr, "library ABI %u, header %d\n", hms_abi_version(), HMS_ABI_VERSION);
    return 1;
  }
  hms_status st = {0};
  const char *config = "{\"store\":\"memory\"}";
  if (hms_open((const uint8_t *)config, strlen(config), &manager, &st) != HMS_OK) {
    fprintf(stderr, "open: %s\n", st.message);
    hms_free(st.message);
    return 1;
  }

  // Watch the agent's events from the first one on.
  uint64_t watch;
  const char *filter = "{\"agentId\":\"agent-001\",\"fromSequence\":\"1\"}";
  hms_watch(manager, AGENTS "WatchEvents", HMS_FORMAT_JSON, (const uint8_t *)filter, strlen(filter), &watch, NULL);

  call(AGENTS "RegisterAgent", "{\"agentId\":\"agent-001\"}");
  call(AGENTS "TransitionState", "{\"agentId\":\"agent-001\",\"targetState\":\"ACTIVE\",\"reason\":\"start\"}");

  // A blocking hook served by this program vetoes pausing.
  uint64_t worker;
  const char *hello = "{\"callbacks\":[\"freeze\"]}";
  hms_hooks_open(manager, HMS_FORMAT_JSON, (const uint8_t *)hello, strlen(hello), &worker, NULL);
  pthread_t t;
  pthread_create(&t, NULL, serve_hooks, &worker);
  call(AGENTS "RegisterHook", "{\"hookName\":\"freeze\",\"triggerStates\":[\"PAUSED\"],\"isBlocking\":true,\"timeoutMs\":1000,\"config\":{\"callback\":\"freeze\"}}");
  call(AGENTS "TransitionState", "{\"agentId\":\"agent-001\",\"targetState\":\"PAUSED\"}");  // refused: success false

  // The two events so far, in one batch.
  uint8_t *batch;
  size_t len;
  int events = 0;
  while (events < 2 && hms_next(watch, 1000, 0, &batch, &len, NULL) == HMS_OK && len > 0) {
    for (size_t off = 0; off + 4 <= len; events++) {
      uint32_t n = batch[off] | batch[off + 1] << 8 | batch[off + 2] << 16 | (uint32_t)batch[off + 3] << 24;
      printf("event: %.*s\n", (int)n, (const char *)batch + off + 4);
      off += 4 + n;
    }
    hms_free(batch);
  }

  hms_stream_close(watch, NULL);
  hms_stream_close(worker, NULL);  // wakes the hook thread's hms_next
  pthread_join(t, NULL);
  hms_close(manager, NULL);
  printf("%d events; handles open: %lld\n", events, (long long)hms_handle_count());
  return 0;
}
