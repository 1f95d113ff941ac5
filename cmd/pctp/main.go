// Command pctp is the interactive and scriptable PCTP client: it
// administers a running socks5d over its admin port.
//
//	pctp [-h HOST] [-p PORT] [-d LEVEL] [-u USER] [top [-i INTERVAL] [-n COUNT]]
//
// With a terminal on stdin it offers a prompt with line editing, completion
// and history (kept in the user's cache directory; PASS lines are never
// saved, and PASS alone asks for the password without echo). Otherwise it
// reads one command per line from stdin (blank lines and lines starting
// with # are skipped), prints each reply as the server sent it, and exits
// with status 1 if any reply was -ERR, 2 on a usage error and 3 if it
// cannot connect.
//
// -u USER logs in first, with the password from $PCTP_PASSWORD or, on a
// terminal, a prompt without echo; never from the command line.
//
// pctp -u USER top shows a live view of the proxy, full screen, refreshed
// every second (-i) until q or Ctrl-C: connections, traffic, failed
// logins and bans, connect latency, the busiest users and destinations.
// TOP typed at the prompt shows the same view.
package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/chzyer/readline"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/term"

	"github.com/socks5d/socks5d/pctp"
)

// Exit statuses.
const (
	exitOK      = 0
	exitFailed  = 1 // a reply was -ERR, or the session broke
	exitUsage   = 2
	exitConnect = 3
)

// passwordEnv holds the password for -u.
const passwordEnv = "PCTP_PASSWORD"

const dialTimeout = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usageText = `usage: pctp [-h HOST] [-p PORT] [-tls] [-cafile FILE] [-d LEVEL] [-u USER]
       pctp [-h HOST] [-p PORT] [-tls] [-cafile FILE] -u USER top [-i INTERVAL] [-n COUNT]

Administers a socks5d proxy over PCTP, its admin protocol.

On a terminal: a prompt with line editing, completion and history; type
HELP for the commands, TOP [INTERVAL] for the live view. Otherwise: one
command per line from stdin, each reply printed as sent (a multi-line reply
ends with an empty line).

top: a full-screen live view, refreshed every INTERVAL until q or Ctrl-C:
connections open and per second, bytes per second each way, failed logins
and bans, connect latency p50/p99, the busiest users and destinations.
Each refresh is one round trip (STATS, SESSIONS, STATS USER). On a stdout
that is not a terminal it prints one frame per refresh instead.

  -h HOST      PCTP server host (default localhost); -h alone: this help
  -p PORT      PCTP server port (default 8080)
  -tls         speak TLS to a server with pctp.tls set, verifying its
               certificate against the system's CAs (default off)
  -cafile FILE with -tls (implied), verify the certificate against the
               CA certificates (PEM) in FILE instead (default none)
  -d LEVEL     log level: DEBUG, INFO, WARN, ERROR or NONE (default WARN)
  -u USER      log in as USER first; the password comes from $PCTP_PASSWORD
               or, on a terminal, a prompt without echo (default none: no login)
  -i INTERVAL  top: refresh interval, e.g. 1s, 500ms or 2 (default 1s, at
               least 100ms)
  -n COUNT     top: stop after COUNT refreshes (default 0: until q)
  -help        this help

Exit status: 0 success, 1 a -ERR reply or a broken session, 2 usage error,
3 cannot connect.
`

