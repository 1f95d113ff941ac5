package core

import (
	"context"
	"fmt"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// A fleet is several instances sharing one store (etcd). A change made on
// one instance is written to the store only if nothing it touches changed
// there since the revision the instance had applied (compare-and-swap);
// every instance follows the store and applies each new revision through
// the same path as a local change, so connections see either the old
// snapshot or the new one.

// SharedStore is a Store that several instances share. The file store is
// not one; the etcd store (package store/etcdstore) is.
type SharedStore interface {
	Store
	// LoadRevision is Load with the store revision the state was read at.
	LoadRevision() (*State, int64, error)
	// SaveChange writes next, made from prev, provided that nothing it
	// changes (and, for users, no user) changed in the store after
	// revision base. It returns the revision of the write, or an error
	// wrapping ErrStoreConflict or ErrStoreUnavailable; on error nothing
	// was written. It returns only once the store accepted the write.
	SaveChange(prev, next *State, base int64) (int64, error)
	// Watch calls apply with every change of the store after revision
	// base, in order, until ctx ends; it resyncs by itself after the
	// store was unreachable. apply runs on one goroutine.
	Watch(ctx context.Context, base int64, apply func(StoreEvent))
	// KillUser asks every instance to close the user's open sessions.
	KillUser(name string) error
}

// StoreEvent is one thing a SharedStore's watch saw.
type StoreEvent struct {
	// State is the whole state the store holds at Revision, when it
	// changed; nil otherwise.
	State    *State
	Revision int64
	// KillUser names a user whose sessions every instance closes (KILL
	// USER on some instance), or is "".
	KillUser string
	// Reset: the store's revision went back (etcd restored from a backup
	// or replaced): State is applied although Revision is not newer.
	Reset bool
}

// StoreStats is implemented by a store that reports its health (STATS
// and /metrics): connected, last revision applied, errors.
type StoreStats interface {
	Stats() []middleware.Stat
}

// storeCatchUp bounds how long a change refused by a conflict waits for
// this instance to apply the other instance's write before it is made once
// more (changeRebased); a watch delivers within milliseconds.
const storeCatchUp = 2 * time.Second

// waitRevision waits until this instance has applied a shared store
// revision newer than base, at most limit; it reports whether it did.
func (r *Runtime) waitRevision(base int64, limit time.Duration) bool {
	const step = 10 * time.Millisecond
	for range int(limit / step) {
		if r.rev.Load() > base {
			return true
		}
		time.Sleep(step)
	}
	return r.rev.Load() > base
}

// Revision returns the shared store's revision this instance last applied
// (0 with the file store).
func (r *Runtime) Revision() int64 { return r.rev.Load() }

// fleetRef is the shared store a runtime uses, set once by UseStore.
type fleetRef struct {
	store SharedStore
}

// sharedStore returns the shared store in use, or nil.
func (r *Runtime) sharedStore() SharedStore {
	if f := r.fleet.Load(); f != nil {
		return f.store
	}
	return nil
}

// FollowStore applies every change of a shared store to this instance
// until ctx ends; with any other store it returns at once. The server
// runs it on a goroutine of its own after UseStore.
func (r *Runtime) FollowStore(ctx context.Context) {
	if ss := r.sharedStore(); ss != nil {
		ss.Watch(ctx, r.rev.Load(), r.applyStoreEvent)
	}
}

// applyStoreEvent applies what another instance (or this one) wrote.
func (r *Runtime) applyStoreEvent(ev StoreEvent) {
	if ev.KillUser != "" {
		if n := r.killUserHere(ev.KillUser); n > 0 {
			r.logger.Info("sessions closed by a fleet-wide KILL USER", "user", ev.KillUser, "count", n)
		}
	}
	if ev.State == nil {
		return
	}
	if err := r.applyState(ev.State, ev.Revision, ev.Reset); err != nil {
		r.logger.Error("the shared store's state cannot be applied; keeping the last good one",
			"revision", ev.Revision, "error", err)
	}
}

// ApplyState makes st, the whole state a shared store holds at revision
// rev, the live state: the configuration with st laid over it, exactly as
// at start-up. A revision not newer than the one applied is ignored (this
// instance's own write, seen again). A state that cannot be applied
// changes nothing.
func (r *Runtime) ApplyState(st *State, rev int64) error { return r.applyState(st, rev, false) }

// applyState is ApplyState; reset applies st whatever its revision.
func (r *Runtime) applyState(st *State, rev int64, reset bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !reset && rev != 0 && rev <= r.rev.Load() {
		return nil
	}
	cfg := r.cfg
	s, err := r.commit(func(d *Draft, _ *State) error {
		d.Settings = settingsOf(cfg)
		d.Chain = cloneChain(cfg.Chain)
		for name, e := range d.users.m {
			if !e.fromConfig {
				delete(d.users.m, name)
			}
		}
		if err := d.users.setConfigured(cfg.Users); err != nil {
			return err
		}
		skipped, err := st.apply(d)
		for _, key := range skipped {
			r.logger.Warn("shared setting not applied: its stage is not in this instance's chain", "key", key)
		}
		return err
	}, nil)
	if err != nil {
		return fmt.Errorf("%w: revision %d: %w", ErrState, rev, err)
	}
	r.state = st
	r.rev.Store(rev)
	r.install(s)
	return nil
}

// KillUser closes every open connection of a user on this instance and
// returns how many; with a shared store it also asks every other instance
// to close theirs. That request goes on its own goroutine, so an
// unreachable store never holds the admin's reply; a failure is logged
// (the local sessions are closed all the same).
func (a *Admin) KillUser(name string) int {
	n := a.r.killUserHere(name)
	if ss := a.r.sharedStore(); ss != nil {
		go func() {
			if err := ss.KillUser(name); err != nil {
				a.r.logger.Error("KILL USER could not reach the other instances", "user", name, "error", err)
			}
		}()
	}
	return n
}

// storeStats returns the store's health statistics, if it keeps some.
func (r *Runtime) storeStats(out []middleware.Stat) []middleware.Stat {
	src, ok := r.sharedStore().(StoreStats)
	if !ok {
		return out
	}
	return append(out, src.Stats()...)
}

// SetBanBoard hands stages a ban board shared by the fleet (the shared
// store's) and rebuilds the chain so that every stage has it. Call it once
// at start, before serving.
func (r *Runtime) SetBanBoard(b middleware.BanBoard) error {
	r.mu.Lock()
	r.bans = b
	r.mu.Unlock()
	return r.Update(func(*Draft) error { return nil })
}
