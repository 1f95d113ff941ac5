package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// scripted plays the server side over a pipe: for each step it reads
// exactly len(expect) bytes, checks them, and writes reply.
type step struct {
	expect []byte
	reply  [][]byte // written one after another (split replies)
}

func runScripted(t *testing.T, user, pass string, steps []step) (error, error) {
	t.Helper()
	cli, srv := net.Pipe()
	defer cli.Close()
	srvErr := make(chan error, 1)
	go func() {
		defer srv.Close()
		for _, s := range steps {
			got := make([]byte, len(s.expect))
			if _, err := io.ReadFull(srv, got); err != nil {
				srvErr <- err
				return
			}
			if !bytes.Equal(got, s.expect) {
				srvErr <- errors.New("client sent " + string(rune('0'+len(got))) + " unexpected bytes: " + string(got))
				return
			}
			for _, r := range s.reply {
				if _, err := srv.Write(r); err != nil {
					srvErr <- err
					return
				}
			}
		}
		srvErr <- nil
	}()
	cli.SetDeadline(time.Now().Add(5 * time.Second))
	err := socksConnect(cli, user, pass, netip.MustParseAddrPort("127.0.0.1:4660"))
	cli.Close()
	return err, <-srvErr
}

var (
	greetAuth = []byte{5, 1, 2}
	authUP    = []byte{1, 1, 'u', 2, 'p', 'w'}
	connReq   = []byte{5, 1, 0, 1, 127, 0, 0, 1, 0x12, 0x34}
)

func TestSocksConnect(t *testing.T) {
	for _, tc := range []struct {
		name    string
		user    string
		steps   []step
		wantErr string
	}{
		{"auth and IPv4 reply", "u", []step{
			{greetAuth, [][]byte{{5, 2}}},
			{authUP, [][]byte{{1, 0}}},
			{connReq, [][]byte{{5, 0, 0, 1, 127, 0, 0, 1, 0, 80}}},
		}, ""},
		{"no auth", "", []step{
			{[]byte{5, 1, 0}, [][]byte{{5, 0}}},
			{connReq, [][]byte{{5, 0, 0, 1, 0, 0, 0, 0, 0, 0}}},
		}, ""},
		{"IPv6 reply in pieces", "u", []step{
			{greetAuth, [][]byte{{5, 2}}},
			{authUP, [][]byte{{1, 0}}},
			{connReq, [][]byte{{5, 0, 0, 4, 0, 0}, make([]byte, 14), {0, 1}}},
		}, ""},
		{"domain reply", "u", []step{
			{greetAuth, [][]byte{{5, 2}}},
			{authUP, [][]byte{{1, 0}}},
			{connReq, [][]byte{{5, 0, 0, 3, 4, 'h', 'o', 's', 't', 0, 80}}},
		}, ""},
		{"no acceptable method", "u", []step{
			{greetAuth, [][]byte{{5, 0xff}}},
		}, "method 0xff"},
		{"auth refused", "u", []step{
			{greetAuth, [][]byte{{5, 2}}},
			{authUP, [][]byte{{1, 1}}},
		}, "authentication refused"},
		{"connect refused", "u", []step{
			{greetAuth, [][]byte{{5, 2}}},
			{authUP, [][]byte{{1, 0}}},
			{connReq, [][]byte{{5, 5, 0, 1, 0, 0, 0, 0, 0, 0}}},
		}, "reply code 5"},
		{"bad address type", "u", []step{
			{greetAuth, [][]byte{{5, 2}}},
			{authUP, [][]byte{{1, 0}}},
			{connReq, [][]byte{{5, 0, 0, 9, 0, 0, 0, 0, 0, 0}}},
		}, "address type 9"},
		{"server closes", "u", []step{
			{greetAuth, nil},
		}, "greeting reply"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pass := "pw"
			err, srvErr := runScripted(t, tc.user, pass, tc.steps)
			if srvErr != nil {
				t.Fatalf("server side: %v", srvErr)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("socksConnect: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, errSocks) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("socksConnect = %v, want an errSocks containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestSocksConnectRejectsBadInput(t *testing.T) {
	var rw bytes.Buffer
	if err := socksConnect(&rw, "u", "p", netip.MustParseAddrPort("[::1]:80")); err == nil {
		t.Error("IPv6 target: no error")
	}
	if err := socksConnect(&rw, strings.Repeat("u", 256), "p", netip.MustParseAddrPort("127.0.0.1:80")); err == nil {
		t.Error("long user: no error")
	}
	if rw.Len() != 0 {
		t.Errorf("wrote %d bytes before rejecting", rw.Len())
	}
}
