//! Raw declarations of the HMS Lifecycle C library, `capi/hms_lifecycle.h`, written by hand
//! (a test, `tests/header.rs`, checks them against the header). Use the safe crate
//! `hms-agent` instead; this one is for those who need the bytes-in, bytes-out calls.
//!
//! The build script links the library's static archive: built with the Go toolchain from
//! the repository, or a prebuilt one from `HMS_LIB_DIR`.
//!
//! Conventions of the header, in short: every function but [`hms_abi_version`],
//! [`hms_free`] and [`hms_handle_count`] returns a status code ([`HMS_OK`] or a gRPC code)
//! and fills an optional [`hms_status`]; every buffer the library returns is freed with
//! [`hms_free`], once; handles are non-zero `u64`s; every function is thread-safe.
//!
//! ```
//! use hms_agent_sys::*;
//! assert_eq!(unsafe { hms_abi_version() }, HMS_ABI_VERSION);
//! ```
#![allow(non_camel_case_types)]

use std::os::raw::c_char;

/// The ABI version of the header these declarations follow.
pub const HMS_ABI_VERSION: u32 = 1;

/// Success.
pub const HMS_OK: i32 = 0;
/// The stream or worker was closed by the caller.
pub const HMS_CANCELLED: i32 = 1;
/// Unknown error.
pub const HMS_UNKNOWN: i32 = 2;
/// Bad input, unknown method or format, unknown handle.
pub const HMS_INVALID_ARGUMENT: i32 = 3;
/// A deadline passed.
pub const HMS_DEADLINE_EXCEEDED: i32 = 4;
/// Unknown agent, hook, plugin, invocation.
pub const HMS_NOT_FOUND: i32 = 5;
/// The id is taken.
pub const HMS_ALREADY_EXISTS: i32 = 6;
/// Not allowed for this principal.
pub const HMS_PERMISSION_DENIED: i32 = 7;
/// A stream cut off for falling behind (see `resume_sequence`).
pub const HMS_RESOURCE_EXHAUSTED: i32 = 8;
/// Operation not allowed now; called after fork().
pub const HMS_FAILED_PRECONDITION: i32 = 9;
/// Aborted.
pub const HMS_ABORTED: i32 = 10;
/// Resume point older than retention.
pub const HMS_OUT_OF_RANGE: i32 = 11;
/// Not implemented.
pub const HMS_UNIMPLEMENTED: i32 = 12;
/// Internal error.
pub const HMS_INTERNAL: i32 = 13;
/// Handle closed meanwhile, server unreachable or gone.
pub const HMS_UNAVAILABLE: i32 = 14;
/// Data loss.
pub const HMS_DATA_LOSS: i32 = 15;
/// Missing or bad credentials.
pub const HMS_UNAUTHENTICATED: i32 = 16;

/// Messages in protobuf binary.
pub const HMS_FORMAT_PROTOBUF: i32 = 0;
/// Messages in protojson.
pub const HMS_FORMAT_JSON: i32 = 1;
/// Messages in CBOR (docs/cbor.md).
pub const HMS_FORMAT_CBOR: i32 = 2;

/// A call's outcome: the code, the message (freed with [`hms_free`]) and a stream's resume
/// point.
#[repr(C)]
#[derive(Debug)]
pub struct hms_status {
    /// `HMS_OK` or a status code.
    pub code: i32,
    /// NUL-terminated UTF-8; the caller frees it with [`hms_free`]; NULL on success.
    pub message: *mut c_char,
    /// A stream's resume point when it ended, else 0.
    pub resume_sequence: u64,
}

impl Default for hms_status {
    fn default() -> Self {
        hms_status { code: HMS_OK, message: std::ptr::null_mut(), resume_sequence: 0 }
    }
}

unsafe extern "C" {
    /// The library's ABI version.
    pub fn hms_abi_version() -> u32;
    /// Frees a buffer the library returned. NULL is fine.
    pub fn hms_free(ptr: *mut std::ffi::c_void);
    /// Opens a manager from a JSON configuration (embedded or remote).
    pub fn hms_open(config: *const u8, config_len: usize, handle: *mut u64, status: *mut hms_status) -> i32;
    /// Closes a manager and its streams and workers; idempotent; waits for in-flight calls.
    pub fn hms_close(handle: u64, status: *mut hms_status) -> i32;
    /// Calls a unary RPC by its full method name.
    pub fn hms_call(
        handle: u64,
        method: *const c_char,
        format: i32,
        req: *const u8,
        req_len: usize,
        resp: *mut *mut u8,
        resp_len: *mut usize,
        status: *mut hms_status,
    ) -> i32;
    /// Opens a stream (WatchEvents or WatchPluginEvents).
    pub fn hms_watch(
        handle: u64,
        method: *const c_char,
        format: i32,
        req: *const u8,
        req_len: usize,
        stream: *mut u64,
        status: *mut hms_status,
    ) -> i32;
    /// Opens a hook worker from a HookWorkerHello message.
    pub fn hms_hooks_open(
        handle: u64,
        format: i32,
        hello: *const u8,
        hello_len: usize,
        worker: *mut u64,
        status: *mut hms_status,
    ) -> i32;
    /// Completes a hook invocation with a HookWorkerReply message.
    pub fn hms_hook_complete(worker: u64, reply: *const u8, reply_len: usize, status: *mut hms_status) -> i32;
    /// Takes the next items of a stream or worker as a batch of length-prefixed messages.
    pub fn hms_next(
        stream: u64,
        timeout_ms: i32,
        max_items: i32,
        batch: *mut *mut u8,
        batch_len: *mut usize,
        status: *mut hms_status,
    ) -> i32;
    /// The stream's readiness file descriptor (owned by the library).
    pub fn hms_stream_fd(stream: u64, fd: *mut i32, status: *mut hms_status) -> i32;
    /// Closes a stream or hook worker, waking a blocked `hms_next`; idempotent.
    pub fn hms_stream_close(stream: u64, status: *mut hms_status) -> i32;
    /// Converts a message between formats without a manager.
    pub fn hms_convert(
        message: *const c_char,
        from: i32,
        input: *const u8,
        in_len: usize,
        to: i32,
        out: *mut *mut u8,
        out_len: *mut usize,
        status: *mut hms_status,
    ) -> i32;
    /// How many managers, streams and workers are open in this process.
    pub fn hms_handle_count() -> i64;
}
