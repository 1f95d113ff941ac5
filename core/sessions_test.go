package core

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

func TestListItems(t *testing.T) {
	rt, err := NewRuntime(testConfig(stage("test.auth"), stage("test.list", "items", []any{"a", "b"})), nil)
	if err != nil {
		t.Fatal(err)
	}
	check := func(want string) {
		t.Helper()
		items, err := rt.Admin().Items("test.list.items")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(items, ","); got != want {
			t.Fatalf("items = %q, want %q", got, want)
		}
	}
	check("a,b")
	if err := rt.Admin().InsertItem("test.list.items", 1, "first"); err != nil {
		t.Fatal(err)
	}
	if err := rt.Admin().InsertItem("test.list.items", 0, "last"); err != nil {
		t.Fatal(err)
	}
	if err := rt.Admin().InsertItem("test.list.items", 5, "end"); err != nil { // one past the last
		t.Fatal(err)
	}
	check("first,a,b,last,end")
	// A position past that is refused, naming the range, not appended.
	for _, pos := range []int{7, 99, -1} {
		err := rt.Admin().InsertItem("test.list.items", pos, "x")
		if !errors.Is(err, middleware.ErrBadValue) || !strings.Contains(err.Error(), "out of range 1..6") {
			t.Fatalf("InsertItem at %d of 5 = %v, want ErrBadValue naming 1..6", pos, err)
		}
	}
	check("first,a,b,last,end")
	if err := rt.Admin().DeleteItem("test.list.items", 2); err != nil {
		t.Fatal(err)
	}
	check("first,b,last,end")
	// Refused edits change nothing.
	for _, err := range []error{
		rt.Admin().InsertItem("test.list.items", 1, ""),    // ParseItem refuses
		rt.Admin().InsertItem("test.list.items", 1, "bad"), // New refuses
		rt.Admin().DeleteItem("test.list.items", 0),
		rt.Admin().DeleteItem("test.list.items", 5),
		rt.Admin().InsertItem("test.list.nope", 1, "x"),
		rt.Admin().InsertItem("nostage.items", 1, "x"),
	} {
		if err == nil {
			t.Fatal("a bad edit was accepted")
		}
	}
	check("first,b,last,end")
	if _, err := rt.Admin().Items("test.auth.items"); !errors.Is(err, ErrUnknownSetting) {
		t.Fatalf("a stage without lists: %v", err)
	}
}

func TestSessionsAndKill(t *testing.T) {
	rt, addr := startProxy(t, testConfig(defaultTestChain()...))
	echo := echoServer(t, "tcp", "127.0.0.1:0")
	dial := func(user, pass string) (c interface {
		Read([]byte) (int, error)
		Write([]byte) (int, error)
		Close() error
	}) {
		t.Helper()
		conn, err := socksDialer(t, addr, user, pass).Dial("tcp", echo)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, _ = conn.Write([]byte("hello"))
		readN(t, conn, 5)
		return conn
	}
	bob1, bob2, admin := dial("bob", "builder"), dial("bob", "builder"), dial("admin", "password")
	// A direction adds to its counter after its write returns, so the echo
	// may arrive before the upload is counted: wait for the counters.
	list := rt.Admin().Sessions()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); list = rt.Admin().Sessions() {
		settled := len(list) == 3
		for _, s := range list {
			settled = settled && s.Up == 5 && s.Down == 5
		}
		if settled {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if len(list) != 3 {
		t.Fatalf("sessions = %+v", list)
	}
	for _, s := range list {
		if s.Target.String() != echo || s.Command != middleware.CmdConnect || s.Up != 5 || s.Down != 5 || s.Active.Before(s.Start) {
			t.Errorf("session %+v", s)
		}
	}
	if list[0].ID >= list[1].ID || list[1].ID >= list[2].ID {
		t.Errorf("not oldest first: %d %d %d", list[0].ID, list[1].ID, list[2].ID)
	}
	// The rate is per listing: nothing moved since the previous one.
	if again := rt.Admin().Sessions(); again[0].Rate != 0 {
		t.Errorf("rate without traffic = %v", again[0].Rate)
	}
	if n := rt.Admin().KillUser("bob"); n != 2 {
		t.Fatalf("KillUser = %d", n)
	}
	for _, c := range []interface{ Read([]byte) (int, error) }{bob1, bob2} {
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a killed session still reads")
		}
	}
	var adminID uint64
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if l := rt.Admin().Sessions(); len(l) == 1 {
			adminID = l[0].ID
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if adminID == 0 {
		t.Fatalf("sessions after KillUser = %+v", rt.Admin().Sessions())
	}
	if err := rt.Admin().Kill(adminID); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Read(make([]byte, 1)); err == nil {
		t.Fatal("killed session still reads")
	}
	if err := rt.Admin().Kill(adminID + 1000); !errors.Is(err, ErrNoSuchSession) {
		t.Fatalf("Kill of an unknown id: %v", err)
	}
}
