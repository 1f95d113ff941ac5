package fleet

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"github.com/socks5d/socks5d/pctp"
)

// fleet is a running test bed.
type fleet struct {
	dir   string
	ports map[string]int
	cmd   *exec.Cmd
}

// need skips (locally) or fails (CI=true) when a tool is missing.
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("the fleet test bed needs %s, which is not installed (Debian: apt-get install etcd-server etcd-client haproxy curl python3)", tool)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// startFleet builds socks5d and starts fleet.sh with n instances.
func startFleet(t *testing.T, n int) *fleet {
	t.Helper()
	need(t, "etcd", "etcdctl", "haproxy", "python3", "curl")
	dir := t.TempDir()
	bin := filepath.Join(dir, "socks5d")
	build := exec.Command("go", "build", "-o", bin, "github.com/socks5d/socks5d/cmd/socks5d")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	bed := filepath.Join(dir, "bed")
	cmd := exec.Command("bash", "fleet.sh", "--dir", bed, "--n", strconv.Itoa(n), "--socks5d", bin)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f := &fleet{dir: bed, cmd: cmd}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
		}
		if t.Failed() {
			for _, name := range []string{"etcd", "haproxy", "socks5d-1", "socks5d-2", "socks5d-3"} {
				if b, err := os.ReadFile(filepath.Join(bed, name+".log")); err == nil {
					t.Logf("--- %s.log (tail)\n%s", name, tail(string(b), 3000))
				}
			}
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(bed, "ready")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the fleet did not start within 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.ports = map[string]int{}
	b, err := os.ReadFile(filepath.Join(bed, "ports.env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Fields(string(b)) {
		k, v, _ := strings.Cut(line, "=")
		f.ports[k], _ = strconv.Atoi(v)
	}
	return f
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (f *fleet) addr(key string) string { return "127.0.0.1:" + strconv.Itoa(f.ports[key]) }

// admin logs in to instance i's PCTP.
func (f *fleet) admin(t *testing.T, i int) *pctp.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pctp.Dial(ctx, f.addr(fmt.Sprintf("PCTP_%d", i)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login("admin", "admin-secret"); err != nil {
		t.Fatal(err)
	}
	return c
}

// do sends one command and returns the first line of the reply.
func do(t *testing.T, c *pctp.Client, cmds ...string) pctp.Reply {
	t.Helper()
	var r pctp.Reply
	var err error
	for _, cmd := range cmds {
		if r, err = c.Do(cmd); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
	}
	return r
}

// stat reads one STATS key of instance i.
func (f *fleet) stat(t *testing.T, c *pctp.Client, key string) int64 {
	t.Helper()
	r := do(t, c, "STATS")
	for _, l := range r.Lines {
		if k, v, ok := strings.Cut(l, ": "); ok && k == key {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatalf("STATS has no %s: %v", key, r.Lines)
	return 0
}

// dial opens a relayed connection to dest through the SOCKS server at
// via, as user, from the local address from (nil: 127.0.0.3).
func dial(via, user, pass, dest string, from net.IP) (net.Conn, error) {
	if from == nil {
		// Not 127.0.0.1: with PROXY protocol on, the instances trust that
		// address (haproxy's) and want a header from it.
		from = net.IPv4(127, 0, 0, 3)
	}
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: from}}
	sd, err := proxy.SOCKS5("tcp", via, &proxy.Auth{User: user, Password: pass}, d)
	if err != nil {
		return nil, err
	}
	return sd.Dial("tcp", dest)
}

// cycle is one full connection: connect, authenticate, CONNECT, echo 8 bytes, close.
func cycle(via, user, pass, dest string) error {
	c, err := dial(via, user, pass, dest, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("12345678")); err != nil {
		return err
	}
	buf := make([]byte, 8)
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != "12345678" {
		return fmt.Errorf("echo: %q", buf)
	}
	return nil
}

// eventually polls cond every 50ms for at most limit and returns how long
// it took, failing the test if it never held.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for n := 0; n < int(limit/(50*time.Millisecond))+1; n++ {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s", what, limit)
	return 0
}

// haproxyUp reports whether haproxy's stats say server sN is UP.
func (f *fleet) haproxyUp(t *testing.T, server string) bool {
	t.Helper()
	resp, err := http.Get("http://" + f.addr("HAPROXY_STATS") + "/;csv")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ",")
		if len(fields) > 17 && fields[0] == "fleet" && fields[1] == server {
			return strings.HasPrefix(fields[17], "UP")
		}
	}
	return false
}

func (f *fleet) pid(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.dir, name+".pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// restart starts a stopped process of the bed again with its command.
func (f *fleet) restart(t *testing.T, name string) {
	t.Helper()
	cmdline, err := os.ReadFile(filepath.Join(f.dir, name+".cmd"))
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(filepath.Join(f.dir, name+".log"), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command("bash", "-c", "exec "+string(cmdline))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go cmd.Wait()
	os.WriteFile(filepath.Join(f.dir, name+".pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600)
}

// stop ends a process of the bed (SIGKILL when hard) and waits for it.
func (f *fleet) stop(t *testing.T, name string, hard bool) {
	t.Helper()
	pid := f.pid(t, name)
	sig := syscall.SIGTERM
	if hard {
		sig = syscall.SIGKILL
	}
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, name+" to end", func() bool {
		return syscall.Kill(pid, 0) != nil || isZombie(pid)
	})
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	return i > 0 && len(b) > i+2 && b[i+2] == 'Z'
}

// configValue returns a CONFIG key's value on c.
func configValue(t *testing.T, c *pctp.Client, key string) string {
	t.Helper()
	r := do(t, c, "CONFIG")
	for _, l := range r.Lines {
		if k, v, ok := strings.Cut(l, ": "); ok && k == key {
			return v
		}
	}
	t.Fatalf("CONFIG has no %s", key)
	return ""
}

var errClosed = errors.New("closed")

// waitClosed reports whether c is closed by the server within limit.
func waitClosed(c net.Conn, limit time.Duration) error {
	c.SetReadDeadline(time.Now().Add(limit))
	buf := make([]byte, 16)
	for {
		if _, err := c.Read(buf); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return err
			}
			return errClosed
		}
	}
}

func execCommand(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).CombinedOutput()
}

// metrics returns instance i's /metrics page.
func (f *fleet) metrics(t *testing.T, i int) string {
	t.Helper()
	resp, err := http.Get("http://" + f.addr(fmt.Sprintf("METRICS_%d", i)) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
