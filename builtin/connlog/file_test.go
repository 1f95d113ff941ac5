package connlog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/socks5d/socks5d/builtin/connlog"
	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

// fileParams returns parameters with dir as the data directory.
func fileParams(dir string, cfg map[string]any) middleware.Params {
	p := mwtest.Params("connlog", cfg)
	p.DataDir = dir
	return p
}

// newStage builds a stage and closes its shared state when the test ends.
func newStage(t *testing.T, p middleware.Params) middleware.Middleware {
	t.Helper()
	mw := mwtest.New(t, connlog.Type, p)
	t.Cleanup(func() { _ = closer(t, p).Close() })
	return mw
}

// closer returns the stage's shared state, as the server's shutdown finds it.
func closer(t *testing.T, p middleware.Params) io.Closer {
	t.Helper()
	return middleware.Get(p.Shared, p.Name, func() io.Closer {
		t.Fatalf("no shared state under %q", p.Name)
		return nil
	})
}

func closePool(t *testing.T, p middleware.Params) {
	t.Helper()
	if err := closer(t, p).Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// facts gives every session different facts, derived from its ID.
func facts(s *middleware.Session) {
	id := s.ID
	s.Client = netip.AddrPortFrom(netip.MustParseAddr("192.0.2.7"), uint16(40000+id%1000))
	s.User, s.AuthState, s.Command = fmt.Sprintf("user%d", id%3), middleware.AuthOK, middleware.CmdConnect
	s.Target = middleware.Target{Name: "example.org", Port: 443}
	s.Reply, s.ReplySent = middleware.ReplySucceeded, true
	s.Up.Store(int64(id * 10))
	s.Down.Store(int64(id * 100))
}

// serveFacts runs sessions with IDs from..to through mw with facts.
func serveFacts(t *testing.T, mw middleware.Middleware, from, to int) {
	t.Helper()
	h := mw.Wrap(&mwtest.Terminal{Facts: facts})
	for id := from; id <= to; id++ {
		s, _ := mwtest.Session(t)
		s.ID = uint64(id)
		if err := h.ServeConn(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
}

// readLines returns the lines of a file.
func readLines(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// lineIDs returns the id of every line of a file, checking each parses.
func lineIDs(t *testing.T, name string) []uint64 {
	t.Helper()
	var ids []uint64
	for i, l := range readLines(t, name) {
		var v struct {
			ID   *uint64 `json:"id"`
			Time string  `json:"time"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil || v.ID == nil {
			t.Fatalf("%s line %d does not parse (%v): %q", name, i+1, err, l)
		}
		if _, err := time.Parse(time.RFC3339, v.Time); err != nil {
			t.Fatalf("%s line %d: time: %v", name, i+1, err)
		}
		ids = append(ids, *v.ID)
	}
	return ids
}

func TestFileConfig(t *testing.T) {
	dir := t.TempDir()
	abs := filepath.Join(t.TempDir(), "abs.jsonl")
	def := filepath.Join(dir, connlog.DefaultFile)
	tests := []struct {
		name    string
		cfg     map[string]any
		dataDir string
		path    string // "" for no file
		maxSize int64
		keep    int
		queue   int
		wantErr []error
		errHas  []string
	}{
		{name: "defaults", path: def, maxSize: 64 << 20, keep: 5, queue: 4096},
		{name: "relative", cfg: map[string]any{"file": "logs/c.jsonl"}, path: filepath.Join(dir, "logs", "c.jsonl"), maxSize: 64 << 20, keep: 5, queue: 4096},
		{name: "absolute", cfg: map[string]any{"file": abs}, path: abs, maxSize: 64 << 20, keep: 5, queue: 4096},
		{name: "absolute without data dir", cfg: map[string]any{"file": abs}, dataDir: "-", path: abs, maxSize: 64 << 20, keep: 5, queue: 4096},
		{name: "relative without data dir", dataDir: "-", queue: 4096},
		{name: "empty string", cfg: map[string]any{"file": ""}, queue: 4096},
		{name: "false", cfg: map[string]any{"file": false}, queue: 4096},
		{name: "null", cfg: map[string]any{"file": nil}, queue: 4096},
		{name: "true", cfg: map[string]any{"file": true}, path: def, maxSize: 64 << 20, keep: 5, queue: 4096},
		{name: "all keys", cfg: map[string]any{"file": "x.jsonl", "max_size": "1KiB", "keep": 0, "queue": 1},
			path: filepath.Join(dir, "x.jsonl"), maxSize: 1024, keep: 0, queue: 1},
		{name: "max_size number", cfg: map[string]any{"max_size": 2048}, path: def, maxSize: 2048, keep: 5, queue: 4096},
		{name: "max_size MB", cfg: map[string]any{"max_size": "10MB"}, path: def, maxSize: 10_000_000, keep: 5, queue: 4096},
		{name: "limits", cfg: map[string]any{"keep": connlog.MaxKeep, "queue": connlog.MaxQueue}, path: def, maxSize: 64 << 20, keep: 1000, queue: 1 << 20},

		{name: "file number", cfg: map[string]any{"file": 3},
			wantErr: []error{middleware.ErrBadValue}, errHas: []string{`"file"`}},
		{name: "max_size too small", cfg: map[string]any{"max_size": 1023},
			wantErr: []error{middleware.ErrBadValue, connlog.ErrMaxSizeTooSmall}, errHas: []string{`"max_size"`, "1KiB"}},
		{name: "max_size not a size", cfg: map[string]any{"max_size": "huge"},
			wantErr: []error{middleware.ErrBadValue}, errHas: []string{`"max_size"`}},
		{name: "keep negative", cfg: map[string]any{"keep": -1},
			wantErr: []error{middleware.ErrBadValue, connlog.ErrKeepRange}, errHas: []string{`"keep"`}},
		{name: "keep too large", cfg: map[string]any{"keep": 1001},
			wantErr: []error{middleware.ErrBadValue, connlog.ErrKeepRange}, errHas: []string{`"keep"`}},
		{name: "keep string", cfg: map[string]any{"keep": "five"},
			wantErr: []error{middleware.ErrBadValue}, errHas: []string{`"keep"`}},
		{name: "queue zero", cfg: map[string]any{"queue": 0},
			wantErr: []error{middleware.ErrBadValue, connlog.ErrQueueRange}, errHas: []string{`"queue"`}},
		{name: "queue too large", cfg: map[string]any{"queue": connlog.MaxQueue + 1},
			wantErr: []error{middleware.ErrBadValue, connlog.ErrQueueRange}, errHas: []string{`"queue"`}},
		{name: "unknown key names the new ones", cfg: map[string]any{"rotate": true},
			wantErr: []error{middleware.ErrUnknownKey}, errHas: []string{`"rotate"`, "file", "keep", "max_size", "queue", "size"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dataDir := dir
			if tt.dataDir == "-" {
				dataDir = ""
			}
			info, _ := middleware.Lookup(connlog.Type)
			mw, err := info.New(fileParams(dataDir, tt.cfg))
			if tt.wantErr != nil {
				mwtest.ExpectError(t, err, tt.wantErr, tt.errHas...)
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			path, maxSize, keep, queue := connlog.FileOf(mw)
			if path != tt.path || maxSize != tt.maxSize || keep != tt.keep || queue != tt.queue {
				t.Errorf("file %q max_size %d keep %d queue %d, want %q %d %d %d",
					path, maxSize, keep, queue, tt.path, tt.maxSize, tt.keep, tt.queue)
			}
		})
	}
	// New touches no file.
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("New created %v", ents)
	}
}

func TestNoFileWritesNothing(t *testing.T) {
	dir := t.TempDir()
	for _, cfg := range []map[string]any{{"file": ""}, {"file": false}} {
		p := fileParams(dir, cfg)
		mw := newStage(t, p)
		serveFacts(t, mw, 1, 5)
		closePool(t, p)
		if got := stat(t, mw, "log_written") + stat(t, mw, "log_dropped"); got != 0 {
			t.Errorf("%v: written+dropped = %d", cfg, got)
		}
		if got := logRecords(t, mw); got != 5 {
			t.Errorf("%v: log_records = %d", cfg, got)
		}
	}
	// Without a data directory a relative name means no file either.
	p := fileParams("", nil)
	mw := newStage(t, p)
	serveFacts(t, mw, 1, 1)
	closePool(t, p)
	if got := stat(t, mw, "log_written"); got != 0 {
		t.Errorf("no data dir: log_written = %d", got)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("files written: %v", ents)
	}
}

func TestWriteJSONLines(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // created by the writer
	p := fileParams(dir, nil)
	mw := newStage(t, p)
	at := time.Date(2025, 7, 13, 13, 55, 3, 123_456_789, time.FixedZone("CEST", 2*3600))
	tests := []struct {
		facts func(*middleware.Session)
		err   error
		want  string
	}{
		{
			facts: func(s *middleware.Session) {
				s.User, s.AuthState, s.Command = "alice", middleware.AuthOK, middleware.CmdConnect
				s.Listener = "office" // a listener of `listeners:`
				s.Target = middleware.Target{Name: "example.org", Port: 443}
				s.Reply, s.ReplySent = middleware.ReplySucceeded, true
				s.Up.Store(750)
				s.Down.Store(15000)
				s.End = s.Start.Add(1500 * time.Millisecond)
			},
			want: `{"time":"2025-07-13T11:55:03.123Z","user":"alice","client_ip":"127.0.0.1","client_port":50514,"host":"example.org","port":443,"reply":0,"bytes":15750,"auth":"Auth","id":1,"command":"CONNECT","up":750,"down":15000,"duration":1.5,"reason":"ok","listener":"office"}`,
		},
		{ // no reply sent: null; the client hung up
			facts: func(s *middleware.Session) {
				s.AuthState = middleware.AuthNoAuth
				s.End = s.Start.Add(2 * time.Millisecond)
			},
			err:  io.EOF,
			want: `{"time":"2025-07-13T11:55:03.123Z","user":"","client_ip":"127.0.0.1","client_port":50514,"host":"","port":0,"reply":null,"bytes":0,"auth":"NoAuth","id":2,"command":"-","up":0,"down":0,"duration":0.002,"reason":"eof"}`,
		},
		{ // IPv6 destination, refused; user and host with odd bytes
			facts: func(s *middleware.Session) {
				s.User, s.AuthState, s.Command = `bo"b <x>`, middleware.AuthOK, middleware.CmdConnect
				s.Target = middleware.Target{Addr: netip.MustParseAddr("2001:db8::2"), Port: 8443}
				s.Reply, s.ReplySent = middleware.ReplyConnectionRefused, true
				s.End = s.Start
			},
			err:  &middleware.ReplyError{Code: middleware.ReplyConnectionRefused, Err: syscall.ECONNREFUSED},
			want: `{"time":"2025-07-13T11:55:03.123Z","user":"bo\"b <x>","client_ip":"127.0.0.1","client_port":50514,"host":"2001:db8::2","port":8443,"reply":5,"bytes":0,"auth":"Auth","id":3,"command":"CONNECT","up":0,"down":0,"duration":0,"reason":"refused"}`,
		},
		{ // through a load balancer (PROXY protocol): the client from the header, the balancer kept as via
			facts: func(s *middleware.Session) {
				s.Client = netip.MustParseAddrPort("127.0.0.99:40000")
				s.Via = netip.MustParseAddrPort("[::ffff:127.0.0.1]:51000")
				s.AuthState, s.Command = middleware.AuthNoAuth, middleware.CmdConnect
				s.Target = middleware.Target{Name: "example.org", Port: 80}
				s.Reply, s.ReplySent = middleware.ReplySucceeded, true
				s.End = s.Start
			},
			want: `{"time":"2025-07-13T11:55:03.123Z","user":"","client_ip":"127.0.0.99","client_port":40000,"host":"example.org","port":80,"reply":0,"bytes":0,"auth":"NoAuth","id":4,"command":"CONNECT","up":0,"down":0,"duration":0,"reason":"ok","via_ip":"127.0.0.1","via_port":51000}`,
		},
	}
	for i, tt := range tests {
		s, _ := mwtest.Session(t)
		s.ID, s.Start = uint64(i+1), at
		s.Client = netip.MustParseAddrPort("[::ffff:127.0.0.1]:50514") // written unmapped
		if err := mwtest.Serve(context.Background(), mw, &mwtest.Terminal{Facts: tt.facts, Err: tt.err}, s); !errors.Is(err, tt.err) {
			t.Fatalf("Serve = %v", err)
		}
	}
	before := mw.(middleware.LogSource).Records(0)
	closePool(t, p)

	name := filepath.Join(dir, connlog.DefaultFile)
	lines := readLines(t, name)
	if len(lines) != len(tests) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(tests), strings.Join(lines, "\n"))
	}
	for i, tt := range tests {
		if lines[i] != tt.want {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, lines[i], tt.want)
		}
	}
	if got := stat(t, mw, "log_written"); got != int64(len(tests)) {
		t.Errorf("log_written = %d", got)
	}
	for _, f := range []struct {
		name string
		mode fs.FileMode
	}{{dir, 0o700 | fs.ModeDir}, {name, 0o600}} {
		if fi, err := os.Stat(f.name); err != nil || fi.Mode() != f.mode {
			t.Errorf("%s: mode %v (%v), want %v", f.name, fi.Mode(), err, f.mode)
		}
	}

	// Read back by a fresh pool: the same records, to the precision of the file.
	p2 := fileParams(dir, nil)
	after := newStage(t, p2).(middleware.LogSource).Records(0)
	if len(after) != len(before) {
		t.Fatalf("read back %d records, want %d", len(after), len(before))
	}
	for i := range before {
		if want := fileRecord(before[i]); after[i] != want {
			t.Errorf("record %d read back as\n%+v\nwant\n%+v", i, after[i], want)
		}
	}
}

