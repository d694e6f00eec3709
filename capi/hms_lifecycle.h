/*
 * hms_lifecycle.h — the HMS Lifecycle core as a C library.
 *
 * The library runs the lifecycle core in the calling process ("embedded": on memory,
 * SQLite or PostgreSQL) or talks to a server ("remote") with the same calls and the same
 * semantics. Every request and response is a protobuf message of the services
 * hms.agent.lifecycle.v1.LifecycleManager and hms.plugin.lifecycle.v1.PluginLifecycleManager
 * (proto/ in the repository), encoded in the format the caller chooses: protobuf binary,
 * JSON (protojson, camelCase or proto field names; enum values by their full name,
 * "LIFECYCLE_STATE_ACTIVE", or the specification's short one, "ACTIVE") or CBOR
 * (docs/cbor.md). The same codecs serve the network server.
 *
 * CONVENTIONS
 *   - Every function but hms_abi_version, hms_free and hms_handle_count returns a status
 *     code: HMS_OK (0) or one of the gRPC status codes below, which are the server's closed
 *     set of codes, with the same meanings.
 *   - Every such function takes a last argument `hms_status *status`, which may be NULL.
 *     When the call fails, status->code is the code, status->message a NUL-terminated UTF-8
 *     message naming what was wrong (owned by the caller: free it with hms_free), and
 *     status->resume_sequence, for a stream that ended, the from_sequence that resumes it
 *     with no gap and no duplicate (0 when there is none). On success status->message is
 *     NULL. Errors are per call: concurrent calls never overwrite each other's.
 *   - A refusal by the lifecycle (a transition the table does not allow, a failed
 *     precondition, a hook's veto) is not an error: it is the response, with success=false,
 *     exactly as over the network.
 *   - Handles are non-zero 64-bit integers, never pointers. A call on a closed or unknown
 *     handle fails with HMS_INVALID_ARGUMENT and says so; it never crashes.
 *   - Buffers the caller passes are borrowed for the duration of the call only. Every
 *     buffer the library returns (responses, batches, messages) is owned by the caller and
 *     freed with hms_free, once.
 *   - Every function is safe to call from any thread, concurrently.
 *
 * KNOWN LIMITS
 *   - One Go runtime per process: load one such library per process (two Go c-shared
 *     libraries in one process crash). Programs that need the core twice use remote mode.
 *   - The library cannot be unloaded (dlclose does not stop the Go runtime).
 *   - glibc (Linux) only; on musl (Alpine) use remote clients (gRPC, Connect) instead.
 *   - fork(): the Go runtime does not survive fork(). Every call in a child process
 *     forked after the library was loaded fails at once with HMS_FAILED_PRECONDITION and
 *     says so, instead of deadlocking. Load (and open) the library after the fork, or
 *     start children with spawn / fork+exec (Python: multiprocessing's "spawn" or
 *     "forkserver" start method).
 *   - Signals: the library installs no handler of its own (no SIGINT, SIGTERM or SIGPIPE
 *     handling); the Go runtime handles synchronous signals (SIGSEGV, …) and chains to
 *     the host's. Hosts that install handlers must use SA_ONSTACK (Python >= 3.10 does).
 *   - Logging is off by default; the "log" setting of hms_open sends it to stderr or a
 *     file. Nothing is ever written to stdout, and the library never exits the process.
 *
 * A complete program is in docs/c-abi.md.
 */
#ifndef HMS_LIFECYCLE_H
#define HMS_LIFECYCLE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version of this header. hms_abi_version() returns the library's: a binding
 * refuses a library whose version differs from the one it was built for. */
#define HMS_ABI_VERSION 1

