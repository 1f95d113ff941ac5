// Command socks5-bench measures a SOCKS5 server, or two side by side,
// against loopback targets it starts itself, and sets every figure beside
// the same work done directly without a proxy.
//
// It starts each server from a command template in which {port} (the
// SOCKS port, chosen free on 127.0.0.1), {port2} (a second free port, e.g.
// for an admin listener), {port3} (a third, for an HTTP CONNECT listener
// with --vs-http), {user} and {pass} are replaced:
//
//	socks5-bench --server 'microsocks -i 127.0.0.1 -p {port} -u {user} -P {pass}'
//	socks5-bench --server 'socks5d -l 127.0.0.1 -p {port} -L 127.0.0.1 -P {port2} -u {user}:{pass}' \
//	    --vs 'microsocks -i 127.0.0.1 -p {port} -u {user} -P {pass}'
//
// It measures (a) bulk throughput, 1 stream and --streams streams, upload
// to a sink and download from a source; (b) full connection cycles per
// second (connect, greeting, username/password auth, CONNECT, 8-byte echo,
// close), sequential and --par-way, with p50/p99 latency; (c) --held
// relayed connections open at once (lowered to fit RLIMIT_NOFILE): how many
// succeeded, the server's RSS growth per connection and its CPU seconds;
// (d) 64-byte round-trip p50/p99 over one established connection. Bulk
// and cycles also report the server's CPU time (user + system, from
// /proc) per GiB and per cycle.
// With --vs-http the second server is the first one reached over HTTP
// CONNECT at {port3} (Proxy-Authorization: Basic), so the table sets HTTP
// CONNECT beside SOCKS5 on one server.
// With --vs the servers take turns on every measurement (which one goes
// first alternates too); --repeat N reports medians of N turns; --short is
// a smoke run of a few seconds; --json prints the report as JSON; --plot
// FILE.svg also draws every figure as a chart (direct, A and B side by
// side, whiskers spanning the repeats' range). Every
// size has a flag, 0 skips a measurement, and every loop is bounded by a
// count and a time limit. The bench raises its soft RLIMIT_NOFILE to the
// hard limit before starting servers, so they inherit it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "socks5-bench:", err)
		os.Exit(1)
	}
}

// options are the parsed flags.
type options struct {
	server, vs   string
	upstream     string
	vsHTTP       bool
	user, pass   string
	json         bool
	plot         string
	short        bool
	quiet        bool
	dir          string
	startTimeout time.Duration

	bulkBytes int64
	bulkTime  time.Duration
	streams   int

	cycles    int
	cyclesPar int
	par       int
	cycleTime time.Duration

	held     int
	heldTime time.Duration

	rtt     int
	rttTime time.Duration

	repeat int
}

