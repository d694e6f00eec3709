// Command testplugin is the plugin the plugin manager's tests run. It serves GET /healthz
// on $HMS_PLUGIN_PORT and is told how to misbehave:
//
//	TESTPLUGIN_MODE=exit           exit at once with an error message
//	TESTPLUGIN_MODE=never-healthy  answer /healthz with 503
//	TESTPLUGIN_IGNORE_TERM=1       ignore SIGTERM
//	TESTPLUGIN_READY_FILE=path     write when main began and when it started listening (Unix ns)
//	TESTPLUGIN_GRPC=1              serve the gRPC health service instead (service "testplugin")
//	TESTPLUGIN_EXIT_AFTER_HEALTHY_MS=n  exit with status 4 n ms after answering /healthz the first time
//	GET /fail                      fail the health check from now on
//	GET /crash                     exit with status 3
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	began := time.Now()
	fmt.Printf("testplugin %s %s generation %s starting\n", os.Getenv("HMS_PLUGIN_ID"), os.Getenv("HMS_PLUGIN_VERSION"), os.Getenv("HMS_PLUGIN_GENERATION"))
	if os.Getenv("TESTPLUGIN_MODE") == "exit" {
		fmt.Fprintln(os.Stderr, "fatal: configuration missing")
		os.Exit(1)
	}
	if os.Getenv("TESTPLUGIN_IGNORE_TERM") == "1" {
		signal.Ignore(syscall.SIGTERM)
	} else {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		go func() { <-c; fmt.Println("SIGTERM: stopping"); os.Exit(0) }()
	}
	var failing atomic.Bool
	var exitOnce sync.Once
	failing.Store(os.Getenv("TESTPLUGIN_MODE") == "never-healthy")
	http.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if failing.Load() {
			http.Error(w, "unhealthy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
		if ms, err := strconv.Atoi(os.Getenv("TESTPLUGIN_EXIT_AFTER_HEALTHY_MS")); err == nil {
			exitOnce.Do(func() {
				time.AfterFunc(time.Duration(ms)*time.Millisecond, func() { fmt.Println("exiting as told"); os.Exit(4) })
			})
		}
	})
	http.HandleFunc("/fail", func(w http.ResponseWriter, _ *http.Request) { failing.Store(true); fmt.Println("told to fail") })
	http.HandleFunc("/crash", func(w http.ResponseWriter, _ *http.Request) { fmt.Println("told to crash"); os.Exit(3) })
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("HMS_PLUGIN_PORT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(2)
	}
	if f := os.Getenv("TESTPLUGIN_READY_FILE"); f != "" {
		os.WriteFile(f, []byte(strconv.FormatInt(began.UnixNano(), 10)+" "+strconv.FormatInt(time.Now().UnixNano(), 10)), 0o644)
	}
	fmt.Println("listening")
	if os.Getenv("TESTPLUGIN_GRPC") == "1" {
		srv := grpc.NewServer()
		hs := health.NewServer()
		hs.SetServingStatus("testplugin", healthpb.HealthCheckResponse_SERVING)
		healthpb.RegisterHealthServer(srv, hs)
		srv.Serve(ln)
		return
	}
	http.Serve(ln, nil)
}
