// The other end of the ttrpc interop test: Go's real ttrpc (Debian's
// github.com/containerd/ttrpc) with containerd's generated task service and
// messages, as containerd itself uses them.
//
//	ttrpc-interop-go client ADDRESS   calls our C++ server (ttrpc_interop_peer serve)
//	ttrpc-interop-go server ADDRESS   serves our C++ client (ttrpc_interop_peer call)
//
// ADDRESS is containerd's form: unix:///path, or an abstract socket name.
// Every check prints "ok   NAME" or "FAIL NAME: why"; the exit status is 1
// when any failed.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	eventstypes "github.com/containerd/containerd/api/events"
	eventsapi "github.com/containerd/containerd/api/services/ttrpc/events/v1"
	"github.com/containerd/containerd/api/types"
	tasktypes "github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/runtime/v2/task"
	"github.com/containerd/ttrpc"
	"github.com/gogo/protobuf/proto"
	ptypes "github.com/gogo/protobuf/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	namespace = "skiff-interop"
	waiters   = 16
)

var failed bool

func check(name string, err error) {
	if err != nil {
		fmt.Printf("FAIL %s: %v\n", name, err)
		failed = true
		return
	}
	fmt.Printf("ok   %s\n", name)
}

// As containerd's runtime/v2/shim/util_unix.go: unix:// is a file, anything
// else an abstract name.
func socketPath(address string) string {
	if p := strings.TrimPrefix(address, "unix://"); p != address {
		return p
	}
	return "\x00" + address
}

func wantCode(err error, want codes.Code, msg string) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("want a %v status, got %v", want, err)
	}
	if st.Code() != want || (msg != "" && st.Message() != msg) {
		return fmt.Errorf("want %v %q, got %v %q", want, msg, st.Code(), st.Message())
	}
	return nil
}