// run is main without the process: it returns the exit status.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("pctp", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	host := fs.String("h", "localhost", "")
	port := fs.String("p", "8080", "")
	level := fs.String("d", "WARN", "")
	user := fs.String("u", "", "")
	refresh := fs.String("i", defaultRefresh.String(), "")
	count := fs.Int("n", 0, "")
	useTLS := fs.Bool("tls", false, "")
	caFile := fs.String("cafile", "", "")
	if len(args) > 0 && (args[len(args)-1] == "-h" || args[len(args)-1] == "--h") {
		args = append(args[:len(args)-1:len(args)-1], "-help") // -h with no host: help
	}
	parse := func(args []string) bool {
		if err := fs.Parse(args); err != nil {
			if !errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(stderr, "pctp: %v\n\n%s", err, usageText)
			}
			return false
		}
		return true
	}
	if !parse(args) {
		return helpOrUsage(args, stdout)
	}
	top := fs.NArg() > 0 && strings.EqualFold(fs.Arg(0), "top")
	if top && !parse(fs.Args()[1:]) { // flags may follow top too
		return helpOrUsage(args, stdout)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pctp: unexpected argument %q\n\n%s", fs.Arg(0), usageText)
		return exitUsage
	}
	interval, err := parseRefresh(*refresh)
	if err != nil {
		fmt.Fprintf(stderr, "pctp: -i %v\n", err)
		return exitUsage
	}
	if *count < 0 {
		fmt.Fprintf(stderr, "pctp: -n %d: want 0 (until q) or more\n", *count)
		return exitUsage
	}
	if top && *user == "" {
		fmt.Fprintln(stderr, "pctp: top needs -u USER (it logs in to read STATS and SESSIONS)")
		return exitUsage
	}
	if n, err := strconv.Atoi(*port); err != nil || n < 1 || n > 65535 {
		fmt.Fprintf(stderr, "pctp: -p %q: want a port number 1-65535\n", *port)
		return exitUsage
	}
	lvl, ok := parseLevel(*level)
	if !ok {
		fmt.Fprintf(stderr, "pctp: -d %q: want DEBUG, INFO, WARN, ERROR or NONE\n", *level)
		return exitUsage
	}
	if *host == "" {
		fmt.Fprintln(stderr, "pctp: -h needs a host")
		return exitUsage
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "pctp", Level: lvl, Output: stderr})
	tty := isTerminal(stdin)
	password := ""
	if *user != "" {
		password = os.Getenv(passwordEnv)
		if password == "" && !tty {
			fmt.Fprintf(stderr, "pctp: -u %s: set $%s (stdin is not a terminal, so no prompt)\n", *user, passwordEnv)
			return exitUsage
		}
	}

	addr := net.JoinHostPort(*host, *port)
	var tlsConfig *tls.Config
	if *useTLS || *caFile != "" {
		if tlsConfig, err = clientTLS(*host, *caFile); err != nil {
			fmt.Fprintf(stderr, "pctp: -cafile: %v\n", err)
			return exitUsage
		}
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	conn, err := dial(dctx, addr, tlsConfig)
	cancel()
	if err != nil {
		fmt.Fprintf(stderr, "pctp: cannot connect to %s: %s\n", addr, dialErrorText(err))
		return exitConnect
	}
	log.Debug("connected", "addr", addr)
	defer conn.Close()
	// On SIGINT/SIGTERM the connection closes and the pending Do fails.
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	c := pctp.NewClient(conn)

	opt := topOptions{interval: interval, count: *count, server: addr, user: *user}
	if top {
		return topCommand(ctx, c, stdin, stdout, stderr, log, opt, password)
	}
	if !tty {
		if *user != "" {
			if code := login(c, *user, password, stderr, log); code != exitOK {
				return code
			}
		}
		return script(c, stdin, stdout, stderr, log)
	}
	return interactive(ctx, c, stdin, stdout, stderr, log, opt, password)
}

// helpOrUsage is the exit status of a command line fs.Parse refused: the
// help (printed here) or a usage error (already reported).
func helpOrUsage(args []string, stdout io.Writer) int {
	for _, a := range args {
		if a == "-help" || a == "--help" || a == "-h" || a == "--h" {
			io.WriteString(stdout, usageText)
			return exitOK
		}
	}
	return exitUsage
}

// topCommand is pctp top: log in, show the view, leave.
func topCommand(ctx context.Context, c *pctp.Client, stdin io.Reader, stdout, stderr io.Writer, log hclog.Logger, opt topOptions, password string) int {
	in, inTTY := isTerminalFile(stdin)
	if password == "" { // only on a terminal (run checked)
		fmt.Fprintf(stderr, "Password for %s: ", opt.user)
		pw, err := term.ReadPassword(int(in.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			fmt.Fprintf(stderr, "pctp: reading the password: %v\n", err)
			return exitFailed
		}
		password = string(pw)
	}
	if code := login(c, opt.user, password, stderr, log); code != exitOK {
		return code
	}
	var err error
	if out, outTTY := isTerminalFile(stdout); inTTY && outTTY {
		err = runTopOnTerminal(ctx, c, in, out, opt, true)
	} else {
		err = runTopStream(ctx, c, stdout, opt)
		_, _ = c.Do("EXIT")
	}
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(stderr, "pctp: %v\n", err)
		return exitFailed
	}
	return exitOK
}

func parseLevel(s string) (hclog.Level, bool) {
	switch strings.ToUpper(s) {
	case "DEBUG":
		return hclog.Debug, true
	case "INFO":
		return hclog.Info, true
	case "WARN", "WARNING":
		return hclog.Warn, true
	case "ERROR":
		return hclog.Error, true
	case "NONE", "OFF":
		return hclog.Off, true
	}
	return hclog.NoLevel, false
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && readline.IsTerminal(int(f.Fd()))
}

// login runs USER and PASS for -u.
func login(c *pctp.Client, user, password string, stderr io.Writer, log hclog.Logger) int {
	log.Debug("logging in", "user", user)
	if err := c.Login(user, password); err != nil {
		fmt.Fprintf(stderr, "pctp: login as %s failed: %v\n", user, err)
		return exitFailed
	}
	log.Debug("logged in", "user", user)
	return exitOK
}

// do sends one command and prints the reply as the server sent it.
func do(c *pctp.Client, line string, stdout io.Writer, log hclog.Logger) (pctp.Reply, error) {
	log.Debug("sending", "cmd", keyword(line))
	r, err := c.Do(line)
	if err != nil {
		return r, err
	}
	log.Debug("reply", "ok", r.OK, "lines", len(r.Lines))
	_, err = io.WriteString(stdout, r.String())
	return r, err
}