// fileRecord is r as it reads back from the file: times to the
// millisecond in UTC, durations to the microsecond, clients unmapped.
func fileRecord(r middleware.Record) middleware.Record {
	r.Time = r.Time.UTC().Truncate(time.Millisecond)
	r.Duration = r.Duration.Round(time.Microsecond)
	if r.Client.IsValid() {
		r.Client = netip.AddrPortFrom(r.Client.Addr().Unmap(), r.Client.Port())
	}
	if r.Via.IsValid() {
		r.Via = netip.AddrPortFrom(r.Via.Addr().Unmap(), r.Via.Port())
	}
	return r
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	p := fileParams(dir, map[string]any{"max_size": "1KiB", "keep": 2})
	mw := newStage(t, p)
	serveFacts(t, mw, 1, 100)
	closePool(t, p)

	name := filepath.Join(dir, connlog.DefaultFile)
	var all []uint64
	for _, f := range []string{name + ".2", name + ".1", name} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatalf("missing: %v", err)
		}
		if fi.Size() > 1024 {
			t.Errorf("%s is %d bytes, over max_size", f, fi.Size())
		}
		if fi.Mode() != 0o600 {
			t.Errorf("%s: mode %v", f, fi.Mode())
		}
		ids := lineIDs(t, f)
		if len(ids) == 0 {
			t.Errorf("%s is empty", f)
		}
		all = append(all, ids...)
	}
	if _, err := os.Stat(name + ".3"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s.3 exists (%v): the oldest file was not deleted", name, err)
	}
	// The three files hold the newest records, in order, without a gap.
	if len(all) == 0 || all[len(all)-1] != 100 {
		t.Fatalf("ids %v do not end with 100", all)
	}
	for i := 1; i < len(all); i++ {
		if all[i] != all[i-1]+1 {
			t.Fatalf("ids not consecutive: %v", all)
		}
	}
	if got := stat(t, mw, "log_written"); got != 100 {
		t.Errorf("log_written = %d", got)
	}

	// A smaller keep deletes the surplus at the next rotation; keep 0
	// keeps no rotated file at all.
	for _, keep := range []int{1, 0} {
		p := fileParams(dir, map[string]any{"max_size": "1KiB", "keep": keep})
		mw := newStage(t, p)
		serveFacts(t, mw, 101, 120)
		closePool(t, p)
		for i := 1; i <= 3; i++ {
			_, err := os.Stat(fmt.Sprintf("%s.%d", name, i))
			if exists := err == nil; exists != (i <= keep) {
				t.Errorf("keep %d: %s.%d exists: %v", keep, name, i, exists)
			}
		}
		if ids := lineIDs(t, name); len(ids) == 0 || ids[len(ids)-1] != 120 {
			t.Errorf("keep %d: current file holds %v", keep, ids)
		}
	}
}

func TestRefillAfterRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := map[string]any{"max_size": "1KiB", "keep": 5}
	p := fileParams(dir, cfg)
	mw := newStage(t, p)
	serveFacts(t, mw, 1, 30)
	before := mw.(middleware.LogSource).Records(0)
	closePool(t, p)
	if _, err := os.Stat(filepath.Join(dir, connlog.DefaultFile+".2")); err != nil {
		t.Fatalf("the test needs records across rotated files: %v", err)
	}

	// A restart: a fresh pool over the same data directory.
	p2 := fileParams(dir, cfg)
	mw2 := newStage(t, p2)
	ls := mw2.(middleware.LogSource)
	got := ls.Records(10)
	if fmt.Sprint(ids(got)) != "[30 29 28 27 26 25 24 23 22 21]" {
		t.Fatalf("LOGS 10 after restart: %v", ids(got))
	}
	all := ls.Records(0)
	n := len(all)
	if n < 15 || n > 30 {
		t.Fatalf("read back %d records from six files of 1KiB", n)
	}
	for i, r := range all {
		if want := fileRecord(before[i]); r != want {
			t.Fatalf("record %d:\n%+v\nwant\n%+v", i, r, want)
		}
	}
	if got := logRecords(t, mw2); got != int64(n) {
		t.Errorf("log_records = %d, want %d", got, n)
	}

	// New records come first; a rebuild does not read the file again.
	serveFacts(t, mw2, 31, 31)
	rebuilt := newStage(t, p2)
	serveFacts(t, rebuilt, 32, 32)
	got = rebuilt.(middleware.LogSource).Records(0)
	if len(got) != n+2 || got[0].ID != 32 || got[1].ID != 31 || got[2].ID != 30 {
		t.Errorf("after a rebuild: %d records, first %v", len(got), ids(got[:3]))
	}
}