func runClient(address string) {
	conn, err := net.Dial("unix", socketPath(address))
	if err != nil {
		check("dial", err)
		return
	}
	client := ttrpc.NewClient(conn)
	defer client.Close()
	tc := task.NewTaskClient(client)
	ctx := namespaces.WithNamespace(context.Background(), namespace)

	st, err := tc.State(ctx, &task.StateRequest{ID: "c1", ExecID: "e1"})
	if err == nil && (st.ID != "c1" || st.ExecID != "e1" || st.Bundle != namespace || st.Pid != 42 ||
		st.Status != tasktypes.StatusRunning) {
		err = fmt.Errorf("unexpected answer %+v", st)
	}
	check("State: typed messages both ways, the namespace as ttrpc metadata", err)

	cr, err := tc.Create(ctx, &task.CreateTaskRequest{
		ID: "c1", Bundle: "/b", Terminal: true, Stdout: "/fifo/out",
		Rootfs: []*types.Mount{
			{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=/l", "upperdir=/u"}},
			{Type: "bind", Source: "/x", Target: "/y"},
		},
		Options: &ptypes.Any{TypeUrl: "types.containerd.io/skiff/test", Value: []byte("opts")},
	})
	if err == nil && cr.Pid != 7 {
		err = fmt.Errorf("pid %d, want 7", cr.Pid)
	}
	check("Create: nested mounts and an Any reach the C++ handler intact", err)

	_, err = tc.Kill(ctx, &task.KillRequest{ID: "missing", Signal: 9})
	if err == nil {
		check("Kill: NotFound becomes errdefs.ErrNotFound", errors.New("no error"))
	} else if !errdefs.IsNotFound(errdefs.FromGRPC(err)) {
		check("Kill: NotFound becomes errdefs.ErrNotFound", fmt.Errorf("got %v", err))
	} else {
		check("Kill: NotFound becomes errdefs.ErrNotFound", wantCode(err, codes.NotFound, "container missing"))
	}

	err = client.Call(ctx, "containerd.task.v2.Task", "NoSuchMethod", &task.StateRequest{}, &task.StateResponse{})
	check("an unknown method is Unimplemented", wantCode(err, codes.Unimplemented, "method NoSuchMethod"))
	err = client.Call(ctx, "skiff.NoSuchService", "State", &task.StateRequest{}, &task.StateResponse{})
	check("an unknown service is Unimplemented", wantCode(err, codes.Unimplemented, "service skiff.NoSuchService"))

	// All in flight at once; the server answers only when it holds all of
	// them, last first.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var order []int
	errs := make([]error, waiters)
	for i := 0; i < waiters; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r, err := tc.Wait(ctx, &task.WaitRequest{ID: "w" + strconv.Itoa(i)})
			if err == nil && r.ExitStatus != uint32(i) {
				err = fmt.Errorf("w%d got exit status %d", i, r.ExitStatus)
			}
			errs[i] = err
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	err = nil
	for _, e := range errs {
		if e != nil && err == nil {
			err = e
		}
	}
	if err == nil && order[0] == 0 {
		err = fmt.Errorf("answered in the order asked: %v", order)
	}
	check(fmt.Sprintf("%d concurrent Waits answered out of order (%v)", waiters, order), err)

	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = tc.Wait(tctx, &task.WaitRequest{ID: "forever"})
	cancel()
	if errors.Is(err, context.DeadlineExceeded) {
		err = nil
	} else {
		err = wantCode(err, codes.DeadlineExceeded, "")
	}
	check("a deadline ends a call that never answers", err)

	big := &ptypes.Any{TypeUrl: "skiff/size", Value: make([]byte, 1<<20)}
	_, err = tc.Update(ctx, &task.UpdateTaskRequest{ID: "c1", Resources: big})
	check("a 1 MiB request", err)
	huge := &ptypes.Any{TypeUrl: "skiff/size", Value: make([]byte, 5<<20)}
	_, err = tc.Update(ctx, &task.UpdateTaskRequest{ID: "c1", Resources: huge})
	check("a 5 MiB request is ResourceExhausted, the connection kept", wantCode(err, codes.ResourceExhausted, ""))

	_, err = tc.Shutdown(ctx, &task.ShutdownRequest{ID: "c1"})
	check("Shutdown", err)
}

func runServer(address string) {
	path := socketPath(address)
	if !strings.HasPrefix(path, "\x00") {
		os.Remove(path)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		check("listen", err)
		return
	}
	s, err := ttrpc.NewServer()
	if err != nil {
		check("server", err)
		return
	}
	done := make(chan struct{})
	var once sync.Once
	s.Register("containerd.task.v2.Task", map[string]ttrpc.Method{
		"State": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			var req task.StateRequest
			if err := unmarshal(&req); err != nil {
				return nil, err
			}
			ns, _ := namespaces.Namespace(ctx)
			return &task.StateResponse{ID: req.ID, ExecID: req.ExecID, Bundle: "ns:" + ns, Pid: 4242,
				Status: tasktypes.StatusStopped, ExitStatus: 3}, nil
		},
		"Kill": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			var req task.KillRequest
			if err := unmarshal(&req); err != nil {
				return nil, err
			}
			if req.ID == "missing" {
				return nil, errdefs.ToGRPCf(errdefs.ErrNotFound, "container %s", req.ID)
			}
			return &ptypes.Empty{}, nil
		},
		"Wait": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			var req task.WaitRequest
			if err := unmarshal(&req); err != nil {
				return nil, err
			}
			if req.ID == "forever" {
				<-ctx.Done()
				return nil, ctx.Err()
			}
			i, err := strconv.Atoi(strings.TrimPrefix(req.ID, "w"))
			if err != nil {
				return nil, status.Errorf(codes.InvalidArgument, "wait id %q", req.ID)
			}
			// The last asked answers first.
			time.Sleep(time.Duration(waiters-i) * 20 * time.Millisecond)
			return &task.WaitResponse{ExitStatus: uint32(i)}, nil
		},
		"Shutdown": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			once.Do(func() { close(done) })
			return &ptypes.Empty{}, nil
		},
	})
	s.Register("containerd.services.events.ttrpc.v1.Events", map[string]ttrpc.Method{
		"Forward": func(ctx context.Context, unmarshal func(interface{}) error) (interface{}, error) {
			var req eventsapi.ForwardRequest
			if err := unmarshal(&req); err != nil {
				return nil, err
			}
			env := req.Envelope
			if env == nil || env.Event == nil {
				return nil, status.Errorf(codes.InvalidArgument, "no envelope or event: %+v", req)
			}
			var ev eventstypes.TaskCreate
			if err := proto.Unmarshal(env.Event.Value, &ev); err != nil {
				return nil, status.Errorf(codes.InvalidArgument, "event: %v", err)
			}
			if env.Topic != "/tasks/create" || env.Namespace != namespace || env.Event.TypeUrl != "containerd.events.TaskCreate" ||
				env.Timestamp.Unix() != 1700000000 || ev.ContainerID != "c1" || ev.Pid != 7 || len(ev.Rootfs) != 1 ||
				ev.Rootfs[0].Type != "overlay" {
				return nil, status.Errorf(codes.InvalidArgument, "unexpected envelope %+v with event %+v", env, ev)
			}
			return &ptypes.Empty{}, nil
		},
	})
	go s.Serve(context.Background(), l)
	fmt.Println("listening")
	select {
	case <-done:
	case <-time.After(120 * time.Second):
		check("the C++ client called Shutdown within 120 s", errors.New("timed out"))
	}
	// As a shim does: answer Shutdown, then stop once every connection is idle.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	check("server shutdown", s.Shutdown(ctx))
}

func main() {
	if len(os.Args) != 3 || (os.Args[1] != "client" && os.Args[1] != "server") {
		fmt.Fprintln(os.Stderr, "usage: ttrpc-interop-go client|server ADDRESS")
		os.Exit(2)
	}
	if os.Args[1] == "client" {
		runClient(os.Args[2])
	} else {
		runServer(os.Args[2])
	}
	if failed {
		os.Exit(1)
	}
}
