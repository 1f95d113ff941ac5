package ratelimit_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/socks5d/socks5d/builtin/ratelimit"
	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     map[string]any
		want    [3]string // per_connection, per_user, burst
		wantErr []error
		errHas  []string
	}{
		{name: "defaults", cfg: nil, want: [3]string{"0", "0", "65536"}},
		{name: "per_connection", cfg: map[string]any{"per_connection": "1MiB"}, want: [3]string{"1048576", "0", "65536"}},
		{name: "per_user", cfg: map[string]any{"per_user": 500000}, want: [3]string{"0", "500000", "65536"}},
		{name: "burst", cfg: map[string]any{"burst": "16KiB"}, want: [3]string{"0", "0", "16384"}},
		{name: "all", cfg: map[string]any{"per_connection": "64KiB", "per_user": "1MB", "burst": 4096},
			want: [3]string{"65536", "1000000", "4096"}},
		{name: "zero is unlimited", cfg: map[string]any{"per_connection": 0, "per_user": "0"}, want: [3]string{"0", "0", "65536"}},
		{name: "burst too small", cfg: map[string]any{"burst": 4095},
			wantErr: []error{middleware.ErrBadValue, ratelimit.ErrBurstTooSmall}, errHas: []string{`"burst"`, "4096"}},
		{name: "burst zero", cfg: map[string]any{"burst": 0},
			wantErr: []error{middleware.ErrBadValue, ratelimit.ErrBurstTooSmall}, errHas: []string{`"burst"`}},
		{name: "negative rate", cfg: map[string]any{"per_connection": -5},
			wantErr: []error{middleware.ErrBadValue}, errHas: []string{`"per_connection"`}},
		{name: "bad unit", cfg: map[string]any{"per_user": "10 parsecs"},
			wantErr: []error{middleware.ErrBadValue}, errHas: []string{`"per_user"`}},
		{name: "wrong type", cfg: map[string]any{"burst": []any{1}},
			wantErr: []error{middleware.ErrBadValue}, errHas: []string{`"burst"`}},
		{name: "unknown key", cfg: map[string]any{"per_conn": 1},
			wantErr: []error{middleware.ErrUnknownKey}, errHas: []string{`"per_conn"`, "burst, per_connection, per_user"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw, err := mwtest.Build(t, ratelimit.Type, mwtest.Params("ratelimit", tt.cfg))
			if tt.wantErr != nil {
				mwtest.ExpectError(t, err, tt.wantErr, tt.errHas...)
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			tun, ok := mw.(middleware.Tunable)
			if !ok {
				t.Fatal("stage does not implement Tunable")
			}
			st := tun.Settings()
			if len(st) != 3 {
				t.Fatalf("Settings = %+v", st)
			}
			for i, key := range []string{"per_connection", "per_user", "burst"} {
				if st[i].Key != key || st[i].Value != tt.want[i] || st[i].Help == "" {
					t.Errorf("setting %d = %+v, want %s: %s", i, st[i], key, tt.want[i])
				}
			}
		})
	}
}

func TestNoLimitLeavesConnAlone(t *testing.T) {
	mw := mwtest.New(t, ratelimit.Type, mwtest.Params("ratelimit", nil))
	s, _ := mwtest.Session(t)
	orig := s.Conn
	var seen net.Conn
	tm := &mwtest.Terminal{Facts: func(s *middleware.Session) { seen = s.Conn }}
	if err := mwtest.Serve(context.Background(), mw, tm, s); err != nil {
		t.Fatal(err)
	}
	if seen != orig {
		t.Errorf("conn wrapped (%T) with no limit configured", seen)
	}
}

// recorder notes the largest read buffer and write it is asked for.
type recorder struct {
	net.Conn
	mu              sync.Mutex
	maxRead, maxWrt int
}

func (r *recorder) Read(p []byte) (int, error) {
	r.mu.Lock()
	r.maxRead = max(r.maxRead, len(p))
	r.mu.Unlock()
	return r.Conn.Read(p)
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.maxWrt = max(r.maxWrt, len(p))
	r.mu.Unlock()
	return r.Conn.Write(p)
}

const (
	kib      = 1 << 10
	total    = 64 * kib
	minTaken = 700 * time.Millisecond // 48 KiB past the 16 KiB burst at 64 KiB/s is 750ms
)

var limited = map[string]any{"per_connection": "64KiB", "burst": "16KiB"}

