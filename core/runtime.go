package core

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/socks5d/socks5d/middleware"
)

// Settings are the engine's own settings: per-connection timeouts, the
// drain at shutdown, BIND and UDP ASSOCIATE.
type Settings struct {
	HandshakeTimeout time.Duration
	ConnectTimeout   time.Duration
	Linger           time.Duration
	IdleTimeout      time.Duration
	// DrainTimeout is how long a stopping server lets connections finish.
	DrainTimeout time.Duration
	// Bind and UDP configure BIND and UDP ASSOCIATE (bind.go, udp.go).
	Bind BindSettings
	UDP  UDPSettings
	// ProxyTrusted are the sources whose connections must open with a
	// PROXY protocol header (socks.proxy_protocol.trusted); none: off.
	ProxyTrusted []netip.Prefix
}

// Stage is one compiled stage of a snapshot.
type Stage struct {
	StageConfig
	Middleware middleware.Middleware
}

// Snapshot is an immutable view of the live configuration: settings, users,
// the stages and the compiled handler. A connection loads it once and keeps
// it for its life.
type Snapshot struct {
	Settings Settings
	Users    *Users
	Stages   []Stage
	// Handler is the chain wrapped around the terminal handler.
	Handler middleware.Handler
	// chains are the named chains (`chains:`), compiled like the main one.
	chains map[string]compiledChain
}

// handler returns the handler of the named chain, "" the main chain; nil
// when the snapshot has no such chain (which ServeListener and compile
// prevent), so that a listener never falls back to another chain.
func (s *Snapshot) handler(chain string) middleware.Handler {
	if chain == "" {
		return s.Handler
	}
	if c, ok := s.chains[chain]; ok {
		return c.handler
	}
	return nil
}

// Draft is the mutable copy a change works on (see Runtime.Update).
type Draft struct {
	Settings Settings
	users    *Users
	// Chain may be edited: reordered, entries added, removed or changed.
	Chain []StageConfig
	// Chains are the named chains listeners may choose.
	Chains map[string][]StageConfig
}

// AddUser adds a user, hashing the password with bcrypt; a taken name is
// ErrUserExists.
func (d *Draft) AddUser(name, password string, role middleware.Role) error {
	if d.users.Has(name) {
		return fmt.Errorf("%w: %q", ErrUserExists, name)
	}
	return d.users.setNew(name, password, role)
}

// DeleteUser removes a user; the last ADMIN cannot be removed, nor a
// user given with -u (ErrUserFromFlag: the flag outranks the saved state,
// so the deletion could not hold).
func (d *Draft) DeleteUser(name string) error {
	e, ok := d.users.m[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrNoSuchUser, name)
	}
	if err := middleware.CheckRemoval(e.role, d.users.admins()); err != nil {
		return err
	}
	if e.fromFlag {
		return fmt.Errorf("%w: %q", ErrUserFromFlag, name)
	}
	delete(d.users.m, name)
	return nil
}

// Runtime holds the live Snapshot and serialises every change to it.
type Runtime struct {
	logger  hclog.Logger
	connLog hclog.Logger // named "socks"
	shared  *middleware.Shared

	mu   sync.Mutex // serialises Update; readers never take it
	snap atomic.Pointer[Snapshot]

	// store keeps administrative changes; state is what it holds now.
	// Both change only under mu.
	store Store
	state *State
	// cfg is the configuration in force (NewRuntime, Reload), which a
	// shared store's state is laid over; it changes only under mu.
	cfg *Config
	// rev is the shared store's revision applied (written under mu);
	// fleet is the shared store, set once by UseStore.
	rev   atomic.Int64
	fleet atomic.Pointer[fleetRef]

	sessions sessionTable
	nextID   atomic.Uint64
	// doors keeps the listeners' counters (frontdoor.go).
	doors frontDoors
	// conns counts connection goroutines, for Shutdown.
	conns sync.WaitGroup
	// loopsMu orders an accept loop's start (its conns.Add from zero)
	// before Shutdown's conns.Wait; stopped, under it, refuses loops
	// that start after Shutdown began.
	loopsMu sync.Mutex
	stopped bool
	// base is the parent of every connection's context; Shutdown cancels
	// it to end the connections that outlive the drain.
	base       context.Context
	cancelBase context.CancelCauseFunc
	// acceptErrors counts failed accepts (descriptor exhaustion).
	acceptErrors atomic.Int64

	// dialer is the base dialer every session starts with.
	dialer middleware.Dialer
	// resolver looks up the names BIND and UDP ASSOCIATE resolve
	// themselves; nil: net.DefaultResolver.
	resolver resolver
	// protected holds the server's own listeners, which clients may not
	// dial (see Protect).
	protected atomic.Pointer[protectSet]
	// isLocal, when set before Protect, replaces the kernel's answer to
	// "is this address the host's" (tests).
	isLocal func(netip.Addr) (bool, error)
	// dataDir is the configuration's data directory, for stages.
	dataDir string
	// bans is the fleet's ban board handed to stages (SetBanBoard).
	bans middleware.BanBoard
	// counters is where stages' counters persist (the store's, set by
	// UseStore); memCounters holds them before that.
	counters    atomic.Pointer[middleware.CounterStore]
	memCounters middleware.MemCounters
	// panics counts connections whose handler panicked and was recovered.
	panics atomic.Int64
	// udp holds the UDP associations' limits and counters; bindRefused
	// counts BIND peers refused for their address.
	udp         udpState
	bindRefused atomic.Int64
	// proxy counts PROXY protocol headers accepted and refused.
	proxy proxyState
	// Readiness (health.go): SOCKS accept loops running, the saved state
	// loaded (UseStore), and a drain begun (ServeSOCKS stopped by its
	// context, or Shutdown).
	accepting   atomic.Int32
	stateLoaded atomic.Bool
	draining    atomic.Bool
}

