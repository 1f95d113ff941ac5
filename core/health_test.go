package core

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// Ready follows the server's life: not before the state is loaded and the
// SOCKS listener accepts, ready while serving, not once draining.
func TestReadyFollowsLifecycle(t *testing.T) {
	rt, err := NewRuntime(testConfig(defaultTestChain()...), nil)
	if err != nil {
		t.Fatal(err)
	}
	notReady := func(why string) {
		t.Helper()
		if err := rt.Ready(); !errors.Is(err, ErrNotReady) {
			t.Fatalf("%s: Ready() = %v, want ErrNotReady", why, err)
		}
	}
	notReady("new runtime")
	if _, err := rt.UseStore(NewFileStore(filepath.Join(t.TempDir(), "state.json"))); err != nil {
		t.Fatal(err)
	}
	notReady("state loaded, no listener")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = rt.ServeSOCKS(ctx, ln) }()
	waitFor(t, "readiness", func() bool { return rt.Ready() == nil })

	cancel()
	<-done
	notReady("accept loop stopped")
	if err := rt.Ready(); err == nil || err.Error() != "core: not ready: draining, not accepting new connections" {
		t.Fatalf("while draining: %v", err)
	}
	sctx, stop := context.WithTimeout(context.Background(), time.Second)
	defer stop()
	rt.Shutdown(sctx)
	notReady("after shutdown")
}
