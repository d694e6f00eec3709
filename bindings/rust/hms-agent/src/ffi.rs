//! Safe wrappers over the C calls: every buffer the library returns is owned by a [`Buf`],
//! freed exactly once when it drops; every failed status becomes an [`Error`], its message
//! freed once.

use std::ffi::{CStr, CString, c_void};
use std::ptr;
use std::sync::OnceLock;

use hms_agent_sys as sys;

use crate::error::{Code, Error};

/// A buffer the library returned, freed with `hms_free` on drop.
pub(crate) struct Buf {
    ptr: *mut u8,
    len: usize,
}

// The buffer is plain memory owned by us until freed.
unsafe impl Send for Buf {}
unsafe impl Sync for Buf {}

impl Buf {
    pub(crate) fn as_slice(&self) -> &[u8] {
        if self.ptr.is_null() { &[] } else { unsafe { std::slice::from_raw_parts(self.ptr, self.len) } }
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        if !self.ptr.is_null() {
            unsafe { sys::hms_free(self.ptr as *mut c_void) };
        }
    }
}

/// Turns a call's result into `Ok` or an [`Error`], freeing the status message.
fn check(rc: i32, st: &mut sys::hms_status) -> Result<(), Error> {
    let msg = if st.message.is_null() {
        None
    } else {
        let m = unsafe { CStr::from_ptr(st.message) }.to_string_lossy().into_owned();
        unsafe { sys::hms_free(st.message as *mut c_void) };
        st.message = ptr::null_mut();
        Some(m)
    };
    if rc == sys::HMS_OK {
        return Ok(());
    }
    let code = if st.code != 0 { st.code } else { rc };
    Err(Error::new(Code::from_i32(code), msg.unwrap_or_else(|| format!("status {code}")))
        .with_resume(st.resume_sequence))
}

/// Refuses a library of another ABI version, once per process.
fn abi_check() -> Result<(), Error> {
    static ABI: OnceLock<u32> = OnceLock::new();
    let v = *ABI.get_or_init(|| unsafe { sys::hms_abi_version() });
    if v != sys::HMS_ABI_VERSION {
        return Err(Error::new(
            Code::FailedPrecondition,
            format!("the library's ABI version is {v}; this crate was built for {}", sys::HMS_ABI_VERSION),
        ));
    }
    Ok(())
}

pub(crate) fn open(config: &[u8]) -> Result<u64, Error> {
    abi_check()?;
    let mut st = sys::hms_status::default();
    let mut h = 0u64;
    let rc = unsafe { sys::hms_open(config.as_ptr(), config.len(), &mut h, &mut st) };
    check(rc, &mut st)?;
    Ok(h)
}

pub(crate) fn close(handle: u64) -> Result<(), Error> {
    let mut st = sys::hms_status::default();
    let rc = unsafe { sys::hms_close(handle, &mut st) };
    check(rc, &mut st)
}

pub(crate) fn call(handle: u64, method: &CStr, format: i32, req: &[u8]) -> Result<Buf, Error> {
    let mut st = sys::hms_status::default();
    let mut out = Buf { ptr: ptr::null_mut(), len: 0 };
    let rc = unsafe {
        sys::hms_call(handle, method.as_ptr(), format, req.as_ptr(), req.len(), &mut out.ptr, &mut out.len, &mut st)
    };
    check(rc, &mut st)?;
    Ok(out)
}

pub(crate) fn watch(handle: u64, method: &CStr, format: i32, req: &[u8]) -> Result<u64, Error> {
    let mut st = sys::hms_status::default();
    let mut s = 0u64;
    let rc = unsafe { sys::hms_watch(handle, method.as_ptr(), format, req.as_ptr(), req.len(), &mut s, &mut st) };
    check(rc, &mut st)?;
    Ok(s)
}

pub(crate) fn hooks_open(handle: u64, format: i32, hello: &[u8]) -> Result<u64, Error> {
    let mut st = sys::hms_status::default();
    let mut w = 0u64;
    let rc = unsafe { sys::hms_hooks_open(handle, format, hello.as_ptr(), hello.len(), &mut w, &mut st) };
    check(rc, &mut st)?;
    Ok(w)
}

pub(crate) fn hook_complete(worker: u64, reply: &[u8]) -> Result<(), Error> {
    let mut st = sys::hms_status::default();
    let rc = unsafe { sys::hms_hook_complete(worker, reply.as_ptr(), reply.len(), &mut st) };
    check(rc, &mut st)
}

/// The next batch: `Ok(None)` on a timeout.
pub(crate) fn next(stream: u64, timeout_ms: i32, max_items: i32) -> Result<Option<Buf>, Error> {
    let mut st = sys::hms_status::default();
    let mut out = Buf { ptr: ptr::null_mut(), len: 0 };
    let rc = unsafe { sys::hms_next(stream, timeout_ms, max_items, &mut out.ptr, &mut out.len, &mut st) };
    check(rc, &mut st)?;
    Ok((out.len > 0).then_some(out))
}

#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub(crate) fn stream_fd(stream: u64) -> Result<i32, Error> {
    let mut st = sys::hms_status::default();
    let mut fd = -1;
    let rc = unsafe { sys::hms_stream_fd(stream, &mut fd, &mut st) };
    check(rc, &mut st)?;
    Ok(fd)
}

pub(crate) fn stream_close(stream: u64) -> Result<(), Error> {
    let mut st = sys::hms_status::default();
    let rc = unsafe { sys::hms_stream_close(stream, &mut st) };
    check(rc, &mut st)
}

pub(crate) fn convert(message: &str, from: i32, input: &[u8], to: i32) -> Result<Vec<u8>, Error> {
    let name = CString::new(message).map_err(|_| Error::new(Code::InvalidArgument, "message name contains NUL"))?;
    let mut st = sys::hms_status::default();
    let mut out = Buf { ptr: ptr::null_mut(), len: 0 };
    let rc = unsafe {
        sys::hms_convert(name.as_ptr(), from, input.as_ptr(), input.len(), to, &mut out.ptr, &mut out.len, &mut st)
    };
    check(rc, &mut st)?;
    Ok(out.as_slice().to_vec())
}

/// How many managers, streams and workers the library has open in this process.
pub(crate) fn handle_count() -> i64 {
    unsafe { sys::hms_handle_count() }
}

/// The items of a batch: 4-byte little-endian lengths, each followed by a message.
pub(crate) fn next_item(batch: &[u8], pos: &mut usize) -> Option<Result<std::ops::Range<usize>, Error>> {
    if *pos >= batch.len() {
        return None;
    }
    let rest = &batch[*pos..];
    if rest.len() < 4 {
        *pos = batch.len();
        return Some(Err(Error::new(Code::Internal, "truncated batch from the library")));
    }
    let n = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
    let start = *pos + 4;
    if start + n > batch.len() {
        *pos = batch.len();
        return Some(Err(Error::new(Code::Internal, "truncated batch item from the library")));
    }
    *pos = start + n;
    Some(Ok(start..start + n))
}