func TestRefillUpToRingSize(t *testing.T) {
	dir := t.TempDir()
	p := fileParams(dir, nil)
	serveFacts(t, newStage(t, p), 1, connlog.MinSize+100)
	closePool(t, p)

	ls := newStage(t, fileParams(dir, nil)).(middleware.LogSource)
	got := ls.Records(0)
	if len(got) != connlog.MinSize || got[0].ID != connlog.MinSize+100 || got[len(got)-1].ID != 101 {
		t.Errorf("refilled %d records, newest %d, oldest %d", len(got), got[0].ID, got[len(got)-1].ID)
	}
}

func TestCorruptLinesSkipped(t *testing.T) {
	dir := t.TempDir()
	p := fileParams(dir, nil)
	serveFacts(t, newStage(t, p), 1, 3)
	closePool(t, p)
	name := filepath.Join(dir, connlog.DefaultFile)
	good := readLines(t, name)

	var b bytes.Buffer
	b.WriteString("not json\n")
	b.WriteString(good[0] + "\n")
	b.WriteString(`{"time":"yesterday","id":9}` + "\n")
	b.WriteString("\n   \n") // blank lines are not corrupt
	b.WriteString(`{"time":"2025-07-13T11:55:03Z","client_ip":"300.1.1.1"}` + "\n")
	b.WriteString(good[1] + "\n")
	b.WriteString(`{"time":"2025-07-13T11:55:03Z","id":` + strings.Repeat("1", 1<<20+10) + "}\n") // overlong
	b.WriteString(good[2] + "\n")
	b.WriteString(`{"time":"2025-07-13T11:5`) // cut short by a crash
	if err := os.WriteFile(name, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	p2 := fileParams(dir, nil)
	mw := newStage(t, p2)
	if got := fmt.Sprint(ids(mw.(middleware.LogSource).Records(0))); got != "[3 2 1]" {
		t.Errorf("records %s, want [3 2 1]", got)
	}
	if got := stat(t, mw, "log_corrupt_lines"); got != 5 {
		t.Errorf("log_corrupt_lines = %d, want 5", got)
	}
	// The next record starts on a line of its own, after the cut one.
	serveFacts(t, mw, 4, 4)
	closePool(t, p2)
	lines := readLines(t, name)
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, `{"time":`) || !strings.Contains(last, `"id":4,`) {
		t.Errorf("last line %q", last)
	}
	mw3 := newStage(t, fileParams(dir, nil))
	if got := fmt.Sprint(ids(mw3.(middleware.LogSource).Records(0))); got != "[4 3 2 1]" {
		t.Errorf("records %s, want [4 3 2 1]", got)
	}
	if got := stat(t, mw3, "log_corrupt_lines"); got != 5 {
		t.Errorf("log_corrupt_lines = %d, want 5", got)
	}
}