func TestReadFromClientLimited(t *testing.T) {
	mw := mwtest.New(t, ratelimit.Type, mwtest.Params("ratelimit", limited))
	s, client := mwtest.Session(t)
	rec := &recorder{Conn: s.Conn}
	s.Conn = rec
	go func() { _, _ = client.Write(make([]byte, total)) }()

	var took time.Duration
	var n int
	var rerr error
	tm := &mwtest.Terminal{Facts: func(s *middleware.Session) {
		start := time.Now()
		buf := make([]byte, total) // one big buffer: the wrapper must cap it
		n, rerr = io.ReadFull(s.Conn, buf)
		took = time.Since(start)
	}}
	if err := mwtest.Serve(context.Background(), mw, tm, s); err != nil {
		t.Fatal(err)
	}
	if rerr != nil || n != total {
		t.Fatalf("read %d bytes: %v", n, rerr)
	}
	if took < minTaken {
		t.Errorf("64 KiB at 64 KiB/s with a 16 KiB burst took %v, want at least %v", took, minTaken)
	}
	if rec.maxRead > 16*kib {
		t.Errorf("read of %d bytes asked of the client conn, want at most the burst", rec.maxRead)
	}
}

func TestWriteToClientLimited(t *testing.T) {
	mw := mwtest.New(t, ratelimit.Type, mwtest.Params("ratelimit", limited))
	s, client := mwtest.Session(t)
	rec := &recorder{Conn: s.Conn}
	s.Conn = rec
	got := make(chan int, 1)
	go func() {
		n, _ := io.ReadFull(client, make([]byte, total))
		got <- n
	}()

	var took time.Duration
	var n int
	var werr error
	tm := &mwtest.Terminal{Facts: func(s *middleware.Session) {
		start := time.Now()
		n, werr = s.Conn.Write(make([]byte, total))
		took = time.Since(start)
	}}
	if err := mwtest.Serve(context.Background(), mw, tm, s); err != nil {
		t.Fatal(err)
	}
	if werr != nil || n != total || <-got != total {
		t.Fatalf("wrote %d bytes: %v", n, werr)
	}
	if took < minTaken {
		t.Errorf("64 KiB at 64 KiB/s with a 16 KiB burst took %v, want at least %v", took, minTaken)
	}
	if rec.maxWrt > 16*kib {
		t.Errorf("write of %d bytes reached the client conn, want at most the burst", rec.maxWrt)
	}
}

