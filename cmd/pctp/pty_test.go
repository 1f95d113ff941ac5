//go:build linux

package main

// The top view driven in a real pseudo-terminal: the client runs as a
// child process (this test binary, re-executed as pctp) on the pty's
// slave side, and the test types on the master side.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// asPCTP makes the re-executed test binary run main.
const asPCTP = "PCTP_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asPCTP) == "1" {
		main()
	}
	os.Exit(m.Run())
}

func ioctl(fd uintptr, req uint, arg unsafe.Pointer) error {
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, uintptr(req), uintptr(arg)); e != 0 {
		return e
	}
	return nil
}

// openPTY returns a new pseudo-terminal's master and slave, the window
// cols×rows.
func openPTY(t *testing.T, cols, rows uint16) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	var n uint32
	var unlock int32
	if err := ioctl(master.Fd(), syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		t.Fatal(err)
	}
	if err := ioctl(master.Fd(), syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		t.Fatal(err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close(); slave.Close() })
	setWinsize(t, master, cols, rows)
	return master, slave
}

func setWinsize(t *testing.T, f *os.File, cols, rows uint16) {
	t.Helper()
	ws := [4]uint16{rows, cols, 0, 0}
	if err := ioctl(f.Fd(), syscall.TIOCSWINSZ, unsafe.Pointer(&ws)); err != nil {
		t.Fatal(err)
	}
}

func termios(t *testing.T, f *os.File) syscall.Termios {
	t.Helper()
	var tio syscall.Termios
	if err := ioctl(f.Fd(), syscall.TCGETS, unsafe.Pointer(&tio)); err != nil {
		t.Fatal(err)
	}
	return tio
}

// ptyChild is pctp running on a pty.
type ptyChild struct {
	cmd    *exec.Cmd
	master *os.File
	out    *syncBuf
	done   chan struct{} // closed when the child has exited
	err    error         // Wait's, once done is closed
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startOnPTY(t *testing.T, master, slave *os.File, args ...string) *ptyChild {
	t.Helper()
	return startOnPTYEnv(t, master, slave, passwordEnv+"=password", args...)
}

// startOnPTYEnv runs pctp on the pty with one more environment variable
// (or none, if env is "").
func startOnPTYEnv(t *testing.T, master, slave *os.File, env string, args ...string) *ptyChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), asPCTP+"=1", "HOME="+t.TempDir(), "XDG_CACHE_HOME="+t.TempDir())
	if env != "" {
		cmd.Env = append(cmd.Env, env)
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &ptyChild{cmd: cmd, master: master, out: &syncBuf{}, done: make(chan struct{})}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			c.out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
		}
	})
	return c
}

// waitFor waits until the output holds want n times.
func (c *ptyChild) waitFor(t *testing.T, want string, n int) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Count(c.out.String(), want) >= n {
			return
		}
	}
	t.Fatalf("no %q (×%d) on the terminal:\n%q", want, n, c.out.String())
}

func (c *ptyChild) waitExit(t *testing.T) {
	t.Helper()
	select {
	case <-c.done:
		if c.err != nil {
			t.Fatalf("pctp: %v\n%q", c.err, c.out.String())
		}
	case <-time.After(15 * time.Second):
		c.cmd.Process.Signal(syscall.SIGQUIT)
		time.Sleep(time.Second)
		t.Fatalf("pctp did not exit:\n%s", c.out.String())
	}
}

// pctp top on a terminal: the alternate screen, a frame sized to the
// window and redrawn when the window changes, q ends it, and the terminal
// is as it was (echo and line mode back on, main screen, cursor shown).
func TestTopOnPseudoTerminal(t *testing.T) {
	port := serverWith(t, topAdmin())
	master, slave := openPTY(t, 100, 30)
	before := termios(t, slave)
	c := startOnPTY(t, master, slave, "-h", "127.0.0.1", "-p", port, "-u", "admin", "top", "-i", "200ms")
	c.waitFor(t, enterAltScreen, 1)
	c.waitFor(t, "alice", 2) // two refreshes
	dest := func(width int) string {
		return fmt.Sprintf("%-*s %11s %4s", clamp(width-17, 8, 60), "DESTINATION", "RATE", "OPEN")
	}
	if !strings.Contains(c.out.String(), dest(100)+clearLineEnd) {
		t.Fatalf("no frame 100 wide:\n%q", c.out.String())
	}
	setWinsize(t, master, 60, 20) // the kernel sends SIGWINCH
	c.waitFor(t, dest(60)+clearLineEnd, 1)
	if tio := termios(t, slave); tio.Lflag&syscall.ECHO != 0 || tio.Lflag&syscall.ICANON != 0 {
		t.Fatalf("top runs with echo or line mode on: lflag %#x", tio.Lflag)
	}
	master.Write([]byte("q"))
	c.waitExit(t)
	c.waitFor(t, leaveAltScreen, 1) // the child is gone; its last bytes may still be on their way
	out := c.out.String()
	if !strings.HasSuffix(out, leaveAltScreen) {
		t.Fatalf("the terminal was not put back last:\n%q", out[max(len(out)-200, 0):])
	}
	if after := termios(t, slave); after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag {
		t.Fatalf("terminal modes not restored: before %+v, after %+v", before, after)
	}
}

// TOP at the interactive prompt: Ctrl-C leaves the view, and the prompt
// goes on reading the same terminal on the same session.
func TestTopAtPrompt(t *testing.T) {
	port := serverWith(t, topAdmin())
	master, slave := openPTY(t, 100, 30)
	c := startOnPTY(t, master, slave, "-h", "127.0.0.1", "-p", port, "-u", "admin")
	c.waitFor(t, "pctp> ", 1)
	master.Write([]byte("top 150ms\r"))
	c.waitFor(t, enterAltScreen, 1)
	c.waitFor(t, "example.com:443", 2)
	master.Write([]byte{3}) // Ctrl-C
	c.waitFor(t, leaveAltScreen, 1)
	master.Write([]byte("LIST\r"))
	c.waitFor(t, "admin\tAdmin", 1)
	master.Write([]byte("EXIT\r"))
	c.waitFor(t, "+OK Done", 1)
	c.waitExit(t)
}

// pctp top without $PCTP_PASSWORD asks for the password on the terminal,
// without echo, then shows the view; Ctrl-C ends it with status 0.
func TestTopAsksPassword(t *testing.T) {
	port := serverWith(t, topAdmin())
	master, slave := openPTY(t, 100, 30)
	c := startOnPTYEnv(t, master, slave, passwordEnv+"=", "-h", "127.0.0.1", "-p", port, "-u", "admin", "top")
	c.waitFor(t, "Password for admin: ", 1)
	master.Write([]byte("password\r"))
	c.waitFor(t, "example.com:443", 1)
	if strings.Contains(c.out.String(), "password\r") {
		t.Fatalf("the password was echoed:\n%q", c.out.String())
	}
	master.Write([]byte{3})
	c.waitExit(t)
}