// stall blocks the writer of mw before each record until release is closed;
// entered receives once the writer is blocked.
func stall(mw middleware.Middleware) (entered <-chan struct{}, release func()) {
	in, rel := make(chan struct{}, 1), make(chan struct{})
	connlog.StallWriter(mw, func() {
		select {
		case in <- struct{}{}:
		default:
		}
		<-rel
	})
	var once sync.Once
	return in, func() { once.Do(func() { close(rel) }) }
}

// within fails the test if f does not return in time: a connection must
// never wait for the file.
func within(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s blocked", what)
	}
}

func TestFullQueueDrops(t *testing.T) {
	dir := t.TempDir()
	p := fileParams(dir, map[string]any{"queue": 1})
	mw := newStage(t, p)
	entered, release := stall(mw)
	defer release()

	serveFacts(t, mw, 1, 1)
	<-entered // the writer holds record 1
	within(t, "serving with a stalled writer", func() {
		h := mw.Wrap(&mwtest.Terminal{Facts: facts})
		for id := 2; id <= 10; id++ {
			s := &middleware.Session{ID: uint64(id), Start: time.Now()}
			_ = h.ServeConn(context.Background(), s)
		}
	}) // record 2 waits in the queue; 3 to 10 are dropped
	if got := stat(t, mw, "log_dropped"); got != 8 {
		t.Errorf("log_dropped = %d, want 8", got)
	}
	if got := logRecords(t, mw); got != 10 {
		t.Errorf("the ring holds %d, want all 10", got)
	}
	release()
	closePool(t, p)
	if got := fmt.Sprint(lineIDs(t, filepath.Join(dir, connlog.DefaultFile))); got != "[1 2]" {
		t.Errorf("file holds %s, want [1 2]", got)
	}
	if got := stat(t, mw, "log_written"); got != 2 {
		t.Errorf("log_written = %d, want 2", got)
	}
}

