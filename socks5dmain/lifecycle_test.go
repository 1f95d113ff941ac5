package socks5dmain

// Lifecycle tests: the real binary, built once, run as a subprocess on
// loopback and driven with signals, config edits and a low descriptor
// limit.

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var (
	lcPkgDir  string // this package's directory, for go build ../cmd/socks5d
	lcBinOnce sync.Once
	lcBinDir  string
	lcBinPath string
	lcBinErr  error
)

func TestMain(m *testing.M) {
	lcPkgDir, _ = os.Getwd()
	code := m.Run()
	if lcBinDir != "" {
		os.RemoveAll(lcBinDir)
	}
	os.Exit(code)
}

// socks5dBinary builds cmd/socks5d once per test run and returns its path.
func socks5dBinary(t *testing.T) string {
	t.Helper()
	lcBinOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			lcBinErr = fmt.Errorf("no go tool to build socks5d: %w", err)
			return
		}
		if lcBinDir, lcBinErr = os.MkdirTemp("", "socks5d-lifecycle-"); lcBinErr != nil {
			return
		}
		p := filepath.Join(lcBinDir, "socks5d")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goTool, "build", "-o", p, "../cmd/socks5d")
		cmd.Dir = lcPkgDir
		if out, err := cmd.CombinedOutput(); err != nil {
			lcBinErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		lcBinPath = p
	})
	if lcBinErr != nil {
		t.Fatal(lcBinErr)
	}
	return lcBinPath
}

// lcEnv is the environment without SOCKS5D_ overrides.
func lcEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SOCKS5D_") {
			env = append(env, kv)
		}
	}
	return env
}

var lcPCTPListenRE = regexp.MustCompile(`PCTP admin listening: address=(\S+)`)

// lcProc is socks5d running as a subprocess.
type lcProc struct {
	cmd    *exec.Cmd
	log    *syncBuffer // stderr
	stdout *syncBuffer
	socks  string
	pctp   string
	done   chan struct{} // closed when the process has exited
	err    error         // Wait's result, once done is closed
}

// startLCProc runs socks5d with args (plus loopback listeners on free ports)
// from an empty directory and waits until it says where it listens.
// nofile > 0 runs it under `ulimit -n nofile`.
func startLCProc(t *testing.T, nofile int, args ...string) *lcProc {
	t.Helper()
	p := launchLC(t, t.TempDir(), nofile, args...)
	p.waitListening(t)
	return p
}

// launchLC starts socks5d with args (plus loopback listeners on free
// ports) in dir, and kills it at cleanup; it does not wait for the
// listeners. nofile > 0 runs it under `ulimit -n nofile`.
func launchLC(t *testing.T, dir string, nofile int, args ...string) *lcProc {
	t.Helper()
	return launchBinary(t, socks5dBinary(t), dir, nofile, args...)
}

// launchBinary is launchLC for the server binary bin (a build of
// cmd/socks5d, or of a module of its own that calls Run).
func launchBinary(t *testing.T, bin, dir string, nofile int, args ...string) *lcProc {
	t.Helper()
	args = append(args, "-l", "127.0.0.1", "-p", "0", "-L", "127.0.0.1", "-P", "0")
	var cmd *exec.Cmd
	if nofile > 0 {
		// exec keeps the PID, so signals and /proc/PID are the server's.
		script := fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, nofile)
		cmd = exec.Command("bash", append([]string{"-c", script, bin}, args...)...)
	} else {
		cmd = exec.Command(bin, args...)
	}
	cmd.Dir = dir
	cmd.Env = lcEnv()
	p := &lcProc{cmd: cmd, log: &syncBuffer{}, stdout: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr, cmd.Stdout = p.log, p.stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				t.Errorf("socks5d (pid %d) did not die", cmd.Process.Pid)
			}
		}
		if t.Failed() {
			t.Logf("socks5d log:\n%s", p.log)
		}
	})
	return p
}