/* Status codes: HMS_OK, or gRPC's codes. */
#define HMS_OK 0
#define HMS_CANCELLED 1           /* the stream or worker was closed by the caller */
#define HMS_UNKNOWN 2
#define HMS_INVALID_ARGUMENT 3    /* bad input, unknown method or format, unknown handle */
#define HMS_DEADLINE_EXCEEDED 4
#define HMS_NOT_FOUND 5           /* unknown agent, hook, plugin, invocation */
#define HMS_ALREADY_EXISTS 6
#define HMS_PERMISSION_DENIED 7
#define HMS_RESOURCE_EXHAUSTED 8  /* a stream cut off for falling behind: resume_sequence */
#define HMS_FAILED_PRECONDITION 9 /* operation not allowed now; called after fork() */
#define HMS_ABORTED 10
#define HMS_OUT_OF_RANGE 11       /* resume point older than retention */
#define HMS_UNIMPLEMENTED 12
#define HMS_INTERNAL 13
#define HMS_UNAVAILABLE 14        /* handle closed meanwhile, server unreachable or gone */
#define HMS_DATA_LOSS 15
#define HMS_UNAUTHENTICATED 16

/* Message formats. */
#define HMS_FORMAT_PROTOBUF 0
#define HMS_FORMAT_JSON 1
#define HMS_FORMAT_CBOR 2

typedef struct hms_status {
  int32_t code;             /* HMS_OK or a status code */
  char *message;            /* NUL-terminated; caller frees with hms_free; NULL on success */
  uint64_t resume_sequence; /* a stream's resume point when it ended, else 0 */
} hms_status;

/* The library's ABI version (HMS_ABI_VERSION of the header it was built with). */
uint32_t hms_abi_version(void);

/* Frees a buffer the library returned (response, batch, status message). NULL is fine. */
void hms_free(void *ptr);

/* Opens a manager. `config` is a JSON object of `config_len` bytes (0 bytes or "{}":
 * embedded, on the memory store). Embedded settings:
 *   "store":      "memory" (default), "sqlite" (needs "data_dir"), or "postgres://…"
 *   "data_dir":   the SQLite data directory (locked: one process at a time)
 *   "sqlite_sync": "full" (default) or "normal"
 *   "retain_age": e.g. "720h"; "retain_per_agent": N (history retention; default: keep)
 *   "supervision": the default supervision policy, a SupervisionPolicy message in JSON
 *   "initiator":  the principal recorded as initiated_by (default "ffi")
 *   "plugin_repo", "plugin_auto_activate", "plugin_activate_on_demand",
 *   "plugin_idle_timeout" (e.g. "10m"), "core_ports": ["…"]: the plugin manager
 *   "plugin_failover" (true: activate another version when the active one fails),
 *   "plugin_failover_constraint" (e.g. "^1"), "plugin_failover_rate" (e.g. "3/10m"),
 *   "plugin_pressure_threshold" (percent, e.g. 80), "plugin_pressure_wait" (e.g. "5s"),
 *   "plugin_pressure_idle_timeout" (e.g. "1m"): the plugin policies (docs/plugins.md)
 * Remote settings (the presence of "endpoint" selects remote mode):
 *   "endpoint":   "http://127.0.0.1:7460" or "https://…"
 *   "token":      a bearer token
 *   "tls_ca", "tls_cert", "tls_key": PEM files (server CA; client certificate for mTLS)
 *   "protocol":   "connect" (default), "grpc" or "grpcweb"
 * Either mode:
 *   "log":        "" (default: off), "stderr", or a file path to append to
 *   "log_level":  "debug", "info" (default), "warn" or "error"
 * An unknown key or a bad value is HMS_INVALID_ARGUMENT naming it; a data directory in
 * use by another process is HMS_FAILED_PRECONDITION naming the process.
 * On success *handle is the manager's handle. */
int32_t hms_open(const uint8_t *config, size_t config_len, uint64_t *handle, hms_status *status);

/* Closes a manager. Its calls in flight end (HMS_CANCELLED); its streams and hook workers
 * end: hms_next returns their remaining items, then HMS_UNAVAILABLE — close them with
 * hms_stream_close as usual. Blocks until in-flight calls on the handle have returned.
 * Idempotent: closing a closed handle is HMS_OK. */
int32_t hms_close(uint64_t handle, hms_status *status);

/* Calls a unary RPC. `method` is its full name, NUL-terminated:
 * "hms.agent.lifecycle.v1.LifecycleManager/TransitionState",
 * "hms.plugin.lifecycle.v1.PluginLifecycleManager/ResolvePlugin", … (every unary RPC of
 * both services; a leading '/' is accepted). The request is `req_len` bytes in `format`;
 * on success *resp (freed by the caller with hms_free) holds *resp_len bytes of the
 * response in the same format. */