// NewRuntime compiles the configuration into the first snapshot. Errors
// wrap ErrConfig and name the stage or user at fault.
func NewRuntime(cfg *Config, logger hclog.Logger) (*Runtime, error) {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	r := &Runtime{
		logger:  logger,
		connLog: logger.Named("socks"),
		shared:  middleware.NewShared(),
		dataDir: cfg.DataDir,
		cfg:     cfg,
	}
	r.sessions.init()
	dialer := &net.Dialer{ControlContext: r.controlContext, KeepAliveConfig: cfg.SOCKS.KeepAliveConfig()}
	if !dialer.KeepAliveConfig.Enable {
		dialer.KeepAlive = -1 // off, as net.Dialer spells it
	}
	r.dialer = dialer
	r.state = newState()
	r.base, r.cancelBase = context.WithCancelCause(context.Background())
	users := newUsers()
	if err := users.setConfigured(cfg.Users); err != nil {
		return nil, err
	}
	d := &Draft{Settings: settingsOf(cfg), users: users, Chain: cloneChain(cfg.Chain), Chains: cloneChains(cfg.Chains)}
	s, err := r.compile(d)
	if errors.Is(err, ErrNobodyCanConnect) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	r.snap.Store(s)
	middleware.Activate(s.middlewares()...)
	return r, nil
}

// Snapshot returns the live snapshot.
func (r *Runtime) Snapshot() *Snapshot { return r.snap.Load() }

// Update applies a change: under the writer lock it clones the live
// configuration into a Draft, lets fn mutate it, validates and compiles the
// result and stores it. If fn or the compile fails, nothing changes and the
// error says why. There is never an instant in which a user or a stage is
// missing: connections see either the old snapshot or the new one.
func (r *Runtime) Update(fn func(*Draft) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, err := r.commit(func(d *Draft, _ *State) error { return fn(d) }, nil)
	if err != nil {
		return err
	}
	r.install(s)
	return nil
}

// commit clones the live configuration into a draft, lets fn change it
// (and st, when the change is to be saved) and compiles the result. The
// caller holds r.mu.
func (r *Runtime) commit(fn func(*Draft, *State) error, st *State) (*Snapshot, error) {
	old := r.snap.Load()
	d := &Draft{Settings: old.Settings, users: old.Users.clone(), Chain: cloneChain(stageConfigs(old.Stages)), Chains: old.chainConfigs()}
	if err := fn(d, st); err != nil {
		return nil, err
	}
	return r.compile(d)
}

// install makes s the live snapshot, activates its stages and cleans up
// those of the snapshot it replaced (middleware.Activator, Cleaner), and
// ends the sessions of users that no longer exist. The caller holds r.mu.
func (r *Runtime) install(s *Snapshot) {
	old := r.snap.Swap(s)
	middleware.Activate(s.middlewares()...)
	middleware.Cleanup(old.middlewares()...)
	for _, id := range r.sessions.orphans(s.Users) {
		r.sessions.kill(id, ErrUserDeleted)
	}
}

// compile builds every stage from its configuration and wraps each chain
// (the main one and the named ones) backwards around the terminal handler.
// When it fails, the stages it built are cleaned up (they never go live).
func (r *Runtime) compile(d *Draft) (*Snapshot, error) {
	s, err := r.build(d)
	if err != nil {
		middleware.Cleanup(s.middlewares()...)
		return nil, err
	}
	return s, nil
}

