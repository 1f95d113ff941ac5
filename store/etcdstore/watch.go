package etcdstore

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/socks5d/socks5d/core"
)

// probeEvery is how often the store checks that etcd answers (health).
const probeEvery = time.Second

// Watch implements core.SharedStore. It follows the prefix from base on:
// each batch of changes to the state keys becomes one StoreEvent with the
// whole state; a PUT under kills/ a KillUser event; bans/ feed the ban
// board. When etcd was unreachable and answers again, or the watch is
// cancelled (compaction), it reads everything again and goes on.
func (s *Store) Watch(ctx context.Context, base int64, apply func(core.StoreEvent)) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.probe(ctx)
	var kvs map[string][]byte
	rev := base
	for ctx.Err() == nil {
		// (Re)read everything: at start (the state may have changed since
		// LoadRevision), and after any interruption.
		all, bans, r, err := s.fetch(ctx)
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-s.resync:
			case <-time.After(probeEvery):
			}
			continue
		}
		s.setBans(bans)
		kvs = all
		if s.fromCache.Swap(false) {
			s.log.Info("etcd answers: the shared state is read from it again", "revision", r)
		}
		switch {
		case r > rev || base == 0:
			s.deliver(kvs, r, apply, false)
		case r < rev:
			s.log.Warn("etcd's revision went back (restored from a backup, or a new cluster): taking its state as it is", "was", rev, "now", r)
			s.deliver(kvs, r, apply, true)
		}
		rev, base = r, r
		rev = s.follow(ctx, kvs, rev, apply)
	}
}

// follow watches from rev+1 until the watch ends or a resync is asked;
// it returns the last revision it handled.
func (s *Store) follow(ctx context.Context, kvs map[string][]byte, rev int64, apply func(core.StoreEvent)) int64 {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	cli, err := s.client()
	if err != nil {
		return rev
	}
	wch := cli.Watch(wctx, s.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	for {
		select {
		case <-ctx.Done():
			return rev
		case <-s.resync:
			return rev
		case resp, ok := <-wch:
			if !ok {
				return rev
			}
			if err := resp.Err(); err != nil {
				s.errs.Add(1)
				if !errors.Is(ctx.Err(), context.Canceled) {
					s.log.Warn("etcd watch interrupted; reading the shared state again", "error", err)
				}
				return rev
			}
			changed := false
			for _, ev := range resp.Events {
				rel := strings.TrimPrefix(string(ev.Kv.Key), s.prefix)
				put := ev.Type == mvccpb.PUT
				switch kind(rel) {
				case dirBans:
					s.banEvent(rel, ev.Kv.Value, put)
				case dirKills:
					if put {
						apply(core.StoreEvent{KillUser: rel[len(dirKills):], Revision: ev.Kv.ModRevision})
					}
				case dirCounters: // read when needed (Counters), not part of the state
				default:
					changed = true
					if put {
						kvs[rel] = ev.Kv.Value
					} else {
						delete(kvs, rel)
					}
				}
			}
			if resp.Header.Revision > rev {
				rev = resp.Header.Revision
			}
			if changed {
				s.deliver(kvs, rev, apply, false)
			}
		}
	}
}

// deliver decodes the state and hands it to apply; a state with a value
// that does not parse is refused, logged naming the key, and counted: the
// instance keeps its last good state.
func (s *Store) deliver(kvs map[string][]byte, rev int64, apply func(core.StoreEvent), reset bool) {
	st, err := s.decodeState(kvs)
	s.badMu.Lock()
	s.badErr = err
	s.badMu.Unlock()
	if err != nil {
		s.badValues.Add(1)
		s.log.Error("refused the shared state: a value in etcd does not parse; keeping the last good state", "revision", rev, "error", err)
		return
	}
	apply(core.StoreEvent{State: st, Revision: rev, Reset: reset})
	s.revision.Store(rev)
	s.keepCopy(st)
}

// probe checks every second that etcd answers; when it answers again
// after a failure, the watcher reads everything again.
func (s *Store) probe(ctx context.Context) {
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, min(s.timeout, probeEvery))
		cli, err := s.client()
		if err == nil {
			_, err = cli.Get(pctx, s.prefix+keyRevision)
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		was := s.connected.Swap(err == nil)
		switch {
		case err != nil && was:
			s.errs.Add(1)
			s.log.Error("etcd unreachable: serving on the last shared state; changes are refused until it answers", "endpoints", s.endpoints, "error", err)
		case err != nil:
			s.errs.Add(1)
		case !was:
			s.log.Info("etcd reachable again: resyncing the shared state", "endpoints", s.endpoints)
			select {
			case s.resync <- struct{}{}:
			default:
			}
		}
	}
}

// setBans replaces the bans known with those read from etcd, keeping the
// longer of two for a group.
func (s *Store) setBans(bans map[netip.Prefix]time.Time) {
	s.bansMu.Lock()
	defer s.bansMu.Unlock()
	now := time.Now()
	for g, until := range s.bans {
		if !now.Before(until) {
			delete(s.bans, g)
		}
	}
	for g, until := range bans {
		if until.After(s.bans[g]) {
			s.bans[g] = until
		}
	}
}
