package socks5dmain

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/hashicorp/go-hclog"

	_ "github.com/socks5d/socks5d/builtin" // the builtin stages
	"github.com/socks5d/socks5d/core"
	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/pctp"
)

// core.Admin, a Runtime's administrators' view, is what the admin
// protocol administers.
var _ pctp.Admin = (*core.Admin)(nil)

// version is set at build time with
// -ldflags "-X github.com/socks5d/socks5d/socks5dmain.version=...".
var version = "dev"

// usageError is a bad flag or configuration: exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// ExitCode prints err (unless it is nil or -h's flag.ErrHelp) on stderr and
// maps it to the process exit status Run exits with: 0 for nil and -h, 2
// for a bad flag or configuration, 1 for any other error.
func ExitCode(err error, stderr io.Writer) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintln(stderr, "socks5d:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "socks5d:", err)
		return 1
	}
}

// userList collects repeated -u flags.
type userList []string

func (u *userList) String() string { return strconv.Itoa(len(*u)) + " users" }
func (u *userList) Set(v string) error {
	*u = append(*u, v)
	return nil
}

// flagKeys maps the seed's flags to configuration keys.
var flagKeys = map[string]string{
	"l": "socks.address",
	"p": "socks.port",
	"L": "pctp.address",
	"P": "pctp.port",
	"d": "log.level",
}