// build is compile but for the cleanup: on failure, s holds the stages
// built so far.
func (r *Runtime) build(d *Draft) (s *Snapshot, err error) {
	s = &Snapshot{Settings: d.Settings, Users: d.users}
	if err := r.doors.checkChains(d.Chains); err != nil {
		return s, err
	}
	s.Stages, err = r.compileStages(d, "chain", d.Chain)
	if err != nil {
		return s, err
	}
	if s.Users.Len() == 0 && !allowsAnonymous(s) && !hasExternalUsers(s) {
		return s, ErrNobodyCanConnect
	}
	s.Handler = r.wrap(s, s.Stages)
	for _, name := range slices.Sorted(maps.Keys(d.Chains)) {
		stages, err := r.compileStages(d, "chains."+name, d.Chains[name])
		if s.chains == nil {
			s.chains = map[string]compiledChain{}
		}
		s.chains[name] = compiledChain{stages: stages}
		if err != nil {
			return s, err
		}
		s.chains[name] = compiledChain{stages: stages, handler: r.wrap(s, stages)}
	}
	return s, nil
}

// wrap wraps stages backwards around a terminal handler for snapshot s.
func (r *Runtime) wrap(s *Snapshot, stages []Stage) middleware.Handler {
	var h middleware.Handler = &terminal{rt: r, settings: s.Settings, policies: policiesOf(stages)}
	for i := len(stages) - 1; i >= 0; i-- {
		h = stages[i].Middleware.Wrap(h)
	}
	return h
}

// compileStages builds the stages of one chain (key names it in errors)
// and checks their STATS keys; on failure it returns the stages built so
// far, for cleanup. A stage of a named chain shares its state
// (Params.Shared, keyed by the stage name) with the stage of the same name
// elsewhere, so counters and the LOGS ring add up across listeners.
func (r *Runtime) compileStages(d *Draft, key string, chain []StageConfig) ([]Stage, error) {
	stages := make([]Stage, 0, len(chain))
	present := map[string]bool{} // stage types so far
	for i, st := range chain {
		info, ok := middleware.Lookup(st.Type)
		if !ok {
			return stages, fmt.Errorf("%s[%d]: unknown stage type %q (known types: %s)", key, i, st.Type, strings.Join(middleware.Types(), ", "))
		}
		for _, dep := range info.Before {
			if present[dep] {
				return stages, fmt.Errorf("%s[%d] (%s): must come before every %q stage", key, i, st.Name, dep)
			}
		}
		mw, err := info.New(middleware.Params{
			Name:     st.Name,
			Config:   maps.Clone(st.Config),
			Logger:   r.logger.Named("middleware." + st.Name),
			Shared:   r.shared,
			Users:    liveUsers{rt: r, draft: d.users},
			DataDir:  r.dataDir,
			Bans:     r.bans,
			Counters: runtimeCounters{rt: r},
		})
		if err != nil {
			return stages, fmt.Errorf("%s[%d] (%s): %w", key, i, st.Name, err)
		}
		present[st.Type] = true
		stages = append(stages, Stage{StageConfig: st, Middleware: mw})
	}
	if err := r.checkStatKeys(stages); err != nil {
		return stages, err
	}
	return stages, nil
}

// chainOnlyStages are the stages of named chains whose name the main
// chain lacks (a stage that shares its name shares its state, and so its
// STATS, with the main chain's), once per name, by chain name.
func (s *Snapshot) chainOnlyStages() []Stage {
	seen := map[string]bool{}
	for _, st := range s.Stages {
		seen[st.Name] = true
	}
	var out []Stage
	for _, name := range slices.Sorted(maps.Keys(s.chains)) {
		for _, st := range s.chains[name].stages {
			if !seen[st.Name] {
				seen[st.Name] = true
				out = append(out, st)
			}
		}
	}
	return out
}

// chainConfigs returns the configurations of the named chains.
func (s *Snapshot) chainConfigs() map[string][]StageConfig {
	if len(s.chains) == 0 {
		return nil
	}
	out := make(map[string][]StageConfig, len(s.chains))
	for name, c := range s.chains {
		out[name] = cloneChain(stageConfigs(c.stages))
	}
	return out
}

func cloneChains(m map[string][]StageConfig) map[string][]StageConfig {
	if m == nil {
		return nil
	}
	out := make(map[string][]StageConfig, len(m))
	for name, c := range m {
		out[name] = cloneChain(c)
	}
	return out
}

