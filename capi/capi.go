// Command capi is the lifecycle core as a C library (hms_lifecycle.h), built with
// -buildmode=c-shared (libhms_lifecycle.so) or -buildmode=c-archive (libhms_lifecycle.a):
// `make lib`. The public functions are C wrappers in hms.c, which refuse calls in a forked
// child before entering Go; they call the hmsgo_* functions here, which convert buffers
// and call package ffi.
package main

/*
#include <stdlib.h>
#include <string.h>
#include "hms_lifecycle.h"
*/
import "C"

import (
	"time"
	"unsafe"

	"github.com/hms-lifecycle/lifecycle/ffi"
	"github.com/hms-lifecycle/lifecycle/wire"
)

// lib is the process's handle table: the C ABI has no context argument to carry one.
var lib = ffi.New()

func main() {}

// status reports err in st and returns its code. It writes st from Go: on success, the
// common case, without a call into C.
func status(st *C.hms_status, err error) C.int32_t {
	code, msg, resume := ffi.Status(err)
	if st != nil {
		st.code, st.message, st.resume_sequence = C.int32_t(code), nil, C.uint64_t(resume)
		if code != 0 {
			st.message = C.CString(msg)
		}
	}
	return C.int32_t(code)
}

// bytes borrows C memory as a Go slice for the duration of a call.
func bytes(p *C.uint8_t, n C.size_t) []byte {
	if p == nil || n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))
}

// cAlloc allocates n bytes of C memory, which the caller frees with hms_free.
func cAlloc(n int) []byte {
	return unsafe.Slice((*byte)(C.malloc(C.size_t(n))), n)
}

// out copies b into C memory owned by the caller (NULL for no bytes).
func out(b []byte, p **C.uint8_t, n *C.size_t) {
	if p == nil || n == nil {
		return
	}
	*n = C.size_t(len(b))
	if len(b) == 0 {
		*p = nil
		return
	}
	*p = (*C.uint8_t)(C.CBytes(b))
}

//export hmsgo_open
func hmsgo_open(config *C.uint8_t, n C.size_t, handle *C.uint64_t, st *C.hms_status) C.int32_t {
	h, err := lib.Open(bytes(config, n))
	if err == nil && lib.Waits() {
		procs.wait()
	}
	if err == nil && handle != nil {
		*handle = C.uint64_t(h)
	}
	return status(st, err)
}

//export hmsgo_close
func hmsgo_close(handle C.uint64_t, st *C.hms_status) C.int32_t {
	return status(st, lib.Close(uint64(handle)))
}

//export hmsgo_call
func hmsgo_call(handle C.uint64_t, method *C.char, format C.int32_t, req *C.uint8_t, n C.size_t, resp **C.uint8_t, respLen *C.size_t, st *C.hms_status) C.int32_t {
	if method == nil {
		return status(st, invalidArg("method is NULL"))
	}
	// The method name is only looked up, never kept: borrow it instead of copying it.
	b, err := lib.Call(uint64(handle), unsafe.String((*byte)(unsafe.Pointer(method)), C.strlen(method)), wire.Format(format), bytes(req, n), cAlloc)
	if err != nil {
		C.free(unsafe.Pointer(unsafe.SliceData(b)))
		return status(st, err)
	}
	if resp != nil && respLen != nil {
		*resp, *respLen = (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b))), C.size_t(len(b))
	} else {
		C.free(unsafe.Pointer(unsafe.SliceData(b)))
	}
	return status(st, nil)
}

//export hmsgo_watch
func hmsgo_watch(handle C.uint64_t, method *C.char, format C.int32_t, req *C.uint8_t, n C.size_t, stream *C.uint64_t, st *C.hms_status) C.int32_t {
	if method == nil {
		return status(st, invalidArg("method is NULL"))
	}
	h, err := lib.Watch(uint64(handle), C.GoString(method), wire.Format(format), bytes(req, n))
	if err == nil && stream != nil {
		*stream = C.uint64_t(h)
	}
	return status(st, err)
}

//export hmsgo_hooks_open
func hmsgo_hooks_open(handle C.uint64_t, format C.int32_t, hello *C.uint8_t, n C.size_t, worker *C.uint64_t, st *C.hms_status) C.int32_t {
	h, err := lib.HooksOpen(uint64(handle), wire.Format(format), bytes(hello, n))
	if err == nil && worker != nil {
		*worker = C.uint64_t(h)
	}
	return status(st, err)
}

//export hmsgo_hook_complete
func hmsgo_hook_complete(worker C.uint64_t, reply *C.uint8_t, n C.size_t, st *C.hms_status) C.int32_t {
	return status(st, lib.Complete(uint64(worker), bytes(reply, n)))
}

//export hmsgo_next
func hmsgo_next(stream C.uint64_t, timeoutMs C.int32_t, maxItems C.int32_t, batch **C.uint8_t, batchLen *C.size_t, st *C.hms_status) C.int32_t {
	timeout := time.Duration(timeoutMs) * time.Millisecond
	if timeoutMs < 0 {
		timeout = -1
	}
	b, err := lib.Next(uint64(stream), timeout, int(maxItems))
	if err == nil {
		out(b, batch, batchLen)
	}
	return status(st, err)
}

//export hmsgo_stream_fd
func hmsgo_stream_fd(stream C.uint64_t, fd *C.int32_t, st *C.hms_status) C.int32_t {
	f, err := lib.FD(uint64(stream))
	if err == nil && fd != nil {
		*fd = C.int32_t(f)
	}
	return status(st, err)
}

//export hmsgo_stream_close
func hmsgo_stream_close(stream C.uint64_t, st *C.hms_status) C.int32_t {
	return status(st, lib.CloseStream(uint64(stream)))
}

//export hmsgo_convert
func hmsgo_convert(message *C.char, from C.int32_t, in *C.uint8_t, n C.size_t, to C.int32_t, res **C.uint8_t, resLen *C.size_t, st *C.hms_status) C.int32_t {
	if message == nil {
		return status(st, invalidArg("message is NULL"))
	}
	b, err := ffi.Convert(C.GoString(message), wire.Format(from), bytes(in, n), wire.Format(to))
	if err == nil {
		out(b, res, resLen)
	}
	return status(st, err)
}

//export hmsgo_handle_count
func hmsgo_handle_count() C.int64_t { return C.int64_t(lib.Handles()) }

func invalidArg(msg string) error { return ffi.InvalidArgument(msg) }
