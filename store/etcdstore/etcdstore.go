// Package etcdstore keeps socks5d's shared state (users, roles, live
// settings and rules) in etcd, for a fleet of instances behind one load
// balancer. It implements core.SharedStore: every change is a transaction
// that checks the revision it was based on, and every instance watches the
// prefix and applies what changed. It also implements middleware.BanBoard
// (bans leased for their length) and middleware.CounterStore (the quota
// stage's counts, one total for the fleet), and keeps a copy of the last
// state it saw in data_dir, to serve from when etcd is down at start.
package etcdstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/socks5d/socks5d/core"
	"github.com/socks5d/socks5d/middleware"
)

// CacheFile is the name, in data_dir, of the copy of the last shared state
// seen, served from when etcd is unreachable at start.
const CacheFile = "etcd-state.json"

var (
	_ core.SharedStore    = (*Store)(nil)
	_ core.StoreStats     = (*Store)(nil)
	_ middleware.BanBoard = (*Store)(nil)
)

// Store is the etcd store. Open it, hand it to Runtime.UseStore, run
// Runtime.FollowStore, and Close it at the end.
type Store struct {
	// cli is the etcd client, made on first use (client): with
	// credentials, making one needs etcd to answer.
	cli       atomic.Pointer[clientv3.Client]
	ccfg      clientv3.Config
	dialMu    sync.Mutex
	prefix    string
	endpoints string
	timeout   time.Duration
	cache     *core.FileStore
	log       hclog.Logger
	writer    string // who writes: host and process, in the revision key

	// Health, for STATS and /metrics.
	connected atomic.Bool
	revision  atomic.Int64 // last revision of the state seen and applied
	errs      atomic.Int64 // failed requests to etcd
	conflicts atomic.Int64 // changes refused because another instance changed first
	// counterRetries: counter Adds that lost a race and read again.
	counterRetries atomic.Int64
	// addMu: one counter Add at a time from this instance.
	addMu     sync.Mutex
	badValues atomic.Int64 // states refused because a value did not parse
	fromCache atomic.Bool  // serving the copy in data_dir, etcd not yet reached
	// readOnly: keep no copy in data_dir (a configuration check).
	readOnly atomic.Bool

	// badKey is the error of the last state seen that did not parse
	// ("" when it parsed): changes are refused while it holds.
	badMu  sync.Mutex
	badErr error

	// resync asks the watcher to reload everything (etcd is back).
	resync chan struct{}

	bansMu sync.RWMutex
	bans   map[netip.Prefix]time.Time
	banQ   chan ban
	bansWG sync.WaitGroup
	stop   chan struct{}
	once   sync.Once
}

type ban struct {
	group netip.Prefix
	d     time.Duration
}

// Open connects to etcd as cfg says (it does not wait for etcd to answer:
// LoadRevision does) and keeps its copy of the state in dataDir.
func Open(cfg core.StoreConfig, dataDir string, logger hclog.Logger) (*Store, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	ccfg := clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.DialTimeout,
		Username:    cfg.Username,
		Password:    cfg.Password,
		// The etcd client's own chatter (zap) is off: this package logs
		// what an operator needs, through hclog.
		Logger:               zap.NewNop(),
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
	}
	if cfg.TLS.CA != "" || cfg.TLS.Cert != "" {
		tc, err := tlsConfig(cfg.TLS)
		if err != nil {
			return nil, err
		}
		ccfg.TLS = tc
	}
	host, _ := os.Hostname()
	s := &Store{
		ccfg:      ccfg,
		prefix:    cfg.Prefix,
		endpoints: strings.Join(cfg.Endpoints, ","),
		timeout:   cfg.DialTimeout,
		cache:     core.NewFileStore(filepath.Join(dataDir, CacheFile)),
		log:       logger,
		writer:    fmt.Sprintf("%s/%d", host, os.Getpid()),
		resync:    make(chan struct{}, 1),
		bans:      map[netip.Prefix]time.Time{},
		banQ:      make(chan ban, 256),
		stop:      make(chan struct{}),
	}
	s.bansWG.Add(1)
	go s.postBans()
	return s, nil
}

