package connlog_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/socks5d/socks5d/builtin/connlog"
	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

func TestConfig(t *testing.T) {
	tests := []struct {
		name     string
		cfg      map[string]any
		wantSize int
		wantErr  []error
		errHas   []string
	}{
		{name: "defaults", cfg: nil, wantSize: 4096},
		{name: "minimum", cfg: map[string]any{"size": 4096}, wantSize: 4096},
		{name: "larger", cfg: map[string]any{"size": 10000}, wantSize: 10000},
		{name: "maximum", cfg: map[string]any{"size": connlog.MaxSize}, wantSize: connlog.MaxSize},
		{name: "too small", cfg: map[string]any{"size": 4095},
			wantErr: []error{middleware.ErrBadValue, connlog.ErrSizeTooSmall}, errHas: []string{`"size"`, "4096"}},
		{name: "zero", cfg: map[string]any{"size": 0},
			wantErr: []error{middleware.ErrBadValue, connlog.ErrSizeTooSmall}, errHas: []string{`"size"`}},
		{name: "negative", cfg: map[string]any{"size": -1},
			wantErr: []error{middleware.ErrBadValue, connlog.ErrSizeTooSmall}, errHas: []string{`"size"`}},
		{name: "too large", cfg: map[string]any{"size": connlog.MaxSize + 1},
			wantErr: []error{middleware.ErrBadValue, connlog.ErrSizeTooLarge}, errHas: []string{`"size"`}},
		{name: "string", cfg: map[string]any{"size": "lots"},
			wantErr: []error{middleware.ErrBadValue}, errHas: []string{`"size"`}},
		{name: "fraction", cfg: map[string]any{"size": 5000.5},
			wantErr: []error{middleware.ErrBadValue}, errHas: []string{`"size"`}},
		{name: "unknown key", cfg: map[string]any{"records": 5000},
			wantErr: []error{middleware.ErrUnknownKey}, errHas: []string{`"records"`, "size"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw, err := mwtest.Build(t, connlog.Type, mwtest.Params("connlog", tt.cfg))
			if tt.wantErr != nil {
				mwtest.ExpectError(t, err, tt.wantErr, tt.errHas...)
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			// The ring holds size records: fill it past the brim.
			h := mw.Wrap(middleware.HandlerFunc(func(context.Context, *middleware.Session) error { return nil }))
			s, _ := mwtest.Session(t)
			if tt.wantSize <= 10000 {
				for range tt.wantSize + 5 {
					_ = h.ServeConn(context.Background(), s)
				}
				if got := len(mw.(middleware.LogSource).Records(0)); got != tt.wantSize {
					t.Errorf("holds %d records, want %d", got, tt.wantSize)
				}
			}
		})
	}
}

// serve runs sessions with IDs from..to (inclusive) through h.
func serve(t *testing.T, h middleware.Handler, from, to int) {
	t.Helper()
	s, _ := mwtest.Session(t)
	for id := from; id <= to; id++ {
		s.ID = uint64(id)
		if err := h.ServeConn(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
}

func noop() middleware.Handler {
	return middleware.HandlerFunc(func(context.Context, *middleware.Session) error { return nil })
}

func ids(recs []middleware.Record) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

func logRecords(t *testing.T, mw middleware.Middleware) int64 {
	t.Helper()
	return stat(t, mw, "log_records")
}

// stat returns one of the stage's statistics.
func stat(t *testing.T, mw middleware.Middleware, key string) int64 {
	t.Helper()
	st := mw.(middleware.StatsSource).Stats()
	for _, s := range st {
		if s.Key == key {
			return s.Value
		}
	}
	t.Fatalf("Stats = %v, no %s", st, key)
	return 0
}

func TestRecordsNewestFirst(t *testing.T) {
	mw := mwtest.New(t, connlog.Type, mwtest.Params("connlog", nil))
	ls := mw.(middleware.LogSource)
	if got := ls.Records(10); len(got) != 0 {
		t.Fatalf("empty log: %v", got)
	}
	if got := logRecords(t, mw); got != 0 {
		t.Fatalf("log_records = %d", got)
	}
	serve(t, mw.Wrap(noop()), 1, 5)

	tests := []struct {
		n    int
		want string
	}{
		{3, "[5 4 3]"},
		{1, "[5]"},
		{5, "[5 4 3 2 1]"},
		{6, "[5 4 3 2 1]"},
		{0, "[5 4 3 2 1]"},
		{-1, "[5 4 3 2 1]"},
	}
	for _, tt := range tests {
		if got := fmt.Sprint(ids(ls.Records(tt.n))); got != tt.want {
			t.Errorf("Records(%d) = %s, want %s", tt.n, got, tt.want)
		}
	}
	if got := logRecords(t, mw); got != 5 {
		t.Errorf("log_records = %d, want 5", got)
	}
}

func TestRecordFacts(t *testing.T) {
	mw := mwtest.New(t, connlog.Type, mwtest.Params("connlog", nil))
	boom := errors.New("refused")
	tm := &mwtest.Terminal{Err: boom, Facts: func(s *middleware.Session) {
		s.User, s.AuthState = "alice", middleware.AuthOK
		s.Command = middleware.CmdConnect
		s.Target = middleware.Target{Name: "example.org", Port: 443}
		s.Reply, s.ReplySent = middleware.ReplyConnectionRefused, true
	}}
	s, _ := mwtest.Session(t)
	s.ID = 42
	if err := mwtest.Serve(context.Background(), mw, tm, s); !errors.Is(err, boom) {
		t.Fatalf("Serve = %v, want %v", err, boom)
	}
	// A connection that failed authentication is logged too.
	failed, _ := mwtest.Session(t)
	failed.ID = 43
	tm = &mwtest.Terminal{Facts: func(s *middleware.Session) { s.AuthState = middleware.AuthFailed }}
	if err := mwtest.Serve(context.Background(), mw, tm, failed); err != nil {
		t.Fatal(err)
	}

	recs := mw.(middleware.LogSource).Records(0)
	if len(recs) != 2 {
		t.Fatalf("got %d records, want 2", len(recs))
	}
	if recs[0].ID != 43 || recs[0].AuthState != middleware.AuthFailed || recs[0].User != "" {
		t.Errorf("failed record = %+v", recs[0])
	}
	want := middleware.RecordOf(s)
	want.Reason = connlog.ReasonRefused
	if recs[1] != want {
		t.Errorf("record = %+v, want %+v", recs[1], want)
	}
	if recs[0].Reason != connlog.ReasonAuthFailed {
		t.Errorf("failed record's reason = %q", recs[0].Reason)
	}
}

func TestWrapAround(t *testing.T) {
	mw := mwtest.New(t, connlog.Type, mwtest.Params("connlog", nil))
	serve(t, mw.Wrap(noop()), 1, 3*4096+7)
	recs := mw.(middleware.LogSource).Records(0)
	if len(recs) != 4096 {
		t.Fatalf("holds %d, want 4096", len(recs))
	}
	for i, r := range recs {
		if want := uint64(3*4096 + 7 - i); r.ID != want {
			t.Fatalf("record %d has ID %d, want %d", i, r.ID, want)
		}
	}
}

func TestResizeKeepsNewest(t *testing.T) {
	p := mwtest.Params("connlog", map[string]any{"size": 5000})
	big := mwtest.New(t, connlog.Type, p)
	serve(t, big.Wrap(noop()), 1, 6000)

	// Shrink: the newest 4096 survive.
	p.Config = map[string]any{"size": 4096}
	small := mwtest.New(t, connlog.Type, p)
	recs := small.(middleware.LogSource).Records(0)
	if len(recs) != 4096 || recs[0].ID != 6000 || recs[4095].ID != 6000-4095 {
		t.Fatalf("after shrink: %d records, newest %d, oldest %d", len(recs), recs[0].ID, recs[len(recs)-1].ID)
	}
	serve(t, small.Wrap(noop()), 6001, 6001)
	if got := small.(middleware.LogSource).Records(1); got[0].ID != 6001 {
		t.Fatalf("newest after add = %d", got[0].ID)
	}

	// A connection still running on the old chain cannot grow it back.
	serve(t, big.Wrap(noop()), 6002, 6002)
	if got := logRecords(t, small); got != 4096 {
		t.Errorf("old stage resized the ring: log_records = %d", got)
	}

	// Grow: everything is kept and there is room for more.
	p.Config = map[string]any{"size": 8192}
	grown := mwtest.New(t, connlog.Type, p)
	serve(t, grown.Wrap(noop()), 6003, 6010)
	recs = grown.(middleware.LogSource).Records(0)
	if len(recs) != 4096+8 || recs[0].ID != 6010 || recs[8].ID != 6002 || recs[len(recs)-1].ID != 6002-4095 {
		t.Errorf("after grow: %d records, first %v", len(recs), ids(recs[:9]))
	}
}

func TestUninstalledBuildDoesNotResize(t *testing.T) {
	p := mwtest.Params("connlog", nil)
	live := mwtest.New(t, connlog.Type, p)
	serve(t, live.Wrap(noop()), 1, 4096)
	// A change that built a new stage but failed elsewhere never installs it.
	p.Config = map[string]any{"size": 10000}
	if _, err := mwtest.Build(t, connlog.Type, p); err != nil {
		t.Fatal(err)
	}
	serve(t, live.Wrap(noop()), 4097, 4100)
	if got := logRecords(t, live); got != 4096 {
		t.Errorf("log_records = %d, want 4096", got)
	}
}

func TestConcurrentAddAndRead(t *testing.T) {
	mw := mwtest.New(t, connlog.Type, mwtest.Params("connlog", nil))
	ls := mw.(middleware.LogSource)
	h := mw.Wrap(noop())
	var wg sync.WaitGroup
	for w := range 4 {
		s, _ := mwtest.Session(t)
		wg.Go(func() {
			for i := range 2000 {
				s.ID = uint64(w*10000 + i)
				_ = h.ServeConn(context.Background(), s)
			}
		})
	}
	wg.Go(func() {
		for range 200 {
			if recs := ls.Records(100); len(recs) > 100 {
				t.Errorf("Records(100) returned %d", len(recs))
				return
			}
		}
	})
	wg.Wait()
	if got := len(ls.Records(0)); got != 4096 {
		t.Errorf("holds %d, want 4096", got)
	}
}

func BenchmarkServe(b *testing.B) {
	mw := mwtest.New(b, connlog.Type, mwtest.Params("connlog", nil))
	h := mw.Wrap(noop())
	s, _ := mwtest.Session(b)
	s.User, s.Target = "alice", middleware.Target{Name: "example.org", Port: 443}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = h.ServeConn(ctx, s)
	}
}

func BenchmarkServeParallel(b *testing.B) {
	mw := mwtest.New(b, connlog.Type, mwtest.Params("connlog", nil))
	h := mw.Wrap(noop())
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		s := &middleware.Session{User: "alice", Target: middleware.Target{Name: "example.org", Port: 443}}
		for pb.Next() {
			_ = h.ServeConn(ctx, s)
		}
	})
}
