package core

import (
	"context"
	"errors"
	"testing"

	"github.com/socks5d/socks5d/middleware"
)

// memShared is a SharedStore in memory: a revision, a conflict when the
// base is stale, and the events a test feeds.
type memShared struct {
	st     *State
	rev    int64
	killed chan string
	events chan StoreEvent
}

func (m *memShared) Load() (*State, error)                { return m.st.clone(), nil }
func (m *memShared) Save(*State) error                    { return errors.New("not used") }
func (m *memShared) LoadRevision() (*State, int64, error) { return m.st.clone(), m.rev, nil }
func (m *memShared) KillUser(name string) error           { m.killed <- name; return nil }
func (m *memShared) SaveChange(prev, next *State, base int64) (int64, error) {
	if base != m.rev {
		return 0, ErrStoreConflict
	}
	m.st, m.rev = next.clone(), m.rev+1
	return m.rev, nil
}
func (m *memShared) Watch(ctx context.Context, _ int64, apply func(StoreEvent)) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-m.events:
			apply(ev)
		}
	}
}

func TestSharedStoreChangeAndApply(t *testing.T) {
	rt, err := NewRuntime(persistConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ms := &memShared{st: newState(), rev: 5, killed: make(chan string, 1)}
	if _, err := rt.UseStore(ms); err != nil {
		t.Fatal(err)
	}
	if err := rt.Admin().AddUser("carol", "secret", middleware.RoleBasic); err != nil {
		t.Fatal(err)
	}
	if rt.Revision() != 6 || ms.st.Users["carol"].Hash == "" {
		t.Fatalf("revision %d, stored %+v", rt.Revision(), ms.st.Users)
	}
	// Another instance wrote meanwhile: this one's base is stale. A list
	// edit (by position) is refused, and takes no effect.
	ms.rev = 9
	if err := rt.Admin().InsertItem("test.list.items", 0, "b"); !errors.Is(err, ErrStoreConflict) {
		t.Fatalf("a list edit on a stale base = %v, want ErrStoreConflict", err)
	}
	if items, _ := rt.Admin().Items("test.list.items"); len(items) != 1 {
		t.Fatalf("a refused change took effect: %v", items)
	}
	// The watch brings revision 9: carol gone (deleted elsewhere), erin
	// added, a setting changed.
	next := newState()
	hash, _ := HashPassword("erin-pw")
	next.Users["erin"] = StateUser{Role: "basic", Hash: hash}
	next.Settings["test.iosize.size"] = 7000.0
	if err := rt.ApplyState(next, 9); err != nil {
		t.Fatal(err)
	}
	if _, ok := rt.Admin().Login("carol", "secret"); ok {
		t.Error("carol, gone from the shared state, can still log in")
	}
	if _, ok := rt.Admin().Login("erin", "erin-pw"); !ok {
		t.Error("erin, added to the shared state, cannot log in")
	}
	if !rt.Snapshot().Users.Has("bob") {
		t.Error("the configuration's users must stay")
	}
	// A revision already applied is ignored; a bad state changes nothing.
	if err := rt.ApplyState(newState(), 9); err != nil || !rt.Snapshot().Users.Has("erin") {
		t.Fatalf("an old revision was applied: %v", err)
	}
	bad := next.clone()
	bad.Settings["test.iosize.size"] = "banana"
	if err := rt.ApplyState(bad, 10); err == nil || rt.Revision() != 9 {
		t.Fatalf("a state that does not apply: %v, revision %d", err, rt.Revision())
	}
	if !rt.Snapshot().Users.Has("erin") {
		t.Error("the last good state was not kept")
	}
	// KILL USER goes to the store too; events apply through FollowStore.
	rt.Admin().KillUser("erin")
	if got := <-ms.killed; got != "erin" {
		t.Errorf("KillUser reached the store with %q", got)
	}
	ms.events = make(chan StoreEvent)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rt.FollowStore(ctx); close(done) }()
	ms.events <- StoreEvent{State: newState(), Revision: 11}
	ms.events <- StoreEvent{KillUser: "nobody"} // handed over once the state was applied
	cancel()
	<-done
	if rt.Revision() != 11 || rt.Snapshot().Users.Has("erin") {
		t.Errorf("FollowStore did not apply revision 11: revision %d", rt.Revision())
	}
}

// A store whose revision went back (etcd restored) is taken as it is.
func TestSharedStoreReset(t *testing.T) {
	rt, err := NewRuntime(persistConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.UseStore(&memShared{st: newState(), rev: 50}); err != nil {
		t.Fatal(err)
	}
	restored := newState()
	hash, _ := HashPassword("erin-pw")
	restored.Users["erin"] = StateUser{Role: "basic", Hash: hash}
	rt.applyStoreEvent(StoreEvent{State: restored, Revision: 7})
	if rt.Snapshot().Users.Has("erin") {
		t.Fatal("an older revision was applied without Reset")
	}
	rt.applyStoreEvent(StoreEvent{State: restored, Revision: 7, Reset: true})
	if !rt.Snapshot().Users.Has("erin") || rt.Revision() != 7 {
		t.Fatalf("Reset: erin %v, revision %d", rt.Snapshot().Users.Has("erin"), rt.Revision())
	}
}

// rebasing is a memShared whose first SaveChange finds that another
// instance wrote first, and whose watch then delivers that write.
type rebasing struct {
	memShared
	rt    *Runtime
	other *State
	tries int
}

func (m *rebasing) SaveChange(prev, next *State, base int64) (int64, error) {
	m.tries++
	if m.tries == 1 {
		m.st, m.rev = m.other.clone(), m.rev+1
		go m.rt.ApplyState(m.other.clone(), m.rev) // the watch, a moment later
		return 0, ErrStoreConflict
	}
	return m.memShared.SaveChange(prev, next, base)
}

// A setting changed while another instance changed another one: the
// change is made again on top of the other's, and both hold.
func TestSharedStoreChangeRebased(t *testing.T) {
	rt, err := NewRuntime(persistConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	other := newState()
	other.Settings["socks.linger"] = "7s"
	ms := &rebasing{memShared: memShared{st: newState(), rev: 3}, rt: rt, other: other}
	if _, err := rt.UseStore(ms); err != nil {
		t.Fatal(err)
	}
	if err := rt.Admin().Set("socks.idle_timeout", "1m"); err != nil {
		t.Fatalf("Set after another instance's write: %v", err)
	}
	if ms.tries != 2 || ms.st.Settings["socks.linger"] != "7s" || ms.st.Settings["socks.idle_timeout"] != "1m0s" {
		t.Fatalf("tries %d, stored %v", ms.tries, ms.st.Settings)
	}
	if s := rt.Snapshot().Settings; s.Linger.String() != "7s" || s.IdleTimeout.String() != "1m0s" {
		t.Errorf("live settings: linger %s idle %s", s.Linger, s.IdleTimeout)
	}
}