// TestPerUserShared runs two connections of one user at once: together they
// get the user's rate. The first read happens before the user is known (as
// the handshake does) and is not charged to the user.
func TestPerUserShared(t *testing.T) {
	p := mwtest.Params("ratelimit", map[string]any{"per_user": "64KiB", "burst": "16KiB"})
	h := mwtest.New(t, ratelimit.Type, p).Wrap(&mwtest.Terminal{Facts: func(s *middleware.Session) {
		if _, err := io.ReadFull(s.Conn, make([]byte, 3)); err != nil { // the "greeting"
			t.Error(err)
			return
		}
		s.User = "alice"
		if _, err := io.ReadFull(s.Conn, make([]byte, total/2)); err != nil {
			t.Error(err)
		}
	}})
	start := time.Now()
	var wg sync.WaitGroup
	for range 2 {
		s, client := mwtest.Session(t)
		go func() { _, _ = client.Write(make([]byte, 3+total/2)) }()
		wg.Go(func() {
			if err := h.ServeConn(context.Background(), s); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if took := time.Since(start); took < minTaken {
		t.Errorf("2 × 32 KiB for one user at 64 KiB/s with a 16 KiB burst took %v, want at least %v", took, minTaken)
	}
}

// TestAnonymousNotPerUser: without a user only the per-connection limit
// applies; at 4 KiB/s per user 64 KiB would take 15 s.
func TestAnonymousNotPerUser(t *testing.T) {
	mw := mwtest.New(t, ratelimit.Type, mwtest.Params("ratelimit", map[string]any{"per_user": 4096, "burst": 4096}))
	s, client := mwtest.Session(t)
	go func() { _, _ = client.Write(make([]byte, total)) }()
	var took time.Duration
	tm := &mwtest.Terminal{Facts: func(s *middleware.Session) {
		start := time.Now()
		if _, err := io.ReadFull(s.Conn, make([]byte, total)); err != nil {
			t.Error(err)
		}
		took = time.Since(start)
	}}
	if err := mwtest.Serve(context.Background(), mw, tm, s); err != nil {
		t.Fatal(err)
	}
	if took > 7*time.Second {
		t.Errorf("anonymous transfer took %v: the per-user limit was applied", took)
	}
}

func TestCancelledContextEndsWait(t *testing.T) {
	mw := mwtest.New(t, ratelimit.Type, mwtest.Params("ratelimit", map[string]any{"per_connection": 4096, "burst": 4096}))
	s, client := mwtest.Session(t)
	go func() { _, _ = io.Copy(io.Discard, client) }()
	ctx, cancel := context.WithCancel(context.Background())
	var werr error
	var n int
	tm := &mwtest.Terminal{Facts: func(s *middleware.Session) {
		time.AfterFunc(100*time.Millisecond, cancel)
		n, werr = s.Conn.Write(make([]byte, total)) // would take 15 s
	}}
	start := time.Now()
	if err := mwtest.Serve(ctx, mw, tm, s); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(werr, context.Canceled) || !errors.Is(werr, ratelimit.ErrWait) {
		t.Errorf("Write = %v, want ErrWait wrapping context.Canceled", werr)
	}
	if n >= total {
		t.Errorf("wrote %d bytes", n)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("cancel took %v to end the wait", took)
	}
}

func TestCloseEndsWait(t *testing.T) {
	mw := mwtest.New(t, ratelimit.Type, mwtest.Params("ratelimit", map[string]any{"per_connection": 4096, "burst": 4096}))
	s, client := mwtest.Session(t)
	go func() { _, _ = io.Copy(io.Discard, client) }()
	var werr error
	tm := &mwtest.Terminal{Facts: func(s *middleware.Session) {
		time.AfterFunc(100*time.Millisecond, func() { s.Conn.Close() })
		_, werr = s.Conn.Write(make([]byte, total))
	}}
	if err := mwtest.Serve(context.Background(), mw, tm, s); err != nil {
		t.Fatal(err)
	}
	if werr == nil {
		t.Error("Write after Close succeeded")
	}
}

type closeWriter interface{ CloseWrite() error }

func TestCloseWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	mw := mwtest.New(t, ratelimit.Type, mwtest.Params("ratelimit", limited))
	s, _ := mwtest.Session(t)
	s.Conn = server
	tm := &mwtest.Terminal{Facts: func(s *middleware.Session) {
		if s.Conn == server {
			t.Fatal("conn not wrapped")
		}
		if _, err := s.Conn.Write([]byte("bye")); err != nil {
			t.Error(err)
		}
		cw, ok := s.Conn.(closeWriter)
		if !ok {
			t.Fatal("wrapped conn has no CloseWrite")
		}
		if err := cw.CloseWrite(); err != nil {
			t.Errorf("CloseWrite: %v", err)
		}
		// The client sees EOF after the data, and can still send.
		_ = client.SetReadDeadline(time.Now().Add(10 * time.Second))
		if b, err := io.ReadAll(client); err != nil || string(b) != "bye" {
			t.Errorf("client read %q, %v; want bye then EOF", b, err)
		}
		if _, err := client.Write([]byte("ok")); err != nil {
			t.Error(err)
		}
		buf := make([]byte, 2)
		if _, err := io.ReadFull(s.Conn, buf); err != nil || string(buf) != "ok" {
			t.Errorf("read after half-close: %q, %v", buf, err)
		}
	}}
	if err := mwtest.Serve(context.Background(), mw, tm, s); err != nil {
		t.Fatal(err)
	}

	// Over a conn that cannot half-close, CloseWrite says so.
	s, _ = mwtest.Session(t)
	tm = &mwtest.Terminal{Facts: func(s *middleware.Session) {
		if err := s.Conn.(closeWriter).CloseWrite(); !errors.Is(err, errors.ErrUnsupported) {
			t.Errorf("CloseWrite over net.Pipe = %v, want ErrUnsupported", err)
		}
	}}
	if err := mwtest.Serve(context.Background(), mw, tm, s); err != nil {
		t.Fatal(err)
	}
}

// The Pacer the stage installs for UDP datagrams draws on the same
// limiters, per direction, and never waits.
func TestPacerForDatagrams(t *testing.T) {
	mw := mwtest.New(t, ratelimit.Type, mwtest.Params("ratelimit", map[string]any{"per_connection": "4KiB", "burst": "4KiB"}))
	s, _ := mwtest.Session(t)
	var pacer middleware.Pacer
	tm := &mwtest.Terminal{Facts: func(s *middleware.Session) { pacer = s.Pacer }}
	if err := mwtest.Serve(context.Background(), mw, tm, s); err != nil {
		t.Fatal(err)
	}
	if pacer == nil {
		t.Fatal("no Pacer installed")
	}
	if !pacer.AllowBytes(true, 4*kib) || pacer.AllowBytes(true, 1*kib) {
		t.Error("up: the burst should pass and the next kilobyte wait its turn")
	}
	if !pacer.AllowBytes(false, 4*kib) {
		t.Error("down has its own budget")
	}
	// Without a limit there is no Pacer: datagrams are not charged.
	s2, _ := mwtest.Session(t)
	tm2 := &mwtest.Terminal{Facts: func(s *middleware.Session) { pacer = s.Pacer }}
	if err := mwtest.Serve(context.Background(), mwtest.New(t, ratelimit.Type, mwtest.Params("ratelimit", nil)), tm2, s2); err != nil {
		t.Fatal(err)
	}
	if pacer != nil {
		t.Error("a Pacer without any limit")
	}
}
