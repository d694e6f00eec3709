module github.com/hms-lifecycle/lifecycle

go 1.26

require (
	github.com/google/btree v1.1.3
	github.com/google/go-cmp v0.7.0
	github.com/google/uuid v1.6.0
	google.golang.org/protobuf v1.36.13-0.20261016172727-e9ee2a76ab8e
)

require (
	github.com/looplab/fsm v1.0.3 // indirect
	github.com/qmuntal/stateless v1.7.2 // indirect
	go.uber.org/goleak v1.3.0 // indirect
	pgregory.net/rapid v1.2.0 // indirect
)