// RunContext is the whole server, given its command-line arguments (without
// the program name), where to print (stdout: -v, -t, hash; stderr: the log
// and errors). Run only maps its error to an exit status (ExitCode).
//
// It serves until ctx is cancelled or SIGINT/SIGTERM arrives, then drains
// (a second signal ends the drain at once); SIGHUP reloads the
// configuration file. The signals are the process's: run one server per
// process. `hash` as the first argument reads a password from os.Stdin.
func RunContext(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "hash" {
		return runHash(args[1:], os.Stdin, stdout, stderr)
	}
	fs := flag.NewFlagSet("socks5d", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configFile := fs.String("c", "", "configuration `file` (default "+core.DefaultConfigFile+" if it exists, else built-in defaults)")
	fs.String("l", "", "SOCKS listen `address` (default 0.0.0.0)")
	fs.String("p", "", "SOCKS `port` (default 1080)")
	fs.String("L", "", "PCTP admin listen `address` (default 127.0.0.1)")
	fs.String("P", "", "PCTP admin `port` (default 8080)")
	fs.String("d", "", "log `level`: DEBUG, INFO, WARN, ERROR, NONE (default INFO)")
	var users userList
	fs.Var(&users, "u", "initial ADMIN `user:pass` (repeatable; default none)")
	check := fs.Bool("t", false, "check the configuration and exit (status 0 if valid, 2 if not; default off)")
	var showVersion bool
	fs.BoolVar(&showVersion, "v", false, "print the version, module, VCS revision and Go version, and exit (default off; also --version)")
	fs.BoolVar(&showVersion, "version", false, "the same as -v")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: socks5d [flags]\n       socks5d hash    (reads a password, prints a bcrypt hash for the config file)\n\nA SOCKS5 proxy with a live middleware chain, administered over PCTP.\n\nFlags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(fs.Output(), "  -h, --help\n    \tthis help\n")
		fmt.Fprintf(fs.Output(), "\nEnvironment: %sSECTION__KEY overrides the file, e.g. %sSOCKS__PORT=1081.\n", core.EnvPrefix, core.EnvPrefix)
		fmt.Fprintf(fs.Output(), "\nStage types for the chain: list (- use: TYPE):\n")
		for _, t := range middleware.Types() {
			info, _ := middleware.Lookup(t)
			fmt.Fprintf(fs.Output(), "  %-11s %s\n", t, info.Doc)
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q (see -h)", fs.Arg(0))}
	}
	if showVersion {
		io.WriteString(stdout, versionText())
		return nil
	}
	flags := map[string]any{}
	fs.Visit(func(f *flag.Flag) {
		if key, ok := flagKeys[f.Name]; ok {
			flags[key] = f.Value.String()
		}
	})
	load := func() (*core.Config, error) {
		cfg, err := core.LoadConfig(core.LoadOptions{File: *configFile, Environ: os.Environ(), Flags: flags, Users: users})
		if err != nil {
			return nil, flagError(err, flags)
		}
		return cfg, nil
	}
	cfg, err := load()
	if err != nil {
		return usageError{err}
	}
	level, _ := core.ParseLevel(cfg.Log.Level) // validated by LoadConfig
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "socks5d",
		Level:      level,
		Output:     stderr,
		JSONFormat: cfg.Log.Format == "json",
	})
	rt, err := core.NewRuntime(cfg, logger)
	if errors.Is(err, core.ErrNobodyCanConnect) {
		return usageError{fmt.Errorf("%w\n  add a user with -u admin:PASSWORD, a users: entry in the config file,\n  or allow anonymous access with `anonymous: true` on the auth stage", err)}
	}
	if err != nil {
		return usageError{err}
	}
	// The data directory is created (0700) at start, and refused when
	// others may write in it; a check leaves nothing behind.
	prepareDataDir := core.PrepareDataDir
	if *check {
		prepareDataDir = core.CheckDataDir
	}
	if err := prepareDataDir(cfg.DataDir); err != nil {
		return usageError{err}
	}
	store, statePath, closeStore, err := openStore(cfg, logger, *check)
	if err != nil {
		return usageError{err}
	}
	defer closeStore()
	skipped, err := rt.UseStore(store)
	if err == nil {
		err = shareBans(rt, store)
	}
	if err != nil {
		return usageError{err}
	}
	for _, key := range skipped {
		logger.Warn("saved setting not applied: its stage is not in the chain", "key", key, "state", statePath)
	}
	for _, w := range core.StartupWarnings(cfg, statePath) {
		logger.Warn(w.Msg, w.Args...)
	}
	if *check { // a check writes nothing
		fmt.Fprintf(stdout, "socks5d: configuration OK (%s; chain %s)\n", sourceOf(cfg), chainOf(cfg))
		return nil
	}

	if fs, ok := store.(*core.FileStore); ok {
		if err := fs.RemoveStale(); err != nil {
			logger.Warn("could not remove a temporary file left by an interrupted save", "error", err)
		}
	}

	// Signals are caught from before the listeners exist, so a signal sent
	// once the log says where the server listens is never the default
	// action (which, for SIGHUP, would end the process).
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	socksLn, err := cfg.SOCKS.ListenConfig().Listen(ctx, "tcp", net.JoinHostPort(cfg.SOCKS.Address, strconv.Itoa(cfg.SOCKS.Port)))
	if err != nil {
		return fmt.Errorf("SOCKS listener: %w", err)
	}
	pctpLn, err := net.Listen("tcp", net.JoinHostPort(cfg.PCTP.Address, strconv.Itoa(cfg.PCTP.Port)))
	if err != nil {
		socksLn.Close()
		return fmt.Errorf("PCTP listener: %w", err)
	}
	doors, err := openFrontDoors(ctx, cfg)
	if err != nil {
		socksLn.Close()
		pctpLn.Close()
		return err
	}
	var metricsLn net.Listener
	if cfg.Metrics.Enabled {
		metricsLn, err = net.Listen("tcp", net.JoinHostPort(cfg.Metrics.Address, strconv.Itoa(cfg.Metrics.Port)))
		if err != nil {
			socksLn.Close()
			pctpLn.Close()
			doors.close()
			return fmt.Errorf("metrics listener: %w", err)
		}
	}
	// Clients may not reach these listeners through the proxy.
	own := append([]net.Addr{socksLn.Addr(), pctpLn.Addr()}, doors.addrs()...)
	if metricsLn != nil {
		own = append(own, metricsLn.Addr())
	}
	rt.Protect(own...)
	instance := cfg.InstanceName(socksLn.Addr())
	logger.Info("configuration loaded", "source", sourceOf(cfg), "chain", chainOf(cfg), "users", len(cfg.Users), "instance", instance)
	logger.Info("SOCKS5 proxy listening", "address", socksLn.Addr().String())
	logger.Info("PCTP admin listening", "address", pctpLn.Addr().String(), "tls", cfg.PCTP.TLS.Enabled())
	if metricsLn != nil {
		logger.Info("metrics listening", "address", "http://"+metricsLn.Addr().String()+"/metrics")
	}

	serveCtx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	var wg sync.WaitGroup
	errs := make(chan error, 3+len(cfg.Listeners))
	serve := func(ctx context.Context, name string, fn func(context.Context, net.Listener) error, ln net.Listener) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(ctx, ln); err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	admin := &pctp.Server{Admin: rt.Admin(), Logger: logger.Named("pctp")}
	go rt.FollowStore(serveCtx) // a shared store's changes, applied here
	serve(serveCtx, "SOCKS", rt.ServeSOCKS, socksLn)
	serve(serveCtx, "PCTP", admin.Serve, doors.pctpListener(pctpLn))
	doors.serve(logger, func(name string, spec core.ListenerSpec, ln net.Listener) {
		serve(serveCtx, name, func(ctx context.Context, ln net.Listener) error { return rt.ServeListener(ctx, ln, spec) }, ln)
	})
	// The metrics listener serves through the drain, so that /ready can
	// tell load balancers the server is draining.
	metricsCtx, stopMetrics := context.WithCancel(context.Background())
	defer stopMetrics()
	if metricsLn != nil {
		serve(metricsCtx, "metrics", func(ctx context.Context, ln net.Listener) error {
			return serveMetrics(ctx, ln, rt, instance, cfg.Metrics.Pprof)
		}, metricsLn)
	}

	var runErr error