// shortDefaults are the sizes of --short, for flags not given explicitly.
var shortDefaults = map[string]string{
	"bulk-bytes": "8MiB",
	"bulk-time":  "1s",
	"cycles":     "200",
	"cycles-par": "400",
	"cycle-time": "2s",
	"held":       "200",
	"held-time":  "10s",
	"rtt":        "500",
	"rtt-time":   "1s",
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("socks5-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: socks5-bench --server 'TEMPLATE' [--vs 'TEMPLATE'] [flags]

Runs a SOCKS5 server (and with --vs a second one) from a command template
and measures it against loopback targets, beside the same work done
directly. Placeholders: {port} {port2} {user} {pass}, and {upstream}
(host:port of the --upstream server). Setting a count or size to 0 skips
that measurement.

flags:
`)
		fs.PrintDefaults()
	}
	bulk := sizeFlag(1 << 30)
	fs.StringVar(&o.server, "server", "", "command template of the server under test (A); must contain {port}")
	fs.StringVar(&o.vs, "vs", "", "command template of a second server (B), measured in turns with A")
	fs.StringVar(&o.upstream, "upstream", "", "command template of an upstream server started first; its address fills {upstream} in the other templates, and without --vs it is B itself (one hop, beside A's chain of two)")
	fs.BoolVar(&o.vsHTTP, "vs-http", false, "B is server A reached over HTTP CONNECT at 127.0.0.1:{port3} (the template opens an HTTP or mixed listener there); not with --vs")
	fs.StringVar(&o.user, "user", "bench", "username for {user} and RFC 1929 auth; empty disables auth")
	fs.StringVar(&o.pass, "pass", "bench-secret", "password for {pass}")
	fs.BoolVar(&o.json, "json", false, "print JSON instead of a table")
	fs.StringVar(&o.plot, "plot", "", "also draw every figure as a chart (direct, A and B side by side, whiskers: the range of the repeats) into this SVG file")
	fs.BoolVar(&o.short, "short", false, "tiny sizes (a smoke run of a few seconds); explicit flags still win")
	fs.BoolVar(&o.quiet, "quiet", false, "no progress lines on stderr")
	fs.StringVar(&o.dir, "dir", "", "working directory of the server processes (default: current)")
	fs.DurationVar(&o.startTimeout, "start-timeout", 10*time.Second, "how long a server may take to accept")
	fs.Var(&bulk, "bulk-bytes", "bytes per stream for bulk throughput (K, M, G suffixes)")
	fs.DurationVar(&o.bulkTime, "bulk-time", 4*time.Second, "time limit of each bulk run")
	fs.IntVar(&o.streams, "streams", 8, "streams of the multi-stream bulk runs (1 disables them)")
	fs.IntVar(&o.cycles, "cycles", 5000, "connection cycles, sequential")
	fs.IntVar(&o.cyclesPar, "cycles-par", 20000, "connection cycles, parallel")
	fs.IntVar(&o.par, "par", 64, "workers of the parallel cycles")
	fs.DurationVar(&o.cycleTime, "cycle-time", 3*time.Second, "time limit of each cycles run")
	fs.IntVar(&o.held, "held", 10000, "connections held open at once (lowered to fit the open-file limit)")
	fs.DurationVar(&o.heldTime, "held-time", 20*time.Second, "time limit of each pass over the held connections (open, re-check)")
	fs.IntVar(&o.rtt, "rtt", 20000, "64-byte round trips")
	fs.DurationVar(&o.rttTime, "rtt-time", 3*time.Second, "time limit of each round-trip run")
	fs.IntVar(&o.repeat, "repeat", 1, "run every measurement but the held one this many times, in turns, and report the medians")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.short {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for name, v := range shortDefaults {
			if !set[name] {
				if err := fs.Set(name, v); err != nil {
					return o, err
				}
			}
		}
	}
	o.bulkBytes = int64(bulk)
	if o.server == "" {
		fs.Usage()
		return o, errors.New("--server is required")
	}
	if o.vsHTTP && (o.vs != "" || o.upstream != "") {
		return o, errors.New("--vs-http, --vs and --upstream each name server B; give one")
	}
	for _, c := range []struct {
		name string
		bad  bool
	}{
		{"--streams", o.streams < 1},
		{"--par", o.par < 1},
		{"--repeat", o.repeat < 1 || o.repeat > 99},
		{"--cycles", o.cycles < 0},
		{"--cycles-par", o.cyclesPar < 0},
		{"--held", o.held < 0},
		{"--rtt", o.rtt < 0},
		{"--bulk-time", o.bulkTime <= 0},
		{"--cycle-time", o.cycleTime <= 0},
		{"--held-time", o.heldTime <= 0},
		{"--rtt-time", o.rttTime <= 0},
		{"--start-timeout", o.startTimeout <= 0},
	} {
		if c.bad {
			return o, fmt.Errorf("%s out of range", c.name)
		}
	}
	return o, nil
}

// run is the whole command: parse args, start targets and servers, run
// the phases, print the report. It returns an error when a measurement
// failed, after printing what it has.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	opt, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	began := time.Now()
	progress := func(format string, a ...any) {
		if !opt.quiet {
			fmt.Fprintf(stderr, "socks5-bench: "+format+"\n", a...)
		}
	}

	// Before any server starts, so that it inherits the raised limit.
	nofile, err := raiseNofile()
	if err != nil {
		return fmt.Errorf("raising RLIMIT_NOFILE: %w", err)
	}

	tg, err := startTargets()
	if err != nil {
		return fmt.Errorf("starting loopback targets: %w", err)
	}
	defer tg.Close()

	b := &bench{opt: opt, tg: tg}
	direct := &endpoint{label: "direct", name: "direct"}
	var servers []*endpoint
	templates := []string{opt.server}
	if opt.vs != "" {
		templates = append(templates, opt.vs)
	}
	// --upstream: started first; {upstream} is its address; without --vs
	// it is B itself (the template "" below), one hop beside A's chain.
	var extra []string
	var up *server
	if opt.upstream != "" {
		if up, err = startServer(ctx, opt.upstream, opt.user, opt.pass, opt.dir, opt.startTimeout); err != nil {
			return fmt.Errorf("upstream: %w", err)
		}
		defer up.stop()
		progress("upstream = %s (pid %d) on %s", up.name, up.pid(), up.addr)
		extra = []string{"upstream", up.addr}
		if opt.vs == "" {
			templates = append(templates, "") // B: the upstream, one hop
		}
	}
	for i, tmpl := range templates {
		label := string(rune('a' + i))
		srv := up
		if tmpl != "" {
			if srv, err = startServer(ctx, tmpl, opt.user, opt.pass, opt.dir, opt.startTimeout, extra...); err != nil {
				return fmt.Errorf("server %s: %w", label, err)
			}
			defer srv.stop()
		}
		e := &endpoint{label: label, name: srv.name, proxy: srv.addr, user: opt.user, pass: opt.pass, srv: srv}
		if tmpl == "" {
			e.name += " (upstream, one hop)"
		} else if up != nil && i == 0 {
			e.name += " (chain of two)"
		} else if i == 1 && e.name == servers[0].name {
			e.name += "#2"
		}
		progress("%s = %s (pid %d) on %s", e.label, e.name, srv.pid(), srv.addr)
		// One cycle first, so a server that cannot relay fails clearly.
		if err := b.cycle(ctx, e, time.Now().Add(opTimeout)); err != nil {
			return fmt.Errorf("%s does not relay a test connection: %w\nits output:\n%s", e.name, err, srv.logTail(4096))
		}
		servers = append(servers, e)
		if opt.vsHTTP {
			h := &endpoint{label: "b", name: e.name + " http", proxy: srv.addr3, http: true, user: opt.user, pass: opt.pass, srv: srv}
			progress("b = %s over HTTP CONNECT on %s", e.name, srv.addr3)
			if err := b.cycle(ctx, h, time.Now().Add(opTimeout)); err != nil {
				return fmt.Errorf("%s does not relay a test connection over HTTP CONNECT at {port3}: %w\nits output:\n%s", e.name, err, srv.logTail(4096))
			}
			templates = append(templates, opt.server)
			servers = append(servers, h)
		}
	}

	limits := []uint64{nofile}
	for _, e := range servers {
		if l, err := procNofile(e.srv.pid()); err == nil {
			limits = append(limits, l)
		}
	}
	b.held = fitHeld(opt.held, limits...)
	if b.held < opt.held {
		b.notes = append(b.notes, fmt.Sprintf("held connections lowered from %d to %d to fit the open-file limits %v (2 descriptors per connection on each side, %d kept back)", opt.held, b.held, limits, fdReserve))
	}

	// Phases in table order; exec is the order they run in (held first,
	// while each server's memory is fresh).
	phases := b.phases()
	exec := []int{}
	for i, ph := range phases {
		if ph.name == "held" {
			exec = append([]int{i}, exec...)
		} else {
			exec = append(exec, i)
		}
	}
	results := make([]map[string][]float64, len(phases))
	ranges := make([]map[string][][2]float64, len(phases))
	errs := make([]map[string]error, len(phases))
	for n, pi := range exec {
		ph := phases[pi]
		results[pi] = map[string][]float64{}
		ranges[pi] = map[string][][2]float64{}
		errs[pi] = map[string]error{}
		runs := map[string][][]float64{}
		repeat := opt.repeat
		if ph.once {
			repeat = 1
		}
		for r := range repeat {
			order := []*endpoint{direct}
			for k := range servers { // alternate which server goes first
				order = append(order, servers[(k+n+r)%len(servers)])
			}
			for _, e := range order {
				if err := ctx.Err(); err != nil {
					return err
				}
				if errs[pi][e.label] != nil {
					continue
				}
				t0 := time.Now()
				vals, err := ph.run(ctx, e)
				if err == nil && len(vals) != len(ph.rows) {
					err = fmt.Errorf("internal: %d figures for %d rows", len(vals), len(ph.rows))
				}
				if err != nil {
					errs[pi][e.label] = err
					progress("%-22s %-12s FAILED: %v", ph.name, e.name, err)
					continue
				}
				runs[e.label] = append(runs[e.label], vals)
				progress("%-22s %-12s %v  (%.1fs)", ph.name, e.name, roundAll(vals), time.Since(t0).Seconds())
			}
		}
		for label, rs := range runs {
			if errs[pi][label] == nil {
				results[pi][label] = medians(rs)
				ranges[pi][label] = extremes(rs)
			}
		}
	}

	rep := &Report{
		Settings: Settings{
			BulkBytes: opt.bulkBytes, BulkTime: opt.bulkTime.Seconds(), Streams: opt.streams,
			Cycles: opt.cycles, CyclesPar: opt.cyclesPar, Par: opt.par, CycleTime: opt.cycleTime.Seconds(),
			HeldWanted: opt.held, Held: b.held, RTT: opt.rtt, RTTTime: opt.rttTime.Seconds(),
			Nofile: nofile, GOMAXPROCS: runtime.GOMAXPROCS(0), AlternateAB: len(servers) > 1,
			Repeat: opt.repeat,
		},
	}
	for _, e := range servers {
		cmd := templates[e.label[0]-'a']
		if cmd == "" {
			cmd = opt.upstream // B is the upstream
		}
		rep.Servers = append(rep.Servers, ServerInfo{Label: e.label, Name: e.name, Command: cmd})
	}
	failed := 0
	for pi, ph := range phases {
		for ri, rs := range ph.rows {
			row := Row{Metric: rs.metric, Unit: rs.unit, Better: rs.better, sub: rs.sub}
			get := func(label string) *float64 {
				if err, bad := errs[pi][label]; bad {
					if ri == 0 {
						failed++
						b.notes = append(b.notes, fmt.Sprintf("%s: %s: %v", nameOf(label, direct, servers), ph.name, err))
					}
					if row.Errors == nil {
						row.Errors = map[string]string{}
					}
					row.Errors[label] = err.Error()
					return nil
				}
				vals, ok := results[pi][label]
				if !ok || math.IsNaN(vals[ri]) {
					return nil
				}
				v := vals[ri]
				if rg := ranges[pi][label][ri]; !math.IsNaN(rg[0]) {
					if row.Range == nil {
						row.Range = map[string][2]float64{}
					}
					row.Range[label] = rg
				}
				return &v
			}
			row.Direct = get("direct")
			row.A = get("a")
			if len(servers) > 1 {
				row.B = get("b")
			}
			row.fillRatios()
			rep.Rows = append(rep.Rows, row)
		}
	}
	for _, e := range servers {
		if e.srv.exited() {
			failed++
			b.notes = append(b.notes, fmt.Sprintf("%s: exited during the run (%v); its output ends:\n%s", e.name, e.srv.err, e.srv.logTail(2048)))
		}
	}
	rep.Notes = b.notes
	rep.Elapsed = time.Since(began).Seconds()

	if opt.json {
		err = writeJSON(stdout, rep)
	} else {
		err = writeTable(stdout, rep)
	}
	if err != nil {
		return err
	}
	if opt.plot != "" {
		if err := savePlot(opt.plot, rep); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d measurement(s) failed; see the notes", failed)
	}
	return nil
}

// phases lists the measurements in table order, leaving out those sized 0.
func (b *bench) phases() []phase {
	o := b.opt
	var ps []phase
	if o.bulkBytes > 0 {
		for _, streams := range []int{1, o.streams} {
			if streams == 1 && len(ps) > 0 {
				break // --streams 1: no separate multi-stream runs
			}
			for _, up := range []bool{true, false} {
				dir := "download"
				if up {
					dir = "upload"
				}
				what := fmt.Sprintf("%d streams", streams)
				if streams == 1 {
					what = "1 stream"
				}
				ps = append(ps, phase{
					name: fmt.Sprintf("bulk %s x%d", dir, streams),
					rows: []rowSpec{
						{fmt.Sprintf("bulk %s, %s", dir, what), "GiB/s", "higher", false},
						{"server CPU per GiB", "s", "lower", true},
					},
					run: func(ctx context.Context, e *endpoint) ([]float64, error) {
						return b.bulk(ctx, e, up, streams)
					},
				})
			}
		}
	}
	for _, c := range []struct {
		total, par int
		label      string
	}{
		{o.cycles, 1, "sequential"},
		{o.cyclesPar, o.par, fmt.Sprintf("%d-way", o.par)},
	} {
		if c.total == 0 {
			continue
		}
		ps = append(ps, phase{
			name: "cycles " + c.label,
			rows: []rowSpec{
				{"connection cycles, " + c.label, "cycles/s", "higher", false},
				{"cycle p50, " + c.label, "µs", "lower", true},
				{"cycle p99, " + c.label, "µs", "lower", true},
				{"server CPU per cycle, " + c.label, "µs", "lower", true},
			},
			run: func(ctx context.Context, e *endpoint) ([]float64, error) {
				return b.cycles(ctx, e, c.total, c.par)
			},
		})
	}
	if b.held > 0 {
		ps = append(ps, phase{
			name: "held",
			rows: []rowSpec{
				{fmt.Sprintf("held connections ok, of %d", b.held), "conns", "higher", false},
				{"server RSS per held connection", "KiB", "lower", true},
				{"server CPU, opening + 2 echoes each", "s", "lower", true},
			},
			run:  b.heldConns,
			once: true, // a server reuses the memory of a previous pass
		})
	}
	if o.rtt > 0 {
		ps = append(ps, phase{
			name: "rtt 64B",
			rows: []rowSpec{
				{"64-byte round trip p50", "µs", "lower", false},
				{"64-byte round trip p99", "µs", "lower", false},
			},
			run: b.rtt,
		})
	}
	return ps
}

func nameOf(label string, direct *endpoint, servers []*endpoint) string {
	if label == direct.label {
		return direct.name
	}
	for _, e := range servers {
		if e.label == label {
			return e.name
		}
	}
	return label
}

// roundAll rounds figures for the progress lines.
func roundAll(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = math.Round(x*1000) / 1000
	}
	return out
}
