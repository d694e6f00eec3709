package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/hms-lifecycle/lifecycle"
	v1 "github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1"
	"github.com/hms-lifecycle/lifecycle/gen/hms/agent/lifecycle/v1/lifecyclev1connect"
	"github.com/hms-lifecycle/lifecycle/server"
)

// A watcher that reads nothing loses its stream after the write timeout: the server's
// handler returns (hms_watchers drops to 0) instead of waiting for it to read again.
func TestWatchWriteDeadline(t *testing.T) {
	m, url := serveB(t, server.WithWatchWriteTimeout(200*time.Millisecond))
	register := func(id string) {
		if _, _, err := m.RegisterAgent(ctx, lifecycle.RegisterRequest{AgentID: id}); err != nil {
			t.Fatal(err)
		}
	}
	register("w")
	// A Connect watch over HTTP/1.1 whose client never reads the body.
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := "\x00\x00\x00\x00\x02{}"
	fmt.Fprintf(c, "POST /hms.agent.lifecycle.v1.LifecycleManager/WatchEvents HTTP/1.1\r\nHost: x\r\nContent-Type: application/connect+json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("watch: %v %v", resp, err)
	}
	// And a grpc-go one.
	conn, err := grpc.NewClient(strings.TrimPrefix(url, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, lifecyclev1connect.LifecycleManagerWatchEventsProcedure)
	if err != nil {
		t.Fatal(err)
	}
	stream.SendMsg(&v1.WatchEventsRequest{})
	stream.CloseSend()
	stream.Header()
	waitWatchers(t, url, "2")

	// Enough events to fill every buffer between the server and the clients.
	big := map[string]string{}
	for i := range 3 {
		big[fmt.Sprint("blob", i)] = strings.Repeat("x", 4000)
	}
	targets := []lifecycle.State{lifecycle.StateActive, lifecycle.StatePaused}
	for i := 0; i < 3000; i++ {
		res, err := m.Transition(ctx, lifecycle.TransitionRequest{AgentID: "w", Target: targets[i%2], Metadata: big})
		if err != nil || !res.Success {
			t.Fatalf("transition %d: %+v %v", i, res, err)
		}
	}
	waitWatchers(t, url, "0")
}

func waitWatchers(t *testing.T, url, want string) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "hms_watchers ") {
				last = strings.TrimPrefix(line, "hms_watchers ")
			}
		}
		if last == want {
			return
		}
	}
	t.Fatalf("hms_watchers is %s, want %s", last, want)
}