// Reload applies a freshly loaded configuration: the settings, the chain
// and the configuration's users (users added at run time stay). Listener
// addresses change only with a restart. A failed reload changes nothing.
func (r *Runtime) Reload(cfg *Config) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, err := r.commit(func(d *Draft, _ *State) error {
		d.Settings = settingsOf(cfg)
		d.Chain = cloneChain(cfg.Chain)
		d.Chains = cloneChains(cfg.Chains)
		if err := d.users.setConfigured(cfg.Users); err != nil {
			return err
		}
		// What administrators changed stays changed.
		_, err := r.state.apply(d)
		return err
	}, nil)
	if err != nil {
		return err
	}
	r.cfg = cfg
	r.install(s)
	return nil
}

func settingsOf(cfg *Config) Settings {
	return Settings{
		HandshakeTimeout: cfg.SOCKS.HandshakeTimeout,
		ConnectTimeout:   cfg.SOCKS.ConnectTimeout,
		Linger:           cfg.SOCKS.Linger,
		IdleTimeout:      cfg.SOCKS.IdleTimeout,
		DrainTimeout:     cfg.SOCKS.DrainTimeout,
		Bind:             bindSettingsOf(cfg.SOCKS.Bind),
		UDP:              udpSettingsOf(cfg.SOCKS.UDP),
		ProxyTrusted:     proxyTrustedOf(cfg.SOCKS.ProxyProtocol),
	}
}

func allowsAnonymous(s *Snapshot) bool {
	for _, st := range s.Stages {
		if a, ok := st.Middleware.(middleware.AnonymousAccess); ok && a.AllowsAnonymous() {
			return true
		}
	}
	return false
}

// hasExternalUsers reports whether a stage accepts users from outside the
// user table (auth with a directory or a hook).
func hasExternalUsers(s *Snapshot) bool {
	for _, st := range s.Stages {
		if e, ok := st.Middleware.(middleware.ExternalSource); ok && e.HasExternalUsers() {
			return true
		}
	}
	return false
}

// middlewares returns the snapshot's stages, the named chains' included;
// none for a nil snapshot.
func (s *Snapshot) middlewares() []middleware.Middleware {
	if s == nil {
		return nil
	}
	out := make([]middleware.Middleware, 0, len(s.Stages))
	for _, st := range s.Stages {
		out = append(out, st.Middleware)
	}
	for _, name := range slices.Sorted(maps.Keys(s.chains)) {
		for _, st := range s.chains[name].stages {
			out = append(out, st.Middleware)
		}
	}
	return out
}

// stageConfigs returns the configurations of compiled stages.
func stageConfigs(stages []Stage) []StageConfig {
	out := make([]StageConfig, len(stages))
	for i, st := range stages {
		out[i] = st.StageConfig
	}
	return out
}

func cloneChain(c []StageConfig) []StageConfig {
	out := make([]StageConfig, len(c))
	for i, st := range c {
		out[i] = cloneStage(st)
	}
	return out
}

func cloneStage(st StageConfig) StageConfig {
	st.Config = maps.Clone(st.Config)
	if st.Config == nil {
		st.Config = map[string]any{}
	}
	return st
}

// stageStats appends st's statistics, if it keeps some, to out with
// their keys as STATS shows them.
func stageStats(out []middleware.Stat, st Stage) []middleware.Stat {
	src, ok := st.Middleware.(middleware.StatsSource)
	if !ok {
		return out
	}
	for _, s := range src.Stats() {
		s.Key = middleware.StatKey(st.Name, st.Type, s.Key)
		out = append(out, s)
	}
	return out
}

// engineStats appends the engine's own statistics to out.
func (r *Runtime) engineStats(out []middleware.Stat) []middleware.Stat {
	out = append(out,
		middleware.Stat{Key: "sessions_open", Value: int64(r.sessions.Len())},
		middleware.Stat{Key: "panics_recovered", Value: r.panics.Load()},
		middleware.Stat{Key: "accept_errors", Value: r.acceptErrors.Load()},
	)
	if snap := r.snap.Load(); snap != nil && len(snap.Settings.ProxyTrusted) > 0 || r.proxy.seen() {
		out = r.proxy.stats(out)
	}
	return append(r.storeStats(r.commandStats(out)), r.doors.statsLines()...)
}

// checkStatKeys refuses stages of which two, or one and the engine, would
// print the same STATS key.
func (r *Runtime) checkStatKeys(stages []Stage) error {
	owner := map[string]string{}
	for _, s := range r.proxy.stats(r.engineStats(nil)) {
		owner[s.Key] = "the engine"
	}
	for i, st := range stages {
		for _, s := range stageStats(nil, st) {
			if prev, dup := owner[s.Key]; dup {
				return fmt.Errorf("%w %q: chain[%d] (%s) and %s both print it (give one of them a different name:)", ErrDuplicateStat, s.Key, i, st.Name, prev)
			}
			owner[s.Key] = fmt.Sprintf("chain[%d] (%s)", i, st.Name)
		}
	}
	return nil
}
