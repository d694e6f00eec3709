package server

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// WatchWriteTimeout bounds the write of one message of a watch stream. A client that
// reads nothing for that long — its flow-control windows full — loses the stream, so that
// a watcher cut off for falling behind does not keep its connection and goroutine until
// it reads again.
const WatchWriteTimeout = 30 * time.Second

// WithWatchWriteTimeout sets the bound of WatchWriteTimeout; 0 or less means none.
func WithWatchWriteTimeout(d time.Duration) Option {
	return func(o *options) { o.writeTimeout = d }
}

type controllerKey struct{}

// withStreamController hands watch streams their response's controller, through which
// they set write deadlines (connect-go does not expose the http.ResponseWriter).
func withStreamController(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "Events") { // WatchEvents, WatchPluginEvents
			r = r.WithContext(context.WithValue(r.Context(), controllerKey{}, http.NewResponseController(w)))
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineSend bounds each send of a Connect stream by a write deadline, cleared after it
// (HTTP/2 resets a stream whose deadline passes even while nothing is written).
func deadlineSend[M any](ctx context.Context, d time.Duration, send func(M) error) func(M) error {
	rc, _ := ctx.Value(controllerKey{}).(*http.ResponseController)
	if rc == nil || d <= 0 {
		return send
	}
	return func(m M) error {
		if rc.SetWriteDeadline(time.Now().Add(d)) != nil {
			return send(m) // the writer cannot: no deadline
		}
		defer rc.SetWriteDeadline(time.Time{})
		return send(m)
	}
}

// timedSend bounds each send of a grpc-go stream, which has no write deadline: the send
// runs aside and, past d, the handler returns, which ends the stream and the send.
func timedSend[M any](d time.Duration, send func(M) error) func(M) error {
	if d <= 0 {
		return send
	}
	return func(m M) error {
		done := make(chan error, 1)
		go func() { done <- send(m) }()
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case err := <-done:
			return err
		case <-t.C:
			return status.Error(codes.ResourceExhausted, fmt.Sprintf("the watch stream took nothing for %v", d))
		}
	}
}