// waitListening waits until the server's log says where it listens.
func (p *lcProc) waitListening(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		log := p.log.String()
		s, a := listenRE.FindStringSubmatch(log), lcPCTPListenRE.FindStringSubmatch(log)
		if s != nil && a != nil {
			p.socks, p.pctp = s[1], a[1]
			return
		}
		select {
		case <-p.done:
			t.Fatalf("socks5d exited at start-up: %v\n%s", p.err, p.log)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("socks5d never said where it listens:\n%s", p.log)
}

func (p *lcProc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// waitExit waits up to limit for the process to exit and returns its exit
// status; it fails the test if the process is still running.
func (p *lcProc) waitExit(t *testing.T, limit time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(limit):
		t.Fatalf("socks5d still running %v later", limit)
		return -1
	}
}

// exited reports whether the process has exited.
func (p *lcProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitLog waits until the log holds substr at least n times.
func (p *lcProc) waitLog(t *testing.T, substr string, n int, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for strings.Count(p.log.String(), substr) < n {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q (%d times) within %v", substr, n, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lcCPUTime is the process's user+system CPU time from /proc/PID/stat.
func lcCPUTime(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 of the whole line, in clock ticks (USER_HZ, 100).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("cannot parse /proc/%d/stat: %q", pid, s)
	}
	return time.Duration(utime+stime) * (time.Second / 100)
}

// lcFDCount is the number of open descriptors of a process.
func lcFDCount(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// target is a loopback destination whose connections the test can see
// and closes at cleanup.
type lcTarget struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func (tg *lcTarget) addr() string { return tg.ln.Addr().String() }

// newLCTarget serves each connection with serve on its own goroutine.
func newLCTarget(t *testing.T, serve func(net.Conn)) *lcTarget {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tg := &lcTarget{ln: ln}
	t.Cleanup(func() {
		ln.Close()
		tg.mu.Lock()
		for _, c := range tg.conns {
			c.Close()
		}
		tg.mu.Unlock()
		tg.wg.Wait()
	})
	tg.wg.Add(1)
	go func() {
		defer tg.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tg.mu.Lock()
			tg.conns = append(tg.conns, c)
			tg.mu.Unlock()
			tg.wg.Add(1)
			go func() {
				defer tg.wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
				serve(c)
			}()
		}
	}()
	return tg
}

// lcEchoTarget echoes, half-closing when the client does.
func lcEchoTarget(t *testing.T) *lcTarget {
	return newLCTarget(t, func(c net.Conn) {
		_, _ = io.Copy(c, c)
		_ = c.(*net.TCPConn).CloseWrite()
	})
}

// lcHoldTarget reads and discards until the peer goes away: a transfer
// that never ends by itself.
func lcHoldTarget(t *testing.T) *lcTarget {
	return newLCTarget(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
}

// lcRoundTrip opens a proxied connection to an echo target as user and
// checks one message comes back.
func lcRoundTrip(t *testing.T, proxyAddr, user, pass, echo string) error {
	t.Helper()
	c, err := dialer(t, proxyAddr, user, pass).Dial("tcp", echo)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	msg := []byte("hello from " + user)
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}

// lcOpenHeld opens a proxied connection to a hold target and checks it is
// through, by a message the target reads.
func lcOpenHeld(t *testing.T, proxyAddr string) net.Conn {
	t.Helper()
	hold := lcHoldTarget(t)
	c, err := dialer(t, proxyAddr, "alice", "wonderland").Dial("tcp", hold.addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	// Wait until the target has the connection.
	deadline := time.Now().Add(5 * time.Second)
	for {
		hold.mu.Lock()
		n := len(hold.conns)
		hold.mu.Unlock()
		if n > 0 {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatal("the target never saw the connection")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// lcExpectPeerClosed asserts that c is closed by the other end (EOF or a
// reset) within limit, and not merely idle.
func lcExpectPeerClosed(t *testing.T, c net.Conn, limit time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(limit))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v", limit)
	}
}

const lcAliceConfig = `
users:
  - {name: alice, password: wonderland, role: admin}
`

// SIGTERM with transfers in flight: new connections are refused at once,
// the transfers finish intact, and the process exits 0 once they have.
func TestSIGTERMDrainsTransfersInFlight(t *testing.T) {
	cfg := writeConfig(t, "socks:\n  drain_timeout: 20s\n"+lcAliceConfig)
	p := startLCProc(t, 0, "-c", cfg)

	const size, chunk, transfers = 1 << 20, 32 << 10, 4
	const pace = 1200 * time.Millisecond // to send size
	payload := make([]byte, size)
	_, _ = rand.Read(payload)
	want := sha256.Sum256(payload)
	slow := newLCTarget(t, func(c net.Conn) {
		for off := 0; off < size; off += chunk {
			if _, err := c.Write(payload[off : off+chunk]); err != nil {
				return
			}
			time.Sleep(pace / (size / chunk))
		}
	})

	var finished atomic.Int32
	started := make(chan struct{}, transfers)
	errs := make(chan error, transfers)
	for i := 0; i < transfers; i++ {
		go func() {
			err := func() error {
				c, err := dialer(t, p.socks, "alice", "wonderland").Dial("tcp", slow.addr())
				if err != nil {
					return err
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				h := sha256.New()
				if _, err := io.CopyN(h, c, 1); err != nil {
					return err
				}
				started <- struct{}{}
				n, err := io.Copy(h, c)
				if err != nil {
					return err
				}
				if [32]byte(h.Sum(nil)) != want {
					return fmt.Errorf("checksum mismatch after %d bytes", n+1)
				}
				return nil
			}()
			finished.Add(1)
			errs <- err
		}()
	}
	for i := 0; i < transfers; i++ {
		select {
		case <-started:
		case err := <-errs:
			t.Fatalf("transfer failed before SIGTERM: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("transfers did not start")
		}
	}

	sigAt := time.Now()
	p.signal(t, syscall.SIGTERM)
	// New connections are refused at once, while the transfers go on.
	var refusedAfter time.Duration
	for {
		c, err := net.DialTimeout("tcp", p.socks, time.Second)
		if err != nil {
			refusedAfter = time.Since(sigAt)
			break
		}
		c.Close()
		if time.Since(sigAt) > 2*time.Second {
			t.Fatal("the SOCKS port still accepts 2s after SIGTERM")
		}
		time.Sleep(5 * time.Millisecond)
	}
	inFlight := transfers - int(finished.Load())
	if _, err := net.DialTimeout("tcp", p.pctp, time.Second); err == nil {
		t.Error("the PCTP port still accepts while draining")
	}
	if inFlight == 0 {
		t.Error("the transfers had all ended before new connections were refused")
	}
	if refusedAfter > 500*time.Millisecond {
		t.Errorf("new connections refused only %v after SIGTERM", refusedAfter)
	}

	for i := 0; i < transfers; i++ {
		if err := <-errs; err != nil {
			t.Errorf("transfer: %v", err)
		}
	}
	lastEnded := time.Since(sigAt)
	code := p.waitExit(t, 10*time.Second)
	exited := time.Since(sigAt)
	if code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
	log := p.log.String()
	for _, want := range []string{"signal received; stopping", "draining connections", "stopped"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if strings.Contains(log, "closed connections still open") {
		t.Error("the drain closed connections although all ended in time")
	}
	t.Logf("SIGTERM: new connections refused after %v with %d/%d transfers in flight; last transfer ended %v and the process exited %v after the signal (drain_timeout 20s)",
		refusedAfter.Round(time.Millisecond), inFlight, transfers, lastEnded.Round(time.Millisecond), exited.Round(time.Millisecond))
}

// The drain deadline closes a transfer that never ends and exits 0.
func TestDrainDeadlineClosesTheRest(t *testing.T) {
	cfg := writeConfig(t, "socks:\n  drain_timeout: 1s\n"+lcAliceConfig)
	p := startLCProc(t, 0, "-c", cfg)
	c := lcOpenHeld(t, p.socks)
	sigAt := time.Now()
	p.signal(t, syscall.SIGTERM)
	code := p.waitExit(t, 10*time.Second)
	took := time.Since(sigAt)
	if code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
	if took < 900*time.Millisecond {
		t.Errorf("exited %v after SIGTERM: did not wait for the 1s drain", took)
	}
	lcExpectPeerClosed(t, c, 5*time.Second)
	if !strings.Contains(p.log.String(), "closed connections still open after the drain: count=1") {
		t.Error("log does not say one connection was closed")
	}
	t.Logf("drain deadline 1s: exited %v after SIGTERM, 1 connection closed", took.Round(time.Millisecond))
}

// A second signal ends a long drain at once.
func TestSecondSignalEndsDrain(t *testing.T) {
	cfg := writeConfig(t, "socks:\n  drain_timeout: 60s\n"+lcAliceConfig)
	p := startLCProc(t, 0, "-c", cfg)
	c := lcOpenHeld(t, p.socks)
	p.signal(t, syscall.SIGTERM)
	p.waitLog(t, "draining connections", 1, 5*time.Second)
	at := time.Now()
	p.signal(t, os.Interrupt)
	code := p.waitExit(t, 10*time.Second)
	took := time.Since(at)
	if code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
	lcExpectPeerClosed(t, c, 5*time.Second)
	t.Logf("second signal: exited %v after SIGINT (drain_timeout 60s)", took.Round(time.Millisecond))
}

// SIGHUP is a reload, not a second stop signal: it must not cut a drain.
func TestSIGHUPDuringDrainKeepsDraining(t *testing.T) {
	cfg := writeConfig(t, "socks:\n  drain_timeout: 60s\n"+lcAliceConfig)
	p := startLCProc(t, 0, "-c", cfg)
	echo := lcEchoTarget(t)
	c, err := dialer(t, p.socks, "alice", "wonderland").Dial("tcp", echo.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	p.signal(t, syscall.SIGTERM)
	p.waitLog(t, "draining connections", 1, 5*time.Second)
	p.signal(t, syscall.SIGHUP)
	time.Sleep(500 * time.Millisecond)
	if p.exited() {
		t.Fatal("a SIGHUP during the drain ended it, cutting in-flight transfers")
	}
	// The transfer still flows, and ending it ends the process.
	if _, err := c.Write([]byte("still here")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("still here"))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("transfer cut after SIGHUP during the drain: %v", err)
	}
	c.Close()
	if code := p.waitExit(t, 10*time.Second); code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
}

// A reloaded socks.drain_timeout is the one the next stop uses.
func TestReloadedDrainTimeoutApplies(t *testing.T) {
	cfgPath := writeConfig(t, "socks:\n  drain_timeout: 60s\n"+lcAliceConfig)
	p := startLCProc(t, 0, "-c", cfgPath)
	if err := os.WriteFile(cfgPath, []byte("socks:\n  drain_timeout: 1s\n"+lcAliceConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	p.signal(t, syscall.SIGHUP)
	p.waitLog(t, "configuration reloaded", 1, 5*time.Second)
	c := lcOpenHeld(t, p.socks)
	sigAt := time.Now()
	p.signal(t, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(4 * time.Second):
		p.signal(t, os.Interrupt) // end the 60s drain
		p.waitExit(t, 10*time.Second)
		t.Fatal("the stop used the start-up drain_timeout, not the reloaded one")
	}
	took := time.Since(sigAt)
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit status %d, want 0", code)
	}
	lcExpectPeerClosed(t, c, 5*time.Second)
	t.Logf("reloaded drain_timeout 1s: exited %v after SIGTERM", took.Round(time.Millisecond))
}

// SIGHUP reloads the file; an invalid file is rejected and the running
// configuration keeps serving.
func TestSIGHUPReload(t *testing.T) {
	cfgPath := writeConfig(t, lcAliceConfig+"chain:\n  - use: auth\n  - use: iobuf\n    size: 16KiB\n")
	p := startLCProc(t, 0, "-c", cfgPath)
	echo := lcEchoTarget(t)
	if err := lcRoundTrip(t, p.socks, "alice", "wonderland", echo.addr()); err != nil {
		t.Fatalf("alice before reload: %v", err)
	}
	if err := lcRoundTrip(t, p.socks, "carol", "c4rol-pass", echo.addr()); err == nil {
		t.Fatal("carol accepted before she was added")
	}

	write := func(body string) {
		t.Helper()
		if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A valid edit: a new user and a new buffer size.
	valid := `
users:
  - {name: alice, password: wonderland, role: admin}
  - {name: carol, password: c4rol-pass, role: basic}
chain:
  - use: auth
  - use: iobuf
    size: 64KiB
`
	write(valid)
	p.signal(t, syscall.SIGHUP)
	p.waitLog(t, "configuration reloaded", 1, 5*time.Second)
	for _, u := range [][2]string{{"carol", "c4rol-pass"}, {"alice", "wonderland"}} {
		if err := lcRoundTrip(t, p.socks, u[0], u[1], echo.addr()); err != nil {
			t.Errorf("%s after reload: %v", u[0], err)
		}
	}

	// An invalid file: rejected with the reason, and nothing changes.
	write(valid + "socks:\n  prot: 1\n")
	p.signal(t, syscall.SIGHUP)
	p.waitLog(t, "reload rejected", 1, 5*time.Second)
	var rejected string
	for _, line := range strings.Split(p.log.String(), "\n") {
		if strings.Contains(line, "reload rejected") {
			rejected = line
		}
	}
	if !strings.Contains(rejected, "prot") {
		t.Errorf("the rejection does not name the bad key: %s", rejected)
	}
	if n := strings.Count(p.log.String(), "configuration reloaded"); n != 1 {
		t.Errorf("%d reloads logged, want 1", n)
	}
	for _, u := range [][2]string{{"carol", "c4rol-pass"}, {"alice", "wonderland"}} {
		if err := lcRoundTrip(t, p.socks, u[0], u[1], echo.addr()); err != nil {
			t.Errorf("%s after a rejected reload: %v", u[0], err)
		}
	}

	// A later valid file applies again, removals included.
	write("users:\n  - {name: carol, password: c4rol-pass, role: admin}\n")
	p.signal(t, syscall.SIGHUP)
	p.waitLog(t, "configuration reloaded", 2, 5*time.Second)
	if err := lcRoundTrip(t, p.socks, "carol", "c4rol-pass", echo.addr()); err != nil {
		t.Errorf("carol after the second reload: %v", err)
	}
	if err := lcRoundTrip(t, p.socks, "alice", "wonderland", echo.addr()); err == nil {
		t.Error("alice still accepted after the file dropped her")
	}
	if p.exited() {
		t.Fatal("socks5d exited during reloads")
	}
	for _, secret := range []string{"wonderland", "c4rol-pass"} {
		if strings.Contains(p.log.String(), secret) {
			t.Errorf("a password (%s) appears in the log", secret)
		}
	}
}

// lcRunBinary runs socks5d to completion and returns its exit status and
// output.
func lcRunBinary(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, socks5dBinary(t), args...)
	cmd.Dir = t.TempDir()
	cmd.Env = lcEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("socks5d %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}

func TestCheckFlag(t *testing.T) {
	// A port in use: -t must not try to listen.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, port, _ := net.SplitHostPort(busy.Addr().String())

	valid := writeConfig(t, lcAliceConfig)
	code, out, errOut := lcRunBinary(t, "", "-t", "-c", valid, "-l", "127.0.0.1", "-p", port)
	if code != 0 || !strings.Contains(out, "configuration OK") {
		t.Errorf("-t on a valid file: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "listening") {
		t.Errorf("-t started listeners:\n%s%s", out, errOut)
	}

	shipped := shippedConfig(t)
	code, out, errOut = lcRunBinary(t, "", "-t", "-c", shipped, "-u", "admin:x")
	if code != 0 || !strings.Contains(out, "configuration OK") {
		t.Errorf("-t on the shipped file: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}

	invalid := writeConfig(t, lcAliceConfig+"socks:\n  handshake_timout: 5s\n")
	code, out, errOut = lcRunBinary(t, "", "-t", "-c", invalid)
	if code != 2 || !strings.Contains(errOut, "handshake_timout") {
		t.Errorf("-t on an invalid file: exit %d, want 2 naming the key\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if strings.Contains(out, "configuration OK") {
		t.Error("-t says OK for an invalid file")
	}
}

var lcBcryptRE = regexp.MustCompile(`^\$2[aby]?\$\d\d\$[./A-Za-z0-9]{53}$`)

func TestHashSubcommand(t *testing.T) {
	const password = "correct horse battery"
	code, out, errOut := lcRunBinary(t, password+"\n", "hash")
	if code != 0 {
		t.Fatalf("hash: exit %d\n%s", code, errOut)
	}
	hash := strings.TrimSpace(out)
	if !lcBcryptRE.MatchString(hash) {
		t.Fatalf("hash printed %q, not a bcrypt hash", out)
	}
	if strings.Contains(out+errOut, password) {
		t.Fatal("hash echoes the password")
	}
	// Two runs salt differently.
	if _, out2, _ := lcRunBinary(t, password+"\n", "hash"); strings.TrimSpace(out2) == hash {
		t.Error("two hashes of one password are equal (no salt?)")
	}

	cfg := writeConfig(t, fmt.Sprintf("users:\n  - {name: dave, password: '%s', role: admin}\n", hash))
	p := startLCProc(t, 0, "-c", cfg)
	echo := lcEchoTarget(t)
	if err := lcRoundTrip(t, p.socks, "dave", password, echo.addr()); err != nil {
		t.Errorf("dave with the hashed password: %v", err)
	}
	if err := lcRoundTrip(t, p.socks, "dave", password, echo.addr()); err != nil {
		t.Errorf("dave again: %v", err)
	}
	if err := lcRoundTrip(t, p.socks, "dave", "wrong", echo.addr()); err == nil {
		t.Error("dave with a wrong password accepted")
	}
	if err := lcRoundTrip(t, p.socks, "dave", hash, echo.addr()); err == nil {
		t.Error("the hash itself is accepted as the password")
	}
	if strings.Contains(p.log.String(), hash) || strings.Contains(p.log.String(), password) {
		t.Error("the hash or the password appears in the log")
	}

	for name, stdin := range map[string]string{"empty line": "\n", "no input": ""} {
		if code, out, errOut := lcRunBinary(t, stdin, "hash"); code != 2 || out != "" {
			t.Errorf("hash with %s: exit %d, want 2 and no output\nstdout: %s\nstderr: %s", name, code, out, errOut)
		}
	}
}

// At a low descriptor limit the server backs off without spinning, logs
// once per interval, and serves again as soon as descriptors free up.
func TestDescriptorExhaustion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash to set ulimit -n")
	}
	const limit, clients = 64, 80
	// No limits stage: its automatic max_connections, derived from the
	// open-file limit, would refuse connections before accept runs out of
	// descriptors, and this test is about accept running out.
	cfg := writeConfig(t, "socks:\n  handshake_timeout: 60s\n  drain_timeout: 1s\n"+lcAliceConfig+"chain:\n  - use: auth\n")
	p := startLCProc(t, limit, "-c", cfg)
	pid := p.cmd.Process.Pid
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`Max open files\s+64\s`).Match(limits) {
		t.Fatalf("the limit did not apply:\n%s", limits)
	}
	echo := lcEchoTarget(t)
	if err := lcRoundTrip(t, p.socks, "alice", "wonderland", echo.addr()); err != nil {
		t.Fatalf("before exhaustion: %v", err)
	}
	baseFDs := lcFDCount(t, pid)

	// Open more connections than fit, each sending a greeting: those the
	// server accepted answer it and then wait (handshake_timeout 60s), the
	// rest wait in the listen queue unanswered.
	conns := lcOpenGreeted(t, p.socks, clients, true)
	exhaustedAt := time.Now()
	var answered atomic.Int32
	var wg sync.WaitGroup
	deadline := time.Now().Add(1500 * time.Millisecond)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetReadDeadline(deadline)
			var b [2]byte
			if _, err := io.ReadFull(c, b[:]); err == nil && b == [2]byte{5, 2} {
				answered.Add(1)
			}
		}()
	}
	wg.Wait()
	served := int(answered.Load())
	if served == clients {
		t.Fatalf("all %d connections were served: the limit of %d descriptors was never reached", clients, limit)
	}
	if served == 0 {
		t.Fatal("no connection was served")
	}
	heldFDs := lcFDCount(t, pid)

	// Exhausted: measure the server's CPU over 2 s.
	cpu0 := lcCPUTime(t, pid)
	time.Sleep(2 * time.Second)
	cpu := lcCPUTime(t, pid) - cpu0
	if p.exited() {
		t.Fatalf("socks5d died at the limit: %v", p.err)
	}
	if cpu > 400*time.Millisecond {
		t.Errorf("the server used %v of CPU in 2s at the limit: it spins", cpu)
	}
	exhausted := time.Since(exhaustedAt)
	logLines := strings.Count(p.log.String(), "accept failed")
	if logLines == 0 {
		t.Error("accept failures were not logged")
	}
	if logLines > 3 {
		t.Errorf("%d accept-failure log lines in %v: logged per attempt, not per interval", logLines, exhausted.Round(time.Millisecond))
	}

	// Free the descriptors: the server serves new clients again at once.
	for _, c := range conns {
		c.Close()
	}
	freedAt := time.Now()
	var recovered time.Duration
	for {
		err := lcRoundTrip(t, p.socks, "alice", "wonderland", echo.addr())
		if err == nil {
			recovered = time.Since(freedAt)
			break
		}
		if time.Since(freedAt) > 10*time.Second {
			t.Fatalf("not serving 10s after the descriptors were freed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if recovered > 2*time.Second {
		t.Errorf("served again only %v after the descriptors were freed", recovered)
	}
	t.Logf("ulimit -n %d: server had %d fds idle, %d at the limit; %d of %d held connections served, %d left unanswered in the listen queue; CPU %v over 2s at the limit; %d \"accept failed\" log lines in %v; served again %v after the clients closed",
		limit, baseFDs, heldFDs, served, clients, clients-served, cpu, logLines, exhausted.Round(time.Millisecond), recovered.Round(time.Millisecond))

	p.signal(t, syscall.SIGTERM)
	if code := p.waitExit(t, 10*time.Second); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
}

// RunContext stopped with a connection open, in-process so that -race sees
// the drain: stopping must not race the accept loop.
func TestInProcessStopWithConnectionOpen(t *testing.T) {
	cfg := writeConfig(t, "socks:\n  drain_timeout: 300ms\n"+lcAliceConfig)
	p := startInProcess(t, append([]string{"-c", cfg}, loopbackArgs...), listenRE)
	c := lcOpenHeld(t, p.found[0])
	p.stop(t)
	lcExpectPeerClosed(t, c, 5*time.Second)
	if !strings.Contains(p.logs.String(), "count=1") {
		t.Errorf("log does not say one connection was closed:\n%s", p.logs)
	}
}

// inProcess is RunContext serving in this process until stopped.
type inProcess struct {
	logs   *syncBuffer
	cancel context.CancelFunc
	done   chan error
	// found holds the first submatch of each log pattern waited for.
	found []string
}

// startInProcess runs socks5d with args from an empty directory and waits
// until its log matches each of patterns.
func startInProcess(t *testing.T, args []string, patterns ...*regexp.Regexp) *inProcess {
	t.Helper()
	t.Chdir(t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	p := &inProcess{logs: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- RunContext(ctx, args, io.Discard, p.logs) }()
	for end := time.Now().Add(10 * time.Second); len(p.found) < len(patterns); {
		if m := patterns[len(p.found)].FindStringSubmatch(p.logs.String()); m != nil {
			p.found = append(p.found, m[1])
			continue
		}
		if time.Now().After(end) {
			t.Fatalf("the log never matched %v:\n%s", patterns[len(p.found)], p.logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return p
}

// stop cancels run's context and waits until run returns nil.
func (p *inProcess) stop(t *testing.T) {
	t.Helper()
	p.cancel()
	p.wait(t)
}

// wait waits until run returns nil.
func (p *inProcess) wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return")
	}
}

// With the default chain, the limits stage sizes max_connections from the
// open-file limit, so a low ulimit degrades into clean refusals (closed at
// once) rather than accept failures.
func TestLowUlimitDefaultChainRefusesCleanly(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash to set ulimit -n")
	}
	const limit, clients = 128, 50
	cfg := writeConfig(t, "socks:\n  handshake_timeout: 60s\n  drain_timeout: 1s\n"+lcAliceConfig)
	p := startLCProc(t, limit, "-c", cfg)
	if !strings.Contains(p.log.String(), "limits") {
		t.Skip("the default chain has no limits stage")
	}
	conns := lcOpenGreeted(t, p.socks, clients, false)
	var answered, refused, hung atomic.Int32
	var wg sync.WaitGroup
	deadline := time.Now().Add(2 * time.Second)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.SetReadDeadline(deadline)
			var b [2]byte
			_, err := io.ReadFull(c, b[:])
			var ne net.Error
			switch {
			case err == nil && b == [2]byte{5, 2}:
				answered.Add(1)
			case errors.As(err, &ne) && ne.Timeout():
				hung.Add(1)
			default:
				refused.Add(1)
			}
		}()
	}
	wg.Wait()
	if hung.Load() != 0 {
		t.Errorf("%d connections neither answered nor closed", hung.Load())
	}
	if refused.Load() == 0 {
		t.Errorf("all %d connections served at ulimit -n %d", clients, limit)
	}
	if answered.Load() == 0 {
		t.Error("no connection served")
	}
	if n := strings.Count(p.log.String(), "accept failed"); n != 0 {
		t.Errorf("%d accept failures: the limits stage did not keep the server off the descriptor limit", n)
	}
	for _, c := range conns {
		c.Close()
	}
	echo := lcEchoTarget(t)
	var err error
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if err = lcRoundTrip(t, p.socks, "alice", "wonderland", echo.addr()); err == nil {
			break
		}
	}
	if err != nil {
		t.Errorf("not serving after the clients closed: %v", err)
	}
	t.Logf("ulimit -n %d, default chain: %d of %d held connections served, %d refused at once, %d hung; %d \"accept failed\" lines",
		limit, answered.Load(), clients, refused.Load(), hung.Load(), strings.Count(p.log.String(), "accept failed"))
}

// lcOpenGreeted opens n connections to addr, each sending a greeting, and
// closes them when the test ends. With strict, a greeting that cannot be
// written fails the test.
func lcOpenGreeted(t *testing.T, addr string, n int, strict bool) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		conns = append(conns, c)
		if _, err := c.Write([]byte{5, 1, 2}); err != nil && strict {
			t.Fatalf("greeting %d: %v", i, err)
		}
	}
	return conns
}

// Passwords of 73–255 octets hash and log in, every octet counting: a
// password sharing the first 72 octets is refused. 256 octets are refused
// by hash with a message, and the password is never printed.
func TestHashLongPassword(t *testing.T) {
	prefix := strings.Repeat("p", 72)
	password := prefix + strings.Repeat("q", 183) // 255 octets
	code, out, errOut := lcRunBinary(t, password+"\n", "hash")
	if code != 0 {
		t.Fatalf("hash of %d octets: exit %d\n%s", len(password), code, errOut)
	}
	hash := strings.TrimSpace(out)
	if !lcBcryptRE.MatchString(hash) {
		t.Fatalf("hash printed %q, not a bcrypt hash", out)
	}
	cfg := writeConfig(t, fmt.Sprintf("users:\n  - {name: dave, password: '%s', role: admin}\n", hash))
	p := startLCProc(t, 0, "-c", cfg)
	echo := lcEchoTarget(t)
	if err := lcRoundTrip(t, p.socks, "dave", prefix+"r", echo.addr()); err == nil {
		t.Error("a password sharing the first 72 octets was accepted")
	}
	if err := lcRoundTrip(t, p.socks, "dave", password, echo.addr()); err != nil {
		t.Errorf("dave with the 255-octet password: %v", err)
	}
	code, out, errOut = lcRunBinary(t, password+"x\n", "hash")
	if code != 2 || out != "" || !strings.Contains(errOut, "1-255 octets") || strings.Contains(errOut, password) {
		t.Errorf("hash of 256 octets: exit %d, want 2 with the limit and not the password\nstdout: %s\nstderr: %s", code, out, errOut)
	}
}