// keyword is a command line's keyword in upper case (for logs, history
// and PASS handling; never the argument).
func keyword(line string) string {
	kw, _, _ := strings.Cut(line, " ")
	return strings.ToUpper(kw)
}

// script runs commands from a non-terminal stdin.
func script(c *pctp.Client, stdin io.Reader, stdout, stderr io.Writer, log hclog.Logger) int {
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	code := exitOK
	exited := false
	for sc.Scan() {
		line := strings.TrimLeft(strings.TrimSuffix(sc.Text(), "\r"), " \t")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r, err := do(c, line, stdout, log)
		if err != nil {
			fmt.Fprintf(stderr, "pctp: %s: %v\n", keyword(line), err)
			return exitFailed
		}
		if !r.OK {
			code = exitFailed
		}
		if r.OK && keyword(line) == "EXIT" {
			exited = true
			break
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(stderr, "pctp: reading commands: %v\n", err)
		return exitFailed
	}
	if !exited {
		_, _ = c.Do("EXIT") // end the session politely; nothing to print
	}
	return code
}

// interactive runs the prompt.
func interactive(ctx context.Context, c *pctp.Client, stdin io.Reader, stdout, stderr io.Writer, log hclog.Logger, opt topOptions, password string) int {
	user := opt.user
	rl, err := readline.NewEx(&readline.Config{
		Prompt:                 "pctp> ",
		HistoryFile:            historyFile(log),
		DisableAutoSaveHistory: true, // PASS lines must never reach the file
		HistorySearchFold:      true,
		AutoComplete:           completer(),
		InterruptPrompt:        "^C",
		EOFPrompt:              "EXIT",
		Stdin:                  io.NopCloser(stdin),
		Stdout:                 stdout,
		Stderr:                 stderr,
	})
	if err != nil {
		fmt.Fprintf(stderr, "pctp: %v\n", err)
		return exitFailed
	}
	defer rl.Close()
	out := rl.Stdout()

	if user != "" {
		if password == "" {
			pw, err := rl.ReadPassword("Password for " + user + ": ")
			if err != nil {
				return exitFailed
			}
			password = string(pw)
		}
		if code := login(c, user, password, stderr, log); code != exitOK {
			return code
		}
		fmt.Fprintf(out, "Logged in as %s. Type HELP for the commands, TOP for the live view.\n", user)
	}
	for {
		line, err := rl.Readline()
		switch {
		case errors.Is(err, readline.ErrInterrupt):
			continue // ^C clears the line; ^D or EXIT leaves
		case errors.Is(err, io.EOF):
			_, _ = c.Do("EXIT")
			return exitOK
		case err != nil:
			fmt.Fprintf(stderr, "pctp: %v\n", err)
			return exitFailed
		}
		line = strings.TrimLeft(line, " \t")
		if line == "" {
			continue
		}
		kw := keyword(line)
		if kw == "TOP" { // the client's own: the live view
			_ = rl.SaveHistory(line)
			if err := promptTop(ctx, c, stdin, stdout, line, opt); err != nil {
				fmt.Fprintf(stderr, "pctp: %v\n", err)
				if !errors.Is(err, errTop) { // the session broke
					return exitFailed
				}
			}
			continue
		}
		if kw == "PASS" {
			if cmd, arg, _ := strings.Cut(line, " "); arg == "" { // PASS alone: ask without echo
				pw, err := rl.ReadPassword("Password: ")
				if err != nil {
					continue
				}
				line = cmd + " " + string(pw)
			}
		} else {
			_ = rl.SaveHistory(line)
		}
		r, err := do(c, line, out, log)
		if err != nil {
			fmt.Fprintf(stderr, "pctp: %v\n", err)
			return exitFailed
		}
		if r.OK && kw == "EXIT" {
			return exitOK
		}
	}
}

// completer completes keywords (from the server's registry) and the fixed
// arguments.
func completer() *readline.PrefixCompleter {
	var items []readline.PrefixCompleterInterface
	for _, kw := range pctp.Keywords() {
		switch kw {
		case "ADD":
			items = append(items, readline.PcItem(kw, readline.PcItem("ADMIN"), readline.PcItem("BASIC")))
		case "CONFIG":
			items = append(items, readline.PcItem(kw, readline.PcItem("IO=")))
		default:
			items = append(items, readline.PcItem(kw))
		}
	}
	items = append(items, readline.PcItem("TOP"))
	return readline.NewPrefixCompleter(items...)
}

// historyFile is pctp/history in the user's cache directory, or "" (no
// history) when there is none.
func historyFile(log hclog.Logger) string {
	dir, err := os.UserCacheDir()
	if err != nil {
		log.Debug("no history", "error", err)
		return ""
	}
	dir = filepath.Join(dir, "pctp")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		log.Debug("no history", "error", err)
		return ""
	}
	return filepath.Join(dir, "history")
}
