//go:build !linux

package main

import (
	"errors"
	"net/netip"
)

type epollServer struct{}

func listenEpoll(string, int, credentials) (*epollServer, error) {
	return nil, errors.New("the epoll engine runs on Linux only")
}

func (*epollServer) Addr() netip.AddrPort { return netip.AddrPort{} }
func (*epollServer) Close()               {}