int32_t hms_call(uint64_t handle, const char *method, int32_t format, const uint8_t *req,
                 size_t req_len, uint8_t **resp, size_t *resp_len, hms_status *status);

/* Opens a stream: `method` is "hms.agent.lifecycle.v1.LifecycleManager/WatchEvents" or
 * "hms.plugin.lifecycle.v1.PluginLifecycleManager/WatchPluginEvents"; the request (its
 * filters and from_sequence resume point) is in `format`, and so will the events be.
 * *stream is the stream's handle, read with hms_next and closed with hms_stream_close. */
int32_t hms_watch(uint64_t handle, const char *method, int32_t format, const uint8_t *req,
                  size_t req_len, uint64_t *stream, hms_status *status);

/* Opens a hook worker: `hello` is a HookWorkerHello message naming the callbacks it
 * serves (hooks registered with config {"callback": name}). It is a stream of
 * HookInvocation messages, read with hms_next; complete each with hms_hook_complete.
 * The same messages serve embedded and remote handles (remotely, the library serves them
 * over the ServeHooks stream). A callback is served by one worker of a handle at a time
 * (HMS_ALREADY_EXISTS). An invocation not completed by its deadline follows its hook's
 * failure_policy. Closing the worker fails its pending invocations. */
int32_t hms_hooks_open(uint64_t handle, int32_t format, const uint8_t *hello, size_t hello_len,
                       uint64_t *worker, hms_status *status);

/* Completes an invocation: `reply` is a HookWorkerReply message (invocation_id, and veto
 * with a reason, or error for a failure), in the worker's format. HMS_NOT_FOUND when the
 * invocation is not pending (completed already, or past its deadline). */
int32_t hms_hook_complete(uint64_t worker, const uint8_t *reply, size_t reply_len,
                          hms_status *status);

/* Takes the next items of a stream or hook worker: waits up to `timeout_ms` (0: do not
 * wait; negative: wait until an item comes or the stream ends) and returns up to
 * `max_items` (<= 0: all waiting) in one buffer of *batch_len bytes, freed by the caller:
 * each item is a 4-byte little-endian length followed by that many bytes of the message
 * (LifecycleEvent, WatchPluginEventsResponse or HookInvocation) in the stream's format.
 * A timeout is HMS_OK with *batch_len 0 (and *batch NULL).
 * The end of a stream is a status: HMS_CANCELLED (closed by hms_stream_close from another
 * thread, which wakes a blocked hms_next), HMS_RESOURCE_EXHAUSTED (cut off for falling
 * behind), HMS_UNAVAILABLE (manager closed, server gone), or the error that ended it; the
 * status's resume_sequence says where to watch again from. Items already taken are never
 * lost: the end is reported once the items before it have been returned. */
int32_t hms_next(uint64_t stream, int32_t timeout_ms, int32_t max_items, uint8_t **batch,
                 size_t *batch_len, hms_status *status);

/* The stream's readiness file descriptor: readable while items are waiting or the stream
 * has ended, so an event loop (asyncio, Node, epoll) can wait without parking a thread,
 * then call hms_next with timeout 0. Owned by the library (do not read or close it); it
 * stays valid until hms_stream_close. */
int32_t hms_stream_fd(uint64_t stream, int32_t *fd, hms_status *status);

/* Closes a stream or hook worker, waking a blocked hms_next. Idempotent. */
int32_t hms_stream_close(uint64_t stream, hms_status *status);

/* Converts a message between formats without a manager: `message` is its full name
 * ("hms.agent.lifecycle.v1.LifecycleEvent"), NUL-terminated. On success *out (freed by
 * the caller) holds *out_len bytes in format `to`. Bindings use it to check the shared
 * test vectors; hosts to turn JSON into protobuf and back. */
int32_t hms_convert(const char *message, int32_t from, const uint8_t *in, size_t in_len,
                    int32_t to, uint8_t **out, size_t *out_len, hms_status *status);

/* Diagnostics: how many managers, streams and workers are open in this process. */
int64_t hms_handle_count(void);

#ifdef __cplusplus
}
#endif

#endif /* HMS_LIFECYCLE_H */