func TestCloseFlushesQueue(t *testing.T) {
	dir := t.TempDir()
	p := fileParams(dir, nil)
	mw := newStage(t, p)
	entered, release := stall(mw)
	serveFacts(t, mw, 1, 1)
	<-entered
	serveFacts(t, mw, 2, 500) // all queued behind the stalled writer

	closed := make(chan error, 1)
	go func() { closed <- closer(t, p).Close() }()
	release()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	ids := lineIDs(t, filepath.Join(dir, connlog.DefaultFile))
	if len(ids) != 500 || ids[0] != 1 || ids[499] != 500 {
		t.Fatalf("file holds %d records (%v...)", len(ids), ids[:min(len(ids), 3)])
	}
	if w, d := stat(t, mw, "log_written"), stat(t, mw, "log_dropped"); w != 500 || d != 0 {
		t.Errorf("log_written %d, log_dropped %d", w, d)
	}

	// After Close: the ring still works, the file is left alone.
	serveFacts(t, mw, 501, 501)
	if got := mw.(middleware.LogSource).Records(1); got[0].ID != 501 {
		t.Errorf("newest = %d", got[0].ID)
	}
	if got := stat(t, mw, "log_dropped"); got != 1 {
		t.Errorf("log_dropped after close = %d", got)
	}
	if err := closer(t, p).Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if n := len(readLines(t, filepath.Join(dir, connlog.DefaultFile))); n != 500 {
		t.Errorf("%d lines after close", n)
	}
}

