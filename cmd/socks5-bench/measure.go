package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

const (
	opTimeout    = 5 * time.Second // bound on any single connect or round trip
	heldConc     = 32              // dialers opening the held connections
	fdReserve    = 200             // descriptors kept back from the held phase
	heldMaxFails = 100             // the held phase stops opening after this many failures
	bulkUnit     = 16 << 20        // upload acknowledgement unit
)

var cycleMsg = [8]byte{'s', 'o', 'c', 'k', 's', '5', 'd', '\n'}

// rowSpec describes one output row of a phase.
type rowSpec struct {
	metric string
	unit   string
	better string // "higher" or "lower"
	sub    bool   // indented under the row above in the table
}

// phase is a measurement producing one figure per row for an endpoint; a
// NaN figure is not applicable to that endpoint.
type phase struct {
	name string
	rows []rowSpec
	run  func(ctx context.Context, e *endpoint) ([]float64, error)
	once bool // not repeated: its figures are only meaningful on a fresh server
}

// bench holds what the phases share.
type bench struct {
	opt   options
	tg    *targets
	held  int
	notes []string
}

func (b *bench) notef(e *endpoint, format string, args ...any) {
	b.notes = append(b.notes, e.name+": "+fmt.Sprintf(format, args...))
}

// closeOnCancel closes the conns when ctx ends; call the result to stop.
func closeOnCancel(ctx context.Context, conns ...*net.TCPConn) func() bool {
	return context.AfterFunc(ctx, func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
}

// cpuSeconds is the server's CPU time so far (user + system, all its
// threads); NaN for the direct endpoint, which has no server.
func (e *endpoint) cpuSeconds() (float64, error) {
	if e.srv == nil {
		return math.NaN(), nil
	}
	return procCPUSeconds(e.srv.pid())
}

// perUnit is the CPU spent between two readings per unit of work: NaN
// without a server or without work.
func perUnit(cpu0, cpu1, units float64) float64 {
	if math.IsNaN(cpu0) || units <= 0 {
		return math.NaN()
	}
	return (cpu1 - cpu0) / units
}

// ---- (a) bulk throughput ----

// bulk moves up to bulkBytes per stream on streams connections at once,
// to the sink (upload) or from the source (download), stopping early at
// bulkTime, and returns the aggregate rate in GiB/s.
func (b *bench) bulk(ctx context.Context, e *endpoint, upload bool, streams int) ([]float64, error) {
	target := b.tg.source
	if upload {
		target = b.tg.sink
	}
	per := b.opt.bulkBytes
	unit := min(int64(bulkUnit), per)
	per -= per % unit

	setup := time.Now().Add(opTimeout)
	conns := make([]*net.TCPConn, 0, streams)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range streams {
		c, err := e.dial(ctx, target, setup)
		if err != nil {
			return nil, fmt.Errorf("stream setup: %w", err)
		}
		conns = append(conns, c)
		if upload {
			var hdr [8]byte
			binary.BigEndian.PutUint64(hdr[:], uint64(unit))
			if _, err := c.Write(hdr[:]); err != nil {
				return nil, fmt.Errorf("stream setup: %w", err)
			}
		}
	}
	defer closeOnCancel(ctx, conns...)()

	cpu0, err := e.cpuSeconds()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	stop := start.Add(b.opt.bulkTime)
	hard := stop.Add(max(10*time.Second, b.opt.bulkTime))
	type result struct {
		n   int64
		end time.Time
		err error
	}
	out := make(chan result, streams)
	for _, c := range conns {
		go func() {
			var r result
			if r.err = c.SetDeadline(hard); r.err == nil {
				if upload {
					r.n, r.err = uploadStream(c, per, unit, stop)
				} else {
					r.n, r.err = downloadStream(c, per, stop)
				}
			}
			r.end = time.Now()
			out <- r
		}()
	}
	var total int64
	var end time.Time
	var errs []error
	for range streams {
		r := <-out
		total += r.n
		if r.end.After(end) {
			end = r.end
		}
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%d of %d streams failed: %w", len(errs), streams, errs[0])
	}
	cpu1, err := e.cpuSeconds()
	if err != nil {
		return nil, err
	}
	gib := float64(total) / (1 << 30)
	return []float64{gib / end.Sub(start).Seconds(), perUnit(cpu0, cpu1, gib)}, nil
}

// uploadStream writes whole units until total or the stop time, then waits
// for the sink to acknowledge every byte.
func uploadStream(c net.Conn, total, unit int64, stop time.Time) (int64, error) {
	buf := make([]byte, bulkBuf)
	for i := range buf {
		buf[i] = byte(i * 13)
	}
	var written int64
	for written < total {
		for seg := unit; seg > 0; {
			n, err := c.Write(buf[:min(seg, int64(len(buf)))])
			written += int64(n)
			seg -= int64(n)
			if err != nil {
				return written, err
			}
		}
		if !time.Now().Before(stop) {
			break
		}
	}
	var ack [8]byte
	for {
		if _, err := io.ReadFull(c, ack[:]); err != nil {
			return 0, fmt.Errorf("waiting for the sink: %w", err)
		}
		if int64(binary.BigEndian.Uint64(ack[:])) >= written {
			return written, nil
		}
	}
}

// downloadStream starts the source and reads until total or the stop time.
func downloadStream(c net.Conn, total int64, stop time.Time) (int64, error) {
	if _, err := c.Write([]byte{'g'}); err != nil {
		return 0, err
	}
	buf := make([]byte, bulkBuf)
	var got int64
	for got < total {
		n, err := c.Read(buf[:min(int64(len(buf)), total-got)])
		got += int64(n)
		if err != nil {
			return got, err
		}
		if !time.Now().Before(stop) {
			break
		}
	}
	return got, nil
}

// ---- (b) connection cycles ----

// cycle is one full connection: connect, (greeting, auth, CONNECT,) an
// 8-byte echo round trip, close.
func (b *bench) cycle(ctx context.Context, e *endpoint, deadline time.Time) error {
	c, err := e.dial(ctx, b.tg.echo, deadline)
	if err != nil {
		return err
	}
	defer c.Close()
	return echo8(c)
}

// echo8 sends 8 bytes and expects them back.
func echo8(c net.Conn) error {
	if _, err := c.Write(cycleMsg[:]); err != nil {
		return err
	}
	var in [8]byte
	if _, err := io.ReadFull(c, in[:]); err != nil {
		return err
	}
	if in != cycleMsg {
		return errors.New("echo returned different bytes")
	}
	return nil
}

// cycles runs up to total cycles on par workers, stopping at cycleTime,
// and returns cycles per second, p50 and p99 in µs.
func (b *bench) cycles(ctx context.Context, e *endpoint, total, par int) ([]float64, error) {
	par = max(min(par, total), 1)
	cpu0, err := e.cpuSeconds()
	if err != nil {
		return nil, err
	}
	var next atomic.Int64
	type worker struct {
		lat   []time.Duration
		fails int
		err   error
	}
	ws := make([]worker, par)
	start := time.Now()
	stop := start.Add(b.opt.cycleTime)
	var wg sync.WaitGroup
	for i := range ws {
		w := &ws[i]
		w.lat = make([]time.Duration, 0, total/par+1)
		wg.Go(func() {
			for ctx.Err() == nil && next.Add(1) <= int64(total) {
				t0 := time.Now()
				if !t0.Before(stop) {
					return
				}
				if err := b.cycle(ctx, e, t0.Add(opTimeout)); err != nil {
					w.fails++
					if w.err == nil {
						w.err = err
					}
					continue
				}
				w.lat = append(w.lat, time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var lat []time.Duration
	var fails int
	var firstErr error
	for _, w := range ws {
		lat = append(lat, w.lat...)
		fails += w.fails
		if firstErr == nil {
			firstErr = w.err
		}
	}
	if len(lat) == 0 {
		return nil, fmt.Errorf("every cycle failed: %w", firstErr)
	}
	if fails > 0 {
		b.notef(e, "%d-way cycles: %d of %d failed, first: %v", par, fails, fails+len(lat), firstErr)
	}
	cpu1, err := e.cpuSeconds()
	if err != nil {
		return nil, err
	}
	p50, p99 := latencyStats(lat)
	return []float64{float64(len(lat)) / elapsed.Seconds(), p50, p99, perUnit(cpu0, cpu1, float64(len(lat))) * 1e6}, nil
}

// ---- (c) held connections ----

// fitHeld lowers want so that 2 descriptors per held connection, plus a
// reserve, fit in each of the limits (the bench's and each server's).
func fitHeld(want int, limits ...uint64) int {
	n := want
	for _, l := range limits {
		fit := (int(min(l, math.MaxInt32)) - fdReserve) / 2
		n = min(n, fit)
	}
	return max(n, 0)
}

// heldConns opens b.held relayed connections to the echo target and keeps
// them all open; each must pass an echo when opened and again once all are
// open. It returns how many did, and for a server its RSS growth per held
// connection (KiB) and the CPU seconds it spent on the phase.
func (b *bench) heldConns(ctx context.Context, e *endpoint) ([]float64, error) {
	n := b.held
	var pid int
	var rss0 int64
	var cpu0 float64
	var fd0 int
	if e.srv != nil {
		pid = e.srv.pid()
		var err error
		if rss0, err = procStatusKiB(pid, "VmRSS"); err != nil {
			return nil, err
		}
		if cpu0, err = procCPUSeconds(pid); err != nil {
			return nil, err
		}
		if fd0, err = procFDs(pid); err != nil {
			return nil, err
		}
	}
	tg0 := b.tg.count()

	conns := make([]*net.TCPConn, n)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	var (
		mu       sync.Mutex
		fails    int
		firstErr error
		stopped  []string // why a pass ended early
	)
	fail := func(err error) {
		mu.Lock()
		fails++
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	// each calls f for every index on heldConc workers until the pass's
	// time limit or too many failures, and reports which indices it did.
	each := func(pass string, f func(i int)) []bool {
		done := make([]bool, n)
		stop := time.Now().Add(b.opt.heldTime)
		fails0 := fails
		why := ""
		var next atomic.Int64
		var wg sync.WaitGroup
		for range min(heldConc, n) {
			wg.Go(func() {
				for ctx.Err() == nil {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					mu.Lock()
					if why == "" && !time.Now().Before(stop) {
						why = fmt.Sprintf("%s stopped at the %v limit", pass, b.opt.heldTime)
					}
					if why == "" && fails-fails0 >= heldMaxFails {
						why = fmt.Sprintf("%s stopped after %d failures", pass, fails-fails0)
					}
					quit := why != ""
					mu.Unlock()
					if quit {
						return
					}
					f(i)
					done[i] = true
				}
			})
		}
		wg.Wait()
		if why != "" {
			stopped = append(stopped, why)
		}
		return done
	}
	// Open, one echo each.
	each("opening", func(i int) {
		c, err := e.dial(ctx, b.tg.echo, time.Now().Add(opTimeout))
		if err == nil {
			err = echo8(c)
			if err != nil {
				c.Close()
			}
		}
		if err != nil {
			fail(err)
			return
		}
		conns[i] = c
	})
	// With all open, every one must still relay.
	swept := each("re-checking", func(i int) {
		c := conns[i]
		if c == nil {
			return
		}
		err := c.SetDeadline(time.Now().Add(opTimeout))
		if err == nil {
			err = echo8(c)
		}
		if err != nil {
			c.Close()
			conns[i] = nil
			fail(fmt.Errorf("after all were open: %w", err))
		}
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ok, unverified := 0, 0
	for i, c := range conns {
		switch {
		case c != nil && !swept[i]:
			c.Close()
			conns[i] = nil
			unverified++
		case c != nil:
			ok++
		}
	}
	if fails > 0 || len(stopped) > 0 {
		msg := fmt.Sprintf("held: %d of %d held", ok, n)
		for _, why := range stopped {
			msg += ", " + why
		}
		if unverified > 0 {
			msg += fmt.Sprintf(", %d open but not re-checked in time", unverified)
		}
		if firstErr != nil {
			msg += fmt.Sprintf(", %d failed, first: %v", fails, firstErr)
		}
		b.notef(e, "%s", msg)
	}
	vals := []float64{float64(ok), math.NaN(), math.NaN()}
	if e.srv != nil {
		time.Sleep(100 * time.Millisecond) // let the server settle
		rss1, err := procStatusKiB(pid, "VmRSS")
		if err != nil {
			return nil, err
		}
		cpu1, err := procCPUSeconds(pid)
		if err != nil {
			return nil, err
		}
		if ok > 0 {
			vals[1] = float64(rss1-rss0) / float64(ok)
		}
		vals[2] = cpu1 - cpu0
	}

	// Close everything and let both sides drain before the next phase.
	for i, c := range conns {
		if c != nil {
			c.Close()
			conns[i] = nil
		}
	}
	settle := time.Now().Add(3 * time.Second)
	for {
		left, fds := b.tg.count()-tg0, 0
		if e.srv != nil {
			fds, _ = procFDs(pid)
		}
		if left <= 0 && fds <= fd0+4 {
			break
		}
		if !time.Now().Before(settle) {
			msg := fmt.Sprintf("held: 3s after closing, the echo target still had %d of its connections open", max(left, 0))
			if e.srv != nil {
				msg += fmt.Sprintf("; the server had %d descriptors (%d before): %s", fds, fd0, procFDKinds(pid))
			}
			b.notef(e, "%s", msg)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if ok == 0 {
		return nil, fmt.Errorf("no connection could be held: %w", firstErr)
	}
	return vals, nil
}

// ---- (d) round trip ----

// rtt measures 64-byte round trips over one established connection and
// returns p50 and p99 in µs.
func (b *bench) rtt(ctx context.Context, e *endpoint) ([]float64, error) {
	c, err := e.dial(ctx, b.tg.echo, time.Now().Add(opTimeout))
	if err != nil {
		return nil, err
	}
	defer c.Close()
	defer closeOnCancel(ctx, c)()
	if err := c.SetDeadline(time.Now().Add(b.opt.rttTime + 2*opTimeout)); err != nil {
		return nil, err
	}
	out := bytes.Repeat([]byte{'r'}, 64)
	in := make([]byte, 64)
	round := func() error {
		if _, err := c.Write(out); err != nil {
			return err
		}
		_, err := io.ReadFull(c, in)
		return err
	}
	for range min(100, b.opt.rtt) { // warm-up, not counted
		if err := round(); err != nil {
			return nil, err
		}
	}
	lat := make([]time.Duration, 0, b.opt.rtt)
	stop := time.Now().Add(b.opt.rttTime)
	for range b.opt.rtt {
		t0 := time.Now()
		if !t0.Before(stop) {
			break
		}
		if err := round(); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t0))
	}
	if len(lat) == 0 {
		return nil, errors.New("no round trip completed in time")
	}
	p50, p99 := latencyStats(lat)
	return []float64{p50, p99}, nil
}
