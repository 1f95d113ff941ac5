package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/PID/stat; it is
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// server is one SOCKS5 server process under test.
type server struct {
	name string
	argv []string
	addr string // 127.0.0.1:port
	// addr3 is 127.0.0.1:{port3}, where a template may open an HTTP
	// CONNECT listener (--vs-http).
	addr3 string
	cmd   *exec.Cmd
	log   *os.File // the process's stdout and stderr
	done  chan struct{}
	err   error // from Wait, valid once done is closed
}

// splitWords splits a command template into words the way a POSIX shell
// does for plain words, single quotes, double quotes and backslashes. It
// does not expand anything.
func splitWords(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool // inside a word
		quote rune
	)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch {
			case r == '"':
				quote = 0
			case r == '\\' && i+1 < len(rs) && strings.ContainsRune(`"\$`+"`", rs[i+1]):
				i++
				cur.WriteRune(rs[i])
			default:
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == '\\':
			if i+1 >= len(rs) {
				return nil, errors.New("template ends with a backslash")
			}
			i++
			cur.WriteRune(rs[i])
			in = true
		case r == ' ' || r == '\t' || r == '\n':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("template has an unterminated %c quote", quote)
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// expandTemplate splits tmpl into words and then replaces the placeholders
// in each word, so a value with spaces stays one argument.
func expandTemplate(tmpl string, vars map[string]string) ([]string, error) {
	words, err := splitWords(tmpl)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, errors.New("empty server template")
	}
	if !strings.Contains(tmpl, "{port}") {
		return nil, errors.New("server template has no {port} placeholder")
	}
	pairs := make([]string, 0, 2*len(vars))
	for k, v := range vars {
		pairs = append(pairs, "{"+k+"}", v)
	}
	r := strings.NewReplacer(pairs...)
	for i, w := range words {
		words[i] = r.Replace(w)
	}
	return words, nil
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// serverName is a short name for a template: the base name of its program.
func serverName(tmpl string) string {
	words, err := splitWords(tmpl)
	if err != nil || len(words) == 0 {
		return "server"
	}
	return filepath.Base(words[0])
}

// startServer starts the server from its template in its own process
// group, with its output in a temporary file, and waits until its port
// accepts connections.
func startServer(ctx context.Context, tmpl, user, pass, dir string, timeout time.Duration, extra ...string) (*server, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, fmt.Errorf("picking a port: %w", err)
	}
	vars := map[string]string{
		"port":  strconv.Itoa(ports[0]),
		"port2": strconv.Itoa(ports[1]),
		"port3": strconv.Itoa(ports[2]),
		"user":  user,
		"pass":  pass,
	}
	for i := 0; i+1 < len(extra); i += 2 {
		vars[extra[i]] = extra[i+1]
	}
	argv, err := expandTemplate(tmpl, vars)
	if err != nil {
		return nil, err
	}
	log, err := os.CreateTemp("", "socks5-bench-*.log")
	if err != nil {
		return nil, err
	}
	s := &server{
		name:  serverName(tmpl),
		argv:  argv,
		addr:  net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
		addr3: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2])),
		log:   log,
		done:  make(chan struct{}),
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		os.Remove(log.Name())
		return nil, fmt.Errorf("starting %q: %w", argv[0], err)
	}
	s.cmd = cmd
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()

	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp4", s.addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return s, nil
		}
		select {
		case <-s.done:
			tail := s.logTail(4096)
			s.stop()
			return nil, fmt.Errorf("%s exited before accepting (%v); its output:\n%s", s.name, s.err, tail)
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			tail := s.logTail(4096)
			s.stop()
			return nil, fmt.Errorf("%s did not accept on %s within %v; its output:\n%s", s.name, s.addr, timeout, tail)
		}
	}
}

// pid is the server's process id.
func (s *server) pid() int { return s.cmd.Process.Pid }

// exited reports whether the process has ended.
func (s *server) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// stop ends the process group (SIGTERM, then SIGKILL after a grace
// period), waits for the process and removes its output file.
func (s *server) stop() {
	pgid := s.cmd.Process.Pid
	if !s.exited() {
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(3 * time.Second):
		}
	}
	// Whatever is left in the group (children of a wrapper) goes too.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-s.done:
	case <-time.After(3 * time.Second):
	}
	s.log.Close()
	os.Remove(s.log.Name())
}

// logTail returns up to the last n bytes of the server's output.
func (s *server) logTail(n int64) string {
	f, err := os.Open(s.log.Name())
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-n, 0)
	b, _ := io.ReadAll(io.NewSectionReader(f, off, n))
	return strings.TrimRight(string(b), "\n")
}

// procStatusKiB reads a "Name:   123 kB" field of /proc/PID/status.
func procStatusKiB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte(field+":"))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) == 0 {
			break
		}
		return strconv.ParseInt(f[0], 10, 64)
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// procCPUSeconds is utime+stime of the process (all its threads).
func procCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces and parentheses; fields start
	// after the last ')'. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return float64(ut+st) / clockTicks, nil
}

// procFDs counts the process's open file descriptors.
func procFDs(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents), err
}

// procFDKinds summarises the process's descriptors by kind, e.g.
// "12 socket, 796 pipe".
func procFDKinds(pid int) string {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err.Error()
	}
	counts := map[string]int{}
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		kind, _, ok := strings.Cut(l, ":")
		if !ok || strings.HasPrefix(l, "/") {
			kind = "file"
		}
		counts[kind]++
	}
	keys := slices.Sorted(maps.Keys(counts))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", counts[k], k)
	}
	return strings.Join(parts, ", ")
}

// procNofile is the process's soft RLIMIT_NOFILE from /proc/PID/limits.
func procNofile(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, err
	}
	for line := range bytes.Lines(b) {
		rest, ok := bytes.CutPrefix(line, []byte("Max open files"))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) == 0 {
			break
		}
		if f[0] == "unlimited" {
			return 1 << 30, nil
		}
		return strconv.ParseUint(f[0], 10, 64)
	}
	return 0, fmt.Errorf("no open-file limit in /proc/%d/limits", pid)
}

// raiseNofile sets the soft RLIMIT_NOFILE to the hard limit and returns
// the new soft limit. Calling Setrlimit also makes Go hand this limit to
// the processes it starts.
func raiseNofile() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, err
	}
	return rl.Cur, nil
}
