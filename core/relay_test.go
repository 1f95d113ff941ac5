package core

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// pipes counts this process's open pipe descriptors.
func pipes(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd here")
	}
	n := 0
	for _, e := range entries {
		if link, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(link, "pipe:") {
			n++
		}
	}
	return n
}

// An idle relayed connection holds no splice pipe: Go's splice path keeps
// one (two descriptors) per direction while it waits for data, which would
// cost four descriptors per idle connection.
func TestIdleConnectionsHoldNoPipe(t *testing.T) {
	_, addr := startProxy(t, testConfig(defaultTestChain()...))
	echo := echoServer(t, "tcp", "127.0.0.1:0")
	const conns = 40
	before := pipes(t)
	for i := 0; i < conns; i++ {
		c, err := socksDialer(t, addr, "bob", "builder").Dial("tcp", echo)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write([]byte("data"))
		readN(t, c, 4) // both directions have spliced
	}
	runtime.GC()
	runtime.GC()
	held := pipes(t) - before
	t.Logf("%d idle relayed connections: %d pipe descriptors open (pool included)", conns, held)
	if held >= conns {
		t.Fatalf("%d pipe descriptors for %d idle connections: idle relays hold pipes", held, conns)
	}
}