func tlsConfig(c core.StoreTLSConfig) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CA != "" {
		pem, err := os.ReadFile(c.CA)
		if err != nil {
			return nil, fmt.Errorf("%w: store.tls.ca: %w", ErrTLS, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: store.tls.ca: %s holds no PEM certificate", ErrTLS, c.CA)
		}
		tc.RootCAs = pool
	}
	if c.Cert != "" {
		cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, fmt.Errorf("%w: store.tls.cert/key: %w", ErrTLS, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Close stops the store's goroutines and closes the client.
func (s *Store) Close() error {
	s.once.Do(func() { close(s.stop) })
	s.bansWG.Wait()
	if c := s.cli.Load(); c != nil {
		return c.Close()
	}
	return nil
}

// client returns the etcd client, making it if there is none yet. A
// failure costs up to dial_timeout and is described like any request's.
func (s *Store) client() (*clientv3.Client, error) {
	if c := s.cli.Load(); c != nil {
		return c, nil
	}
	s.dialMu.Lock()
	defer s.dialMu.Unlock()
	if c := s.cli.Load(); c != nil {
		return c, nil
	}
	c, err := clientv3.New(s.ccfg)
	if err != nil {
		return nil, s.unavailable(err)
	}
	s.cli.Store(c)
	return c, nil
}

// unavailable counts a failed request and describes it (describe).
func (s *Store) unavailable(err error) error {
	s.errs.Add(1)
	return describe(s.endpoints, s.timeout, err)
}

// describe wraps an etcd error as core.ErrStoreUnavailable, naming the
// endpoints and, for refused credentials or a timeout, saying so.
func describe(endpoints string, timeout time.Duration, err error) error {
	switch {
	case errors.Is(err, rpctypes.ErrAuthFailed), errors.Is(err, rpctypes.ErrUserEmpty), errors.Is(err, rpctypes.ErrPermissionDenied),
		errors.Is(err, rpctypes.ErrGRPCAuthFailed), errors.Is(err, rpctypes.ErrGRPCPermissionDenied), errors.Is(err, rpctypes.ErrGRPCUserEmpty):
		return fmt.Errorf("%w: %w: etcd at %s refused them (store.username/password): %w", core.ErrStoreUnavailable, ErrCredentials, endpoints, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: etcd at %s did not answer within %s", core.ErrStoreUnavailable, endpoints, timeout)
	}
	return fmt.Errorf("%w: etcd at %s: %w", core.ErrStoreUnavailable, endpoints, err)
}

// fetch reads the whole prefix: the state keys, the bans, the revision.
func (s *Store) fetch(ctx context.Context) (kvs map[string][]byte, bans map[netip.Prefix]time.Time, rev int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	cli, err := s.client()
	if err != nil {
		return nil, nil, 0, err
	}
	resp, err := cli.Get(ctx, s.prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, nil, 0, s.unavailable(err)
	}
	kvs = map[string][]byte{}
	bans = map[netip.Prefix]time.Time{}
	for _, kv := range resp.Kvs {
		rel := strings.TrimPrefix(string(kv.Key), s.prefix)
		switch kind(rel) {
		case dirBans:
			if g, until, ok := s.parseBan(rel, kv.Value); ok {
				bans[g] = until
			}
		case dirKills, dirCounters:
		default:
			kvs[rel] = kv.Value
		}
	}
	return kvs, bans, resp.Header.Revision, nil
}

// Load implements core.Store.
func (s *Store) Load() (*core.State, error) {
	st, _, err := s.LoadRevision()
	return st, err
}

// LoadRevision reads the shared state. When etcd cannot be reached it
// serves the copy kept in data_dir (and logs that it does), or fails when
// there is none. A value that does not parse is an error naming its key.
func (s *Store) LoadRevision() (*core.State, int64, error) {
	kvs, bans, rev, err := s.fetch(context.Background())
	if errors.Is(err, ErrCredentials) {
		return nil, 0, err // a configuration error, not etcd being down
	}
	if err != nil {
		st, cerr := s.cache.Load()
		if cerr != nil {
			return nil, 0, fmt.Errorf("%w: %w; and the copy in %s cannot be read: %w", ErrNoCopy, err, s.cache.Path, cerr)
		}
		if _, statErr := os.Stat(s.cache.Path); statErr != nil {
			return nil, 0, fmt.Errorf("%w (%s): %w", ErrNoCopy, s.cache.Path, err)
		}
		s.fromCache.Store(true)
		s.log.Warn("etcd unreachable at start: serving from the last copy of the shared state kept in data_dir; changes are refused until etcd answers",
			"copy", s.cache.Path, "error", err)
		return st, 0, nil
	}
	st, err := s.decodeState(kvs)
	if err != nil {
		return nil, 0, err
	}
	s.connected.Store(true)
	s.setBans(bans)
	s.revision.Store(rev)
	if len(kvs) == 0 {
		s.log.Info("the shared store holds no state under its prefix yet (a new fleet, or a wrong store.prefix?)", "prefix", s.prefix, "endpoints", s.endpoints)
	}
	s.keepCopy(st)
	return st, rev, nil
}

// CheckOnly makes the store write nothing in data_dir, for socks5d -t,
// which writes nothing.
func (s *Store) CheckOnly() { s.readOnly.Store(true) }

// keepCopy saves the state in data_dir for a start without etcd.
func (s *Store) keepCopy(st *core.State) {
	if s.readOnly.Load() {
		return
	}
	if err := s.cache.Save(st); err != nil {
		s.log.Warn("could not keep a copy of the shared state in data_dir", "error", err)
	}
}

// Save implements core.Store; a shared store writes changes with
// SaveChange, which knows what changed, so Save is refused.
func (s *Store) Save(*core.State) error {
	return fmt.Errorf("%w: the etcd store writes changes with SaveChange", core.ErrState)
}

// SaveChange implements core.SharedStore: one transaction that writes
// what changed from prev to next, and the revision key, if no state key
// changed after base.
func (s *Store) SaveChange(prev, next *core.State, base int64) (int64, error) {
	s.badMu.Lock()
	bad := s.badErr
	s.badMu.Unlock()
	if bad != nil {
		return 0, fmt.Errorf("this instance refused the store's latest state (%w); fix or delete that key first", bad)
	}
	if s.fromCache.Load() && base == 0 {
		return 0, fmt.Errorf("%w: etcd at %s has not answered since start (serving the copy in data_dir)", core.ErrStoreUnavailable, s.endpoints)
	}
	ops := s.diff(prev, next)
	if len(ops) == 0 {
		return base, nil
	}
	ops = append(ops, clientv3.OpPut(s.prefix+keyRevision, fmt.Sprintf(`{"by":%q,"at":%q}`, s.writer, time.Now().UTC().Format(time.RFC3339Nano))))
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.ModRevision(s.prefix+keyRevision), "<", base+1)}
	for _, d := range stateDirs {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(s.prefix+d), "<", base+1).WithPrefix())
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	cli, err := s.client()
	if err != nil {
		return 0, err
	}
	resp, err := cli.Txn(ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return 0, s.unavailable(err)
	}
	if !resp.Succeeded {
		s.conflicts.Add(1)
		return 0, fmt.Errorf("%w: another instance changed the shared state after revision %d, which this change was based on; nothing was written: retry the change", core.ErrStoreConflict, base)
	}
	return resp.Header.Revision, nil
}

// KillUser implements core.SharedStore: a key under kills/, leased for a
// short while, that every instance's watch sees.
func (s *Store) KillUser(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	cli, err := s.client()
	if err != nil {
		return err
	}
	lease, err := cli.Grant(ctx, 10)
	if err != nil {
		return s.unavailable(err)
	}
	val := fmt.Sprintf(`{"by":%q,"at":%q}`, s.writer, time.Now().UTC().Format(time.RFC3339Nano))
	if _, err := cli.Put(ctx, s.prefix+dirKills+name, val, clientv3.WithLease(lease.ID)); err != nil {
		return s.unavailable(err)
	}
	return nil
}

// Stats implements core.StoreStats.
func (s *Store) Stats() []middleware.Stat {
	b := func(v bool) int64 {
		if v {
			return 1
		}
		return 0
	}
	return []middleware.Stat{
		{Key: "store_connected", Value: b(s.connected.Load())},
		{Key: "store_revision", Value: s.revision.Load()},
		{Key: "store_errors", Value: s.errs.Load()},
		{Key: "store_conflicts", Value: s.conflicts.Load()},
		{Key: "store_bad_values", Value: s.badValues.Load()},
		{Key: "store_counter_retries", Value: s.counterRetries.Load()},
	}
}
