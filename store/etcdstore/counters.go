package etcdstore

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/socks5d/socks5d/core"
	"github.com/socks5d/socks5d/middleware"
)

var _ middleware.CounterStore = (*Store)(nil)

// maxAddAttempts bounds the compare-and-swap rounds of one Add: each lost
// round means another instance's Add to the same counter went through.
const maxAddAttempts = 32

// counterKey is the etcd key of counter key: <prefix>counters/<key>.
func (s *Store) counterKey(key string) string { return s.prefix + dirCounters + key }

// parseCounter reads a counter's value, decimal text; an error names the key.
func parseCounter(key string, v []byte) (int64, error) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: key %s: a counter is a decimal integer: %w", core.ErrStoreValue, key, err)
	}
	return n, nil
}

// Add implements middleware.CounterStore: an atomic increment shared by
// every instance on the prefix. It reads the counter, then writes the sum
// in a transaction that holds only if the counter was not written since
// (its mod revision; 0 for a new one); when another instance wrote first
// it reads the new value and tries again, at most maxAddAttempts times,
// all within dial_timeout. When it fails, nothing was added (unless the
// transaction committed and only its answer was lost). An instance makes
// one Add at a time (a quota save adds one key after another anyway), so
// only other instances race with it.
func (s *Store) Add(key string, delta int64) (int64, error) {
	s.addMu.Lock()
	defer s.addMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	cli, err := s.client()
	if err != nil {
		return 0, err
	}
	k := s.counterKey(key)
	get, err := cli.Get(ctx, k)
	if err != nil {
		return 0, s.unavailable(err)
	}
	kvs := get.Kvs
	for attempt := 1; ; attempt++ {
		var cur, mod int64
		if len(kvs) > 0 {
			if cur, err = parseCounter(k, kvs[0].Value); err != nil {
				return 0, err
			}
			mod = kvs[0].ModRevision
		}
		if delta == 0 {
			return cur, nil
		}
		if (delta > 0 && cur > math.MaxInt64-delta) || (delta < 0 && cur < math.MinInt64-delta) {
			return 0, fmt.Errorf("%w: key %s: counter would overflow", core.ErrStoreValue, k)
		}
		next := cur + delta
		resp, err := cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(k), "=", mod)).
			Then(clientv3.OpPut(k, strconv.FormatInt(next, 10))).
			Else(clientv3.OpGet(k)).
			Commit()
		if err != nil {
			return 0, s.unavailable(err)
		}
		if resp.Succeeded {
			return next, nil
		}
		s.counterRetries.Add(1)
		if attempt == maxAddAttempts {
			return 0, fmt.Errorf("%w: key %s: %d attempts each lost the race to another instance's add; nothing was added", core.ErrStoreConflict, k, attempt)
		}
		kvs = resp.Responses[0].GetResponseRange().Kvs
		// A short random pause spreads writers that keep colliding.
		select {
		case <-ctx.Done():
			return 0, s.unavailable(ctx.Err())
		case <-time.After(time.Duration(rand.Int64N(int64(attempt) * int64(time.Millisecond)))):
		}
	}
}

// Counters implements middleware.CounterStore: one prefix read.
func (s *Store) Counters(prefix string) (map[string]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	cli, err := s.client()
	if err != nil {
		return nil, err
	}
	resp, err := cli.Get(ctx, s.counterKey(prefix), clientv3.WithPrefix())
	if err != nil {
		return nil, s.unavailable(err)
	}
	out := make(map[string]int64, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		n, err := parseCounter(string(kv.Key), kv.Value)
		if err != nil {
			return nil, err
		}
		out[strings.TrimPrefix(string(kv.Key), s.prefix+dirCounters)] = n
	}
	return out, nil
}

// Delete implements middleware.CounterStore: one prefix delete.
func (s *Store) Delete(prefix string) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	cli, err := s.client()
	if err != nil {
		return err
	}
	if _, err := cli.Delete(ctx, s.counterKey(prefix), clientv3.WithPrefix()); err != nil {
		return s.unavailable(err)
	}
	return nil
}
