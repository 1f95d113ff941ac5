package etcdstore

import (
	"context"
	"encoding/json"
	"math"
	"net/netip"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/socks5d/socks5d/middleware"
)

// maxBans bounds the bans remembered from the store.
const maxBans = 100000

// banValue is what bans/<group> holds.
type banValue struct {
	Until time.Time `json:"until"`
	By    string    `json:"by"`
}

// banKey is the key (without the prefix) of a group's ban: the prefix's
// text with the slash made a dash, so the key has no extra level.
func banKey(g netip.Prefix) string {
	return dirBans + strings.Replace(g.String(), "/", "-", 1)
}

// parseBan reads a ban key and value; a malformed one is ignored (and
// logged): a ban is a refusal, never a reason to refuse the state.
func (s *Store) parseBan(rel string, v []byte) (netip.Prefix, time.Time, bool) {
	text := strings.Replace(rel[len(dirBans):], "-", "/", 1)
	g, err := netip.ParsePrefix(text)
	var bv banValue
	if err == nil {
		err = decodeJSON(v, &bv)
	}
	if err != nil {
		s.log.Warn("ignored a ban in etcd that does not parse", "key", s.prefix+rel, "error", err)
		return netip.Prefix{}, time.Time{}, false
	}
	return g.Masked(), bv.Until, true
}

// banEvent applies a watched change of a ban key.
func (s *Store) banEvent(rel string, v []byte, put bool) {
	if !put {
		text := strings.Replace(rel[len(dirBans):], "-", "/", 1)
		if g, err := netip.ParsePrefix(text); err == nil {
			s.bansMu.Lock()
			// The lease ended: the ban is over everywhere.
			delete(s.bans, g.Masked())
			s.bansMu.Unlock()
		}
		return
	}
	if g, until, ok := s.parseBan(rel, v); ok {
		s.note(g, until)
	}
}

// note records a ban locally.
func (s *Store) note(g netip.Prefix, until time.Time) {
	s.bansMu.Lock()
	defer s.bansMu.Unlock()
	if len(s.bans) >= maxBans {
		now := time.Now()
		for k, u := range s.bans {
			if !now.Before(u) {
				delete(s.bans, k)
			}
		}
		if len(s.bans) >= maxBans {
			return
		}
	}
	if until.After(s.bans[g]) {
		s.bans[g] = until
	}
}

// Ban implements middleware.BanBoard: the ban is known here at once and
// posted to etcd by a goroutine, with a lease of the ban's length.
func (s *Store) Ban(group netip.Prefix, d time.Duration) {
	s.note(group.Masked(), time.Now().Add(d))
	select {
	case s.banQ <- ban{group: group.Masked(), d: d}:
	default:
		s.errs.Add(1)
		s.log.Warn("too many bans waiting to be posted to etcd; this one stays local", "group", group.String())
	}
}

// Banned implements middleware.BanBoard.
func (s *Store) Banned(a netip.Addr) (time.Time, bool) {
	g := middleware.ClientGroup(a)
	s.bansMu.RLock()
	until, ok := s.bans[g]
	s.bansMu.RUnlock()
	if ok && time.Now().Before(until) {
		return until, true
	}
	return time.Time{}, false
}

// postBans writes queued bans until Close.
func (s *Store) postBans() {
	defer s.bansWG.Done()
	for {
		select {
		case <-s.stop:
			return
		case b := <-s.banQ:
			if err := s.post(b); err != nil {
				s.log.Warn("could not post a ban to etcd; it stays local", "group", b.group.String(), "error", err)
			}
		}
	}
}

func (s *Store) post(b ban) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	ttl := int64(math.Ceil(b.d.Seconds()))
	cli, err := s.client()
	if err != nil {
		return err
	}
	lease, err := cli.Grant(ctx, max(ttl, 1))
	if err != nil {
		return s.unavailable(err)
	}
	val, _ := json.Marshal(banValue{Until: time.Now().Add(b.d).UTC(), By: s.writer})
	if _, err := cli.Put(ctx, s.prefix+banKey(b.group), string(val), clientv3.WithLease(lease.ID)); err != nil {
		return s.unavailable(err)
	}
	return nil
}