wait:
	for {
		select {
		case <-ctx.Done():
			break wait
		case err := <-errs:
			runErr = err
			break wait
		case sig := <-sigs:
			if sig != syscall.SIGHUP {
				logger.Info("signal received; stopping", "signal", sig.String())
				break wait
			}
			// Log rotation moved the files away and signalled: reopen
			// them even if the reload below is rejected.
			rt.ReopenFiles()
			doors.reloadCerts(logger)
			before := rt.Admin().Users()
			next, err := load()
			if err == nil {
				err = rt.Reload(next)
			}
			if err != nil {
				logger.Error("reload rejected; the running configuration is unchanged", "error", err)
				continue
			}
			// Admins the reload removed are logged out of PCTP too.
			for _, u := range before {
				if !slices.ContainsFunc(rt.Admin().Users(), func(v middleware.User) bool { return v.Name == u.Name }) {
					admin.EndSessionsOf(u.Name)
				}
			}
			if l, _ := core.ParseLevel(next.Log.Level); l != logger.GetLevel() {
				logger.SetLevel(l)
			}
			if restart := needsRestart(cfg, next); restart != "" {
				logger.Warn("reloaded, but these changes need a restart", "keys", restart)
			}
			logger.Info("configuration reloaded", "source", sourceOf(next), "chain", chainOf(next))
		}
	}

	// Stop accepting at once, then let open connections finish.
	stopServing()
	drain := rt.Snapshot().Settings.DrainTimeout // as last reloaded
	drainCtx, cancelDrain := context.WithTimeout(context.Background(), drain)
	defer cancelDrain()
	go func() {
		for {
			select {
			case sig := <-sigs:
				if sig == syscall.SIGHUP {
					logger.Info("reload ignored while stopping")
					continue
				}
				cancelDrain() // a second stop signal: stop now
				return
			case <-drainCtx.Done():
				return
			}
		}
	}()
	logger.Info("draining connections", "timeout", drain)
	if closed := rt.Shutdown(drainCtx); closed > 0 {
		logger.Warn("closed connections still open after the drain", "count", closed)
	}
	stopMetrics()
	wg.Wait()
	if err := rt.Close(); err != nil {
		logger.Error("closing", "error", err)
	}
	logger.Info("stopped")
	return runErr
}

