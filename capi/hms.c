// The public functions of hms_lifecycle.h: each refuses a call in a child forked after the
// library was loaded, before entering the Go runtime (which does not survive fork() and
// can hang there), tells the runtime of a thread's first call (procs.go), then calls its
// hmsgo_* counterpart in capi.go.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "_cgo_export.h"
#include "hms_lifecycle.h"

static volatile int hms_forked = 0;

static void hms_atfork_child(void) { hms_forked = 1; }

__attribute__((constructor)) static void hms_register_atfork(void) {
  pthread_atfork(NULL, NULL, hms_atfork_child);
}

static const char hms_fork_message[] =
    "the HMS library cannot be used in a process forked after it was loaded (the Go runtime "
    "does not survive fork()): load and open it after the fork, or start the child with "
    "spawn or fork+exec (Python: multiprocessing start method 'spawn' or 'forkserver')";

static __thread int hms_thread_known = 0;

// hms_enter refuses a call in a forked child, and counts a thread's first call.
static int hms_enter(hms_status *st) {
  if (!hms_forked) {
    if (!hms_thread_known) {
      hms_thread_known = 1;
      hmsgo_thread_arrived();
    }
    return 0;
  }
  if (st != NULL) {
    st->code = HMS_FAILED_PRECONDITION;
    st->message = strdup(hms_fork_message);
    st->resume_sequence = 0;
  }
  return 1;
}

uint32_t hms_abi_version(void) { return HMS_ABI_VERSION; }

void hms_free(void *ptr) { free(ptr); }

int32_t hms_open(const uint8_t *config, size_t config_len, uint64_t *handle, hms_status *status) {
  if (hms_enter(status)) return HMS_FAILED_PRECONDITION;
  return hmsgo_open((uint8_t *)config, config_len, handle, status);
}

int32_t hms_close(uint64_t handle, hms_status *status) {
  if (hms_enter(status)) return HMS_FAILED_PRECONDITION;
  return hmsgo_close(handle, status);
}

int32_t hms_call(uint64_t handle, const char *method, int32_t format, const uint8_t *req,
                 size_t req_len, uint8_t **resp, size_t *resp_len, hms_status *status) {
  if (hms_enter(status)) return HMS_FAILED_PRECONDITION;
  return hmsgo_call(handle, (char *)method, format, (uint8_t *)req, req_len, resp, resp_len,
                    status);
}

int32_t hms_watch(uint64_t handle, const char *method, int32_t format, const uint8_t *req,
                  size_t req_len, uint64_t *stream, hms_status *status) {
  if (hms_enter(status)) return HMS_FAILED_PRECONDITION;
  return hmsgo_watch(handle, (char *)method, format, (uint8_t *)req, req_len, stream, status);
}

int32_t hms_hooks_open(uint64_t handle, int32_t format, const uint8_t *hello, size_t hello_len,
                       uint64_t *worker, hms_status *status) {
  if (hms_enter(status)) return HMS_FAILED_PRECONDITION;
  return hmsgo_hooks_open(handle, format, (uint8_t *)hello, hello_len, worker, status);
}

int32_t hms_hook_complete(uint64_t worker, const uint8_t *reply, size_t reply_len,
                          hms_status *status) {
  if (hms_enter(status)) return HMS_FAILED_PRECONDITION;
  return hmsgo_hook_complete(worker, (uint8_t *)reply, reply_len, status);
}

int32_t hms_next(uint64_t stream, int32_t timeout_ms, int32_t max_items, uint8_t **batch,
                 size_t *batch_len, hms_status *status) {
  if (hms_enter(status)) return HMS_FAILED_PRECONDITION;
  return hmsgo_next(stream, timeout_ms, max_items, batch, batch_len, status);
}

int32_t hms_stream_fd(uint64_t stream, int32_t *fd, hms_status *status) {
  if (hms_enter(status)) return HMS_FAILED_PRECONDITION;
  return hmsgo_stream_fd(stream, fd, status);
}

int32_t hms_stream_close(uint64_t stream, hms_status *status) {
  if (hms_enter(status)) return HMS_FAILED_PRECONDITION;
  return hmsgo_stream_close(stream, status);
}

int32_t hms_convert(const char *message, int32_t from, const uint8_t *in, size_t in_len,
                    int32_t to, uint8_t **out, size_t *out_len, hms_status *status) {
  if (hms_enter(status)) return HMS_FAILED_PRECONDITION;
  return hmsgo_convert((char *)message, from, (uint8_t *)in, in_len, to, out, out_len, status);
}

int64_t hms_handle_count(void) {
  if (hms_forked) return -1;
  return hmsgo_handle_count();
}
