package ffi_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hms-lifecycle/lifecycle/ffi"
	"github.com/hms-lifecycle/lifecycle/wire"
)

// call makes a JSON call and fails the test on an error.
func call(t *testing.T, lib *ffi.Library, h uint64, method, req string) map[string]any {
	t.Helper()
	res, err := lib.Call(h, service("agents")+method, wire.JSON, []byte(req), nil)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	var m map[string]any
	json.Unmarshal(res, &m)
	return m
}

func status(err error) (string, string, uint64) {
	code, msg, resume := ffi.Status(err)
	return codeNames[code], msg, resume
}

// A watch the host does not read falls behind and is cut off, with the sequence that
// resumes it; the items before the cut are delivered first, and resuming there misses
// nothing.
func TestWatchCutOffForFallingBehind(t *testing.T) {
	lib := ffi.New()
	h, _ := lib.Open(nil)
	defer lib.Close(h)
	call(t, lib, h, "RegisterAgent", `{"agentId":"lag"}`)
	s, err := lib.Watch(h, service("agents")+"WatchEvents", wire.Protobuf, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lib.CloseStream(s)
	const n = 20000 // well past the library's queue (8192) and the manager's ring (4096)
	for i := range n {
		call(t, lib, h, "TransitionState", `{"agentId":"lag","targetState":"`+[]string{"PAUSED", "ACTIVE"}[i%2]+`"}`)
	}
	got := 0
	for {
		batch, err := lib.Next(s, 5*time.Second, 0)
		if err != nil {
			code, msg, resume := status(err)
			if code != "RESOURCE_EXHAUSTED" || resume == 0 {
				t.Fatalf("ended with %s (%s) resume %d, want RESOURCE_EXHAUSTED with a resume point", code, msg, resume)
			}
			if want := uint64(2 + got); resume != want {
				t.Fatalf("resume at %d after %d events from sequence 2, want %d", resume, got, want)
			}
			return
		}
		if batch == nil {
			t.Fatalf("the watch was not cut off: %d events delivered, then nothing", got)
		}
		got += len(splitBatch(batch))
	}
}

// A remote watch whose server goes away ends with UNAVAILABLE.
func TestWatchServerGone(t *testing.T) {
	url, stop := startStoppableServer(t)
	lib := ffi.New()
	h, err := lib.Open([]byte(`{"endpoint":"` + url + `"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close(h)
	call(t, lib, h, "RegisterAgent", `{"agentId":"gone"}`)
	s, err := lib.Watch(h, service("agents")+"WatchEvents", wire.JSON, []byte(`{"fromSequence":"1"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer lib.CloseStream(s)
	if batch, err := lib.Next(s, 5*time.Second, 0); err != nil || len(splitBatch(batch)) != 1 {
		t.Fatalf("first event: %v", err)
	}
	stop()
	_, err = lib.Next(s, 10*time.Second, 0)
	if code, msg, resume := status(err); code != "UNAVAILABLE" || resume != 2 {
		t.Fatalf("after the server stopped: %s (%s) resume %d, want UNAVAILABLE resuming at 2", code, msg, resume)
	}
}

// An invocation the host never completes times out under the hook's policy; completing it
// afterwards is NOT_FOUND.
func TestHookInvocationPastDeadline(t *testing.T) {
	lib := ffi.New()
	h, _ := lib.Open(nil)
	defer lib.Close(h)
	call(t, lib, h, "RegisterAgent", `{"agentId":"slow"}`)
	call(t, lib, h, "RegisterHook", `{"hookName":"slow","triggerStates":["ACTIVE"],"isBlocking":true,"timeoutMs":100,"config":{"callback":"slow"}}`)
	w, err := lib.HooksOpen(h, wire.JSON, []byte(`{"callbacks":["slow"]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer lib.CloseStream(w)
	res := call(t, lib, h, "TransitionState", `{"agentId":"slow","targetState":"ACTIVE"}`)
	if res["refusalReason"] != "REFUSAL_REASON_HOOK_FAILED" || !strings.Contains(res["errorMessage"].(string), "slow") {
		t.Fatalf("transition: %v", res)
	}
	batch, err := lib.Next(w, 0, 0)
	items := splitBatch(batch)
	if err != nil || len(items) != 1 {
		t.Fatalf("invocations waiting: %d, %v", len(items), err)
	}
	id, _ := lookup(items[0], "invocationId")
	reply, _ := json.Marshal(map[string]any{"invocationId": id})
	if code, _, _ := status(lib.Complete(w, reply)); code != "NOT_FOUND" {
		t.Fatalf("completing a timed-out invocation: %s, want NOT_FOUND", code)
	}
	if _, err := lib.Watch(h, "nope", wire.JSON, nil); err == nil {
		t.Fatal("a watch of an unknown method opened")
	}
	if err := lib.Complete(h, reply); err == nil {
		t.Fatal("completed on a manager handle")
	}
}

func TestOpenConfig(t *testing.T) {
	lib := ffi.New()
	for _, c := range []struct{ config, want string }{
		{`{"store":"sqlite"}`, "data_dir"},
		{`{"store":"mysql"}`, "mysql"},
		{`{"retain_age":"soon","store":"sqlite","data_dir":"x"}`, "retain_age"},
		{`{"endpoint":"http://127.0.0.1:1","store":"memory"}`, "remote mode"},
		{`{"token":"t"}`, "endpoint"},
		{`{"endpoint":"ftp://x"}`, "http"},
		{`{"log":"stdout"}`, "stdout"},
		{`{"log_level":"loud"}`, "log_level"},
		{`{"supervision":{"restart":"SOMETIMES"}}`, "SOMETIMES"},
		{`{"storage":"memory"}`, "storage"},
		{`[]`, "config"},
	} {
		_, err := lib.Open([]byte(c.config))
		if code, msg, _ := status(err); code != "INVALID_ARGUMENT" || !strings.Contains(msg, c.want) {
			t.Errorf("%s: %s %q, want INVALID_ARGUMENT naming %q", c.config, code, msg, c.want)
		}
	}
	// Memory-store managers' calls finish on the caller's thread; a durable store's wait
	// for its group commit (capi gives such hosts more processors).
	m, err := lib.Open([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	lib.Close(m)
	if lib.Waits() {
		t.Fatal("Waits after a memory-store manager")
	}
	// A SQLite data directory is locked: a second manager on it is refused.
	dir := t.TempDir()
	config := []byte(`{"store":"sqlite","data_dir":"` + dir + `","sqlite_sync":"normal"}`)
	h, err := lib.Open(config)
	if err != nil {
		t.Fatal(err)
	}
	if !lib.Waits() {
		t.Fatal("no Waits after a SQLite manager")
	}
	call(t, lib, h, "RegisterAgent", `{"agentId":"durable"}`)
	if _, err := lib.Open(config); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open of %s: %v", dir, err)
	}
	lib.Close(h)
	h, err = lib.Open(config) // the lock went with the close; the agent stayed
	if err != nil {
		t.Fatal(err)
	}
	if st := call(t, lib, h, "GetState", `{"agentId":"durable"}`); st["state"] != "LIFECYCLE_STATE_INITIALIZED" {
		t.Fatalf("after reopening: %v", st)
	}
	lib.Close(h)
	if n := lib.Handles(); n != 0 {
		t.Fatalf("%d handles left", n)
	}
}

func TestConvert(t *testing.T) {
	for _, name := range []string{"get_state_response", "lifecycle_event", "register_hook_request", "transition_request", "watch_events_request"} {
		msg := map[string]string{"get_state_response": "GetStateResponse", "lifecycle_event": "LifecycleEvent",
			"register_hook_request": "RegisterHookRequest", "transition_request": "TransitionRequest", "watch_events_request": "WatchEventsRequest"}[name]
		full := "hms.agent.lifecycle.v1." + msg
		pb := readVector(t, name+".binpb")
		cbor := readVector(t, name+".cbor")
		// The vectors decode and re-encode byte for byte through the library.
		if out, err := ffi.Convert(full, wire.Protobuf, pb, wire.CBOR); err != nil || string(out) != string(cbor) {
			t.Errorf("%s: protobuf → CBOR differs from the CBOR vector (%v)", name, err)
		}
		if out, err := ffi.Convert(full, wire.CBOR, cbor, wire.Protobuf); err != nil || string(out) != string(pb) {
			t.Errorf("%s: CBOR → protobuf differs from the protobuf vector (%v)", name, err)
		}
		if out, err := ffi.Convert(full, wire.JSON, readVector(t, name+".json"), wire.Protobuf); err != nil || string(out) != string(pb) {
			t.Errorf("%s: JSON → protobuf differs from the protobuf vector (%v)", name, err)
		}
	}
	if _, err := ffi.Convert("hms.Nope", wire.JSON, nil, wire.JSON); err == nil {
		t.Error("an unknown message converted")
	}
}

// A watch ends with its manager, saying where to resume.
func TestWatchEndsWithManager(t *testing.T) {
	lib := ffi.New()
	h, _ := lib.Open(nil)
	call(t, lib, h, "RegisterAgent", `{"agentId":"a"}`)
	call(t, lib, h, "TransitionState", `{"agentId":"a","targetState":"ACTIVE"}`)
	s, err := lib.Watch(h, service("agents")+"WatchEvents", wire.JSON, []byte(`{"fromSequence":"1"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer lib.CloseStream(s)
	got := 0
	for got < 2 {
		batch, err := lib.Next(s, 5*time.Second, 0)
		if err != nil {
			t.Fatal(err)
		}
		got += len(splitBatch(batch))
	}
	if err := lib.Close(h); err != nil {
		t.Fatal(err)
	}
	_, err = lib.Next(s, 5*time.Second, 0)
	if code, msg, resume := status(err); code != "UNAVAILABLE" || resume != 3 {
		t.Fatalf("after the manager closed: %s (%s) resume %d, want UNAVAILABLE resuming at 3", code, msg, resume)
	}
}