// needsRestart names the settings a reload cannot apply: listeners, the
// log format, the data directory and the instance's name.
func needsRestart(old, next *core.Config) string {
	var keys []string
	if old.SOCKS.Address != next.SOCKS.Address || old.SOCKS.Port != next.SOCKS.Port {
		keys = append(keys, "socks.address/port")
	}
	if old.PCTP != next.PCTP {
		keys = append(keys, "pctp")
	}
	if listenersChanged(old, next) {
		keys = append(keys, "listeners")
	}
	if old.Metrics != next.Metrics {
		keys = append(keys, "metrics")
	}
	if old.Log.Format != next.Log.Format {
		keys = append(keys, "log.format")
	}
	if old.DataDir != next.DataDir {
		keys = append(keys, "data_dir")
	}
	if old.Instance != next.Instance {
		keys = append(keys, "instance_name")
	}
	return strings.Join(keys, ", ")
}

func sourceOf(cfg *core.Config) string {
	if cfg.Source == "" {
		return "built-in defaults"
	}
	return cfg.Source
}

func chainOf(cfg *core.Config) string {
	stages := make([]string, 0, len(cfg.Chain))
	for _, st := range cfg.Chain {
		stages = append(stages, st.Name)
	}
	return strings.Join(stages, " → ")
}

// flagError makes a configuration error about a key that was set by a flag
// name the flag too.
func flagError(err error, set map[string]any) error {
	var ke *core.KeyError
	if !errors.As(err, &ke) {
		return err
	}
	for f, key := range flagKeys {
		if _, ok := set[key]; ok && key == ke.Key {
			return fmt.Errorf("%w (flag -%s)", err, f)
		}
	}
	return err
}

// buildVersion is socks5d's version: the one set at build time, else the
// module version Go recorded (none for a build from a work tree, or from a
// local replacement), else v.
func buildVersion(v string, bi *debug.BuildInfo, ok bool) string {
	if v != "dev" || !ok {
		return v
	}
	if m := socks5dModule(bi); m != nil && m.Replace == nil && m.Version != "" && m.Version != "(devel)" {
		return m.Version
	}
	return v
}

// versionText is what -v prints: the version, then the build facts Go
// recorded in the binary (runtime/debug): module, VCS revision, Go version.
//
//	socks5d v1.4.0
//	module    github.com/socks5d/socks5d
//	revision  5a92b5f0c1d2... (2026-12-03T07:00:00Z, modified)
//	go        go1.26.8 linux/amd64
//
// A server built in a module of its own (socks5dmain.Run) names that
// module, then socks5d's as it required it:
//
//	module    example.com/myproxy
//	socks5d   github.com/socks5d/socks5d v1.4.0
func versionText() string {
	bi, ok := debug.ReadBuildInfo()
	return formatVersion(buildVersion(version, bi, ok), bi, ok)
}

// formatVersion is versionText for given build information.
func formatVersion(v string, bi *debug.BuildInfo, ok bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "socks5d %s\n", v)
	if !ok {
		b.WriteString("(no build information in this binary)\n")
		return b.String()
	}
	set := map[string]string{}
	for _, s := range bi.Settings {
		set[s.Key] = s.Value
	}
	fmt.Fprintf(&b, "module    %s\n", bi.Main.Path)
	if m := socks5dModule(bi); m != nil && m != &bi.Main {
		dep := m.Path + " " + m.Version
		if r := m.Replace; r != nil {
			dep += " => " + strings.TrimSpace(r.Path+" "+r.Version)
		}
		fmt.Fprintf(&b, "socks5d   %s\n", dep)
	}
	rev := "unknown (built without VCS information)"
	if r := set["vcs.revision"]; r != "" {
		var notes []string
		if t := set["vcs.time"]; t != "" {
			notes = append(notes, t)
		}
		if set["vcs.modified"] == "true" {
			notes = append(notes, "modified")
		}
		rev = r
		if len(notes) > 0 {
			rev += " (" + strings.Join(notes, ", ") + ")"
		}
	}
	fmt.Fprintf(&b, "revision  %s\n", rev)
	fmt.Fprintf(&b, "go        %s %s/%s\n", bi.GoVersion, cmp.Or(set["GOOS"], runtime.GOOS), cmp.Or(set["GOARCH"], runtime.GOARCH))
	return b.String()
}