func TestCloseUnused(t *testing.T) {
	dir := t.TempDir()
	p := fileParams(dir, nil)
	mw := newStage(t, p)
	closePool(t, p)
	serveFacts(t, mw, 1, 1) // never started: nothing to write to
	if got := stat(t, mw, "log_dropped"); got != 1 {
		t.Errorf("log_dropped = %d", got)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("files written after close: %v", ents)
	}
}

func TestFlushedWhenIdle(t *testing.T) {
	dir := t.TempDir()
	p := fileParams(dir, nil)
	mw := newStage(t, p)
	serveFacts(t, mw, 1, 3)
	name := filepath.Join(dir, connlog.DefaultFile)
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(name)
		if bytes.Count(b, []byte("\n")) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records not flushed without Close: %q", b)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := stat(t, mw, "log_written"); got != 3 {
		t.Errorf("log_written = %d", got)
	}
}

func TestWriteErrorCounted(t *testing.T) {
	dir := t.TempDir()
	// The log's directory is a file: it cannot be created.
	if err := os.WriteFile(filepath.Join(dir, "logs"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p := fileParams(dir, map[string]any{"file": "logs/c.jsonl"})
	mw := newStage(t, p)
	serveFacts(t, mw, 1, 3)
	closePool(t, p)
	if got := stat(t, mw, "log_errors"); got != 3 {
		t.Errorf("log_errors = %d, want 3", got)
	}
	if got := logRecords(t, mw); got != 3 {
		t.Errorf("log_records = %d", got)
	}
}

func TestConcurrentServeAndClose(t *testing.T) {
	dir := t.TempDir()
	p := fileParams(dir, map[string]any{"queue": 64, "max_size": "4KiB", "keep": 3})
	mw := newStage(t, p)
	h := mw.Wrap(&mwtest.Terminal{Facts: facts})
	const workers, each = 4, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				s := &middleware.Session{ID: uint64(w*each + i + 1), Start: time.Now()}
				_ = h.ServeConn(context.Background(), s)
			}
		})
	}
	wg.Go(func() {
		time.Sleep(time.Millisecond)
		_ = closer(t, p).Close()
	})
	wg.Wait()
	_ = closer(t, p).Close()
	written, dropped, errs := stat(t, mw, "log_written"), stat(t, mw, "log_dropped"), stat(t, mw, "log_errors")
	if written+dropped+errs != workers*each || errs != 0 {
		t.Errorf("written %d + dropped %d + errors %d != %d", written, dropped, errs, workers*each)
	}
	var lines int64
	for i := range 4 {
		name := filepath.Join(dir, connlog.DefaultFile)
		if i > 0 {
			name = fmt.Sprintf("%s.%d", name, i)
		}
		if _, err := os.Stat(name); err == nil {
			lines += int64(len(lineIDs(t, name)))
		}
	}
	if lines > written {
		t.Errorf("%d lines on disk, log_written %d", lines, written)
	}
}

