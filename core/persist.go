package core

import (
	"errors"
	"fmt"

	"github.com/socks5d/socks5d/middleware"
)

// Persistence: what administrators change (users, settings, list
// settings) is kept by a Store and laid over the configuration at start-up
// and after every reload. A change is saved before it takes effect, so an
// acknowledged change is on disk, and a change that cannot be saved is
// refused and changes nothing.

// UseStore loads the saved state from store and applies it on top of the
// configuration; from then on every administrative change is saved there.
// It returns the saved keys it could not apply (their stage is no longer
// in the chain). A state that cannot be read or applied is an error and
// leaves the runtime as it was.
func (r *Runtime) UseStore(store Store) (skipped []string, err error) {
	var st *State
	var rev int64
	ss, shared := store.(SharedStore)
	if shared {
		st, rev, err = ss.LoadRevision()
	} else {
		st, err = store.Load()
	}
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s, err := r.commit(func(d *Draft, _ *State) error {
		skipped, err = st.apply(d)
		return err
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: the saved state cannot be applied: %w", ErrState, err)
	}
	r.store, r.state = store, st
	if shared {
		r.rev.Store(rev)
		r.fleet.Store(&fleetRef{store: ss})
	}
	if c := countersFor(store, r.dataDir); c != nil {
		r.counters.Store(&c)
	}
	r.install(s)
	r.stateLoaded.Store(true)
	return skipped, nil
}

// change applies an administrative change: fn mutates a draft and a copy
// of the state, the result is compiled, the state saved, and only then the
// new snapshot installed.
func (r *Runtime) change(fn func(*Draft, *State) error) error {
	_, err := r.changeOnce(fn)
	return err
}

// changeRebased is change for a change whose meaning does not depend on
// the state it was made on (set a setting, add or delete a user by name):
// when a shared store refuses it because another instance wrote first, it
// waits (at most storeCatchUp) for this instance to apply that write and
// makes the change once more on top of it. A list edit, which names items
// by position, is never made again on a list that changed.
func (r *Runtime) changeRebased(fn func(*Draft, *State) error) error {
	base, err := r.changeOnce(fn)
	if !errors.Is(err, ErrStoreConflict) || !r.waitRevision(base, storeCatchUp) {
		return err
	}
	_, err = r.changeOnce(fn)
	return err
}

// changeOnce is change; it also returns the shared store's revision the
// change was based on.
func (r *Runtime) changeOnce(fn func(*Draft, *State) error) (base int64, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	base = r.rev.Load()
	st := r.state.clone()
	s, err := r.commit(fn, st)
	if err != nil {
		return base, err
	}
	if ss := r.sharedStore(); ss != nil {
		rev, err := ss.SaveChange(r.state, st, base)
		if err != nil {
			middleware.Cleanup(s.middlewares()...) // never live
			return base, fmt.Errorf("the change was not saved, so it was not made: %w", err)
		}
		r.rev.Store(rev)
	} else if r.store != nil {
		if err := r.store.Save(st); err != nil {
			middleware.Cleanup(s.middlewares()...) // never live
			return base, fmt.Errorf("the change was not saved, so it was not made: %w", err)
		}
	}
	r.state = st
	r.install(s)
	return base, nil
}

// ReopenFiles asks every stage of the live chain that appends to a file
// (middleware.Reopener: the connection log) to reopen it, so that a file
// moved away by log rotation is left alone and a new one is started under
// the configured name. The server calls it on SIGHUP; it never waits.
func (r *Runtime) ReopenFiles() {
	for _, st := range r.snap.Load().Stages {
		if ro, ok := st.Middleware.(middleware.Reopener); ok {
			ro.ReopenFiles()
		}
	}
}

// Close cleans up the live snapshot's stages (middleware.Cleaner) and
// releases what the runtime's stages share (a log file's writer flushes
// what it queued). Call it once, after Shutdown.
func (r *Runtime) Close() error {
	r.mu.Lock()
	middleware.Cleanup(r.snap.Load().middlewares()...)
	r.mu.Unlock()
	return r.shared.Close()
}
