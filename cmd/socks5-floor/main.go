// Command socks5-floor is a measuring instrument, not a server to deploy:
// the least a SOCKS5 server can do (a greeting offering user/password, RFC
// 1929, CONNECT to an IPv4 or IPv6 address, a relay with half-close) on
// two engines, so that socks5-bench can show what an architecture costs
// apart from what a product does:
//
//   - goroutines: a goroutine per connection and io.Copy both ways, the
//     shape of every Go server on net's poller, socks5d included;
//   - epoll (Linux): one epoll loop per CPU on a thread of its own, every
//     connection a state machine, no goroutine per connection.
//
// It has no timeouts, limits, logging, domain names, BIND or UDP, and
// checks one user. Usage:
//
//	socks5-floor -engine epoll -l 127.0.0.1:1080 -u USER -P PASS
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

func main() {
	addr := flag.String("l", "127.0.0.1:1080", "listen address `host:port`")
	engine := flag.String("engine", "goroutines", "goroutines or epoll (Linux)")
	loops := flag.Int("loops", runtime.GOMAXPROCS(0), "epoll loops (engine epoll)")
	user := flag.String("u", "", "the one user's name")
	pass := flag.String("P", "", "its password")
	flag.Parse()
	if *user == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: socks5-floor [-engine goroutines|epoll] [-l host:port] -u USER -P PASS")
		os.Exit(2)
	}
	creds := credentials{user: *user, pass: *pass}
	var (
		stop func()
		err  error
	)
	switch *engine {
	case "goroutines":
		var ln net.Listener
		if ln, err = net.Listen("tcp", *addr); err == nil {
			go serveGoroutines(ln, creds)
			stop = func() { ln.Close() }
		}
	case "epoll":
		var s *epollServer
		if s, err = listenEpoll(*addr, *loops, creds); err == nil {
			stop = s.Close
		}
	default:
		err = fmt.Errorf("unknown engine %q (goroutines or epoll)", *engine)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "socks5-floor:", err)
		os.Exit(2)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	stop()
}