func TestCloseReason(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(1, 0))
	defer cancel2()
	bg := context.Background()
	type facts struct {
		auth  middleware.AuthState
		reply middleware.Reply
		sent  bool
	}
	tests := []struct {
		name  string
		ctx   context.Context
		facts facts
		err   error
		want  string
	}{
		{"ok", bg, facts{sent: true}, nil, connlog.ReasonOK},
		{"ok despite a late cancel", cancelled, facts{sent: true}, nil, connlog.ReasonOK},
		{"killed", cancelled, facts{sent: true}, net.ErrClosed, connlog.ReasonKilled},
		{"session deadline", expired, facts{sent: true}, net.ErrClosed, connlog.ReasonTimeout},
		{"auth failed", bg, facts{auth: middleware.AuthFailed}, errors.New("core: authentication failed"), connlog.ReasonAuthFailed},
		{"auth failed, nil error", bg, facts{auth: middleware.AuthFailed}, nil, connlog.ReasonAuthFailed},
		{"refused", bg, facts{sent: true, reply: middleware.ReplyConnectionRefused},
			&middleware.ReplyError{Code: middleware.ReplyConnectionRefused, Err: syscall.ECONNREFUSED}, connlog.ReasonRefused},
		{"denied by reply error", bg, facts{}, fmt.Errorf("dial: %w", &middleware.ReplyError{Code: middleware.ReplyNotAllowed}), connlog.ReasonDenied},
		{"unreachable", bg, facts{sent: true, reply: middleware.ReplyHostUnreachable}, &middleware.ReplyError{Code: middleware.ReplyHostUnreachable}, connlog.ReasonUnreachable},
		{"ttl", bg, facts{sent: true, reply: middleware.ReplyTTLExpired}, &middleware.ReplyError{Code: middleware.ReplyTTLExpired}, connlog.ReasonTimeout},
		{"address type by reply", bg, facts{sent: true, reply: middleware.ReplyAddressUnsupported}, errors.New("core: address type not supported"), connlog.ReasonUnsupported},
		{"general failure", bg, facts{sent: true, reply: middleware.ReplyGeneralFailure}, &middleware.ReplyError{Code: middleware.ReplyGeneralFailure}, connlog.ReasonError},
		{"eof", bg, facts{}, io.EOF, connlog.ReasonEOF},
		{"unexpected eof", bg, facts{}, fmt.Errorf("greeting: %w", io.ErrUnexpectedEOF), connlog.ReasonEOF},
		{"deadline", bg, facts{}, &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, connlog.ReasonTimeout},
		{"reset", bg, facts{sent: true}, &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, connlog.ReasonReset},
		{"broken pipe", bg, facts{sent: true}, errors.Join(nil, syscall.EPIPE), connlog.ReasonReset},
		{"closed", bg, facts{sent: true}, net.ErrClosed, connlog.ReasonClosed},
		{"other", bg, facts{}, errors.New("core: unsupported SOCKS version"), connlog.ReasonError},
	}
	for _, tt := range tests {
		s := &middleware.Session{AuthState: tt.facts.auth, Reply: tt.facts.reply, ReplySent: tt.facts.sent}
		if got := connlog.CloseReason(tt.ctx, s, tt.err); got != tt.want {
			t.Errorf("%s: CloseReason = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// BenchmarkServeWithFile is BenchmarkServe with the file on: the record is
// also queued for the writer (or dropped when it falls behind).
func BenchmarkServeWithFile(b *testing.B) {
	p := fileParams(b.TempDir(), nil)
	mw := mwtest.New(b, connlog.Type, p)
	b.Cleanup(func() {
		c := middleware.Get(p.Shared, p.Name, func() io.Closer { return nil })
		_ = c.Close()
	})
	h := mw.Wrap(noop())
	s, _ := mwtest.Session(b)
	s.User, s.Target = "alice", middleware.Target{Name: "example.org", Port: 443}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = h.ServeConn(ctx, s)
	}
}
