package fleet

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socks5d/socks5d/internal/testnet"
	"github.com/socks5d/socks5d/pctp"
)

// TestFleet starts one test bed (etcd, three socks5d, haproxy) and runs
// the fleet's scenarios on it in order; the last ones stop parts of it.
func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("the fleet test bed takes a while; not with -short")
	}
	f := startFleet(t, 3)
	dest := testnet.Echo(t)
	front := f.addr("FRONT")
	a1, a2, a3 := f.admin(t, 1), f.admin(t, 2), f.admin(t, 3)

	t.Run("UserAddedOnOneUsedEverywhere", func(t *testing.T) {
		if r := do(t, a1, "ADD BASIC", "USER carol", "PASS carol-pw-1"); !r.OK {
			t.Fatalf("ADD on instance 1: %s", r.Status)
		}
		took := eventually(t, 5*time.Second, "carol through instance 3", func() bool {
			return cycle(f.addr("SOCKS_3"), "carol", "carol-pw-1", dest) == nil
		})
		t.Logf("carol, added on instance 1, logged in through instance 3 after %s", took)
		for i := 0; i < 6; i++ { // round robin: every instance serves some
			if err := cycle(front, "carol", "carol-pw-1", dest); err != nil {
				t.Fatalf("carol through haproxy, cycle %d: %v", i, err)
			}
		}
	})

	t.Run("DelOnOneClosesSessionsEverywhere", func(t *testing.T) {
		do(t, a1, "ADD BASIC", "USER dave", "PASS dave-pw-1")
		var c1, c3 net.Conn
		eventually(t, 5*time.Second, "dave on instances 1 and 3", func() bool {
			var err1, err3 error
			if c1 == nil {
				c1, err1 = dial(f.addr("SOCKS_1"), "dave", "dave-pw-1", dest, nil)
			}
			if c3 == nil {
				c3, err3 = dial(f.addr("SOCKS_3"), "dave", "dave-pw-1", dest, nil)
			}
			return err1 == nil && err3 == nil
		})
		defer c1.Close()
		defer c3.Close()
		if r := do(t, a2, "DEL dave"); !r.OK {
			t.Fatalf("DEL on instance 2: %s", r.Status)
		}
		for i, c := range []net.Conn{c1, c3} {
			if err := waitClosed(c, 5*time.Second); !errors.Is(err, errClosed) {
				t.Errorf("dave's session on instance %d was not closed after DEL on instance 2: %v", 2*i+1, err)
			}
		}
	})

	t.Run("KillUserActsFleetWide", func(t *testing.T) {
		c1, err := dial(f.addr("SOCKS_1"), "carol", "carol-pw-1", dest, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c1.Close()
		if r := do(t, a3, "KILL USER carol"); !r.OK {
			t.Fatalf("KILL USER on instance 3: %s", r.Status)
		}
		if err := waitClosed(c1, 5*time.Second); !errors.Is(err, errClosed) {
			t.Errorf("carol's session on instance 1 was not closed by KILL USER on instance 3: %v", err)
		}
	})

	t.Run("ConcurrentConfigNeverLost", func(t *testing.T) {
		// Each round: instance 1 and 2 change two settings at the same
		// moment. Each change is +OK or -ERR naming the conflict; every
		// +OK change must end up on all three instances.
		conflicts := 0
		for round := 1; round <= 8; round++ {
			l := fmt.Sprintf("%ds", 60+round)
			h := fmt.Sprintf("%ds", 20+round)
			var r1, r2 string
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); r1 = do(t, a1, "CONFIG socks.linger="+l).Status }()
			go func() { defer wg.Done(); r2 = do(t, a2, "CONFIG socks.handshake_timeout="+h).Status }()
			wg.Wait()
			for _, r := range []string{r1, r2} {
				if !strings.HasPrefix(r, "+OK") {
					if !strings.Contains(r, "conflict") {
						t.Fatalf("round %d: a refused change must name the conflict: %q", round, r)
					}
					conflicts++
				}
			}
			want := map[string]string{}
			if strings.HasPrefix(r1, "+OK") {
				want["socks.linger"] = (time.Duration(60+round) * time.Second).String()
			}
			if strings.HasPrefix(r2, "+OK") {
				want["socks.handshake_timeout"] = (time.Duration(20+round) * time.Second).String()
			}
			for key, v := range want {
				for i, adm := range []*pctp.Client{a1, a2, a3} {
					eventually(t, 5*time.Second, fmt.Sprintf("round %d: %s=%s on instance %d", round, key, v, i+1), func() bool {
						return configValue(t, adm, key) == v
					})
				}
			}
		}
		t.Logf("8 rounds of two concurrent changes: %d of 16 refused with a conflict, every accepted one applied on all 3 instances", conflicts)
	})

	t.Run("ConcurrentRuleEditsNeverLost", func(t *testing.T) {
		// RULE ADD names a position, so a lost race is refused, never
		// made on a list that changed: each edit is +OK or -ERR naming
		// the conflict, and the rules every instance ends with are
		// exactly the accepted ones.
		var want []string
		conflicts := 0
		for round := 1; round <= 6; round++ {
			rules := []string{fmt.Sprintf("allow dest=127.0.1.%d/32", round), fmt.Sprintf("allow dest=127.0.2.%d/32", round)}
			var r [2]string
			var wg sync.WaitGroup
			for i, a := range []*pctp.Client{a1, a2} {
				wg.Add(1)
				go func() { defer wg.Done(); r[i] = do(t, a, "RULE ADD "+rules[i]).Status }()
			}
			wg.Wait()
			for i := range r {
				switch {
				case strings.HasPrefix(r[i], "+OK"):
					want = append(want, rules[i])
				case strings.Contains(r[i], "conflict"):
					conflicts++
				default:
					t.Fatalf("round %d: %q", round, r[i])
				}
			}
			// The next round starts once every instance has caught up.
			for i, a := range []*pctp.Client{a1, a2, a3} {
				eventually(t, 5*time.Second, fmt.Sprintf("round %d: %d rules on instance %d", round, len(want), i+1), func() bool {
					return len(do(t, a, "RULES").Lines) == len(want)
				})
			}
		}
		for i, a := range []*pctp.Client{a1, a2, a3} {
			got := do(t, a, "RULES").Lines
			for _, w := range want {
				if !strings.Contains(strings.Join(got, "\n"), w+" ") {
					t.Errorf("instance %d lacks the accepted rule %q: %v", i+1, w, got)
				}
			}
		}
		t.Logf("6 rounds of two concurrent RULE ADDs: %d accepted and on all 3 instances, %d refused with a conflict", len(want), conflicts)
	})

	t.Run("BanSharedAcrossInstances", func(t *testing.T) {
		attacker := net.ParseIP("127.0.0.2")
		bystander := net.ParseIP("127.0.0.3")
		for i := 0; i < 5; i++ { // max_failures 3: the 4th failure bans
			if c, err := dial(f.addr("SOCKS_2"), "carol", "wrong", dest, attacker); err == nil {
				c.Close()
				t.Fatal("a wrong password was accepted")
			}
		}
		took := eventually(t, 5*time.Second, "the ban from instance 2 refusing the attacker at instance 3", func() bool {
			c, err := dial(f.addr("SOCKS_3"), "carol", "carol-pw-1", dest, attacker)
			if err == nil {
				c.Close()
			}
			return err != nil
		})
		t.Logf("a ban decided on instance 2 refused the source at instance 3 after %s", took)
		c, err := dial(f.addr("SOCKS_3"), "carol", "carol-pw-1", dest, bystander)
		if err != nil {
			t.Fatalf("another source was refused too: %v", err)
		}
		c.Close()
		if f.ports["PROXY_PROTOCOL"] == 1 {
			// Through haproxy with send-proxy-v2: the instances see the
			// client's own address, so a ban earned through the balancer
			// refuses that client at an instance reached directly, and
			// never the balancer. Failures are counted per instance (bans
			// are shared): round robin over 3 instances needs 3×(3+1).
			through := net.ParseIP("127.0.0.4")
			for i := 0; i < 12; i++ {
				if c, err := dial(front, "carol", "wrong", dest, through); err == nil {
					c.Close()
				}
			}
			eventually(t, 5*time.Second, "a ban earned through haproxy refusing the client at instance 3", func() bool {
				c, err := dial(f.addr("SOCKS_3"), "carol", "carol-pw-1", dest, through)
				if err == nil {
					c.Close()
				}
				return err != nil
			})
			if err := cycle(front, "carol", "carol-pw-1", dest); err != nil {
				t.Fatalf("a ban through haproxy refused another client (the balancer's address was banned?): %v", err)
			}
			t.Log("PROXY protocol v2 on: a ban earned through haproxy refused that client at instance 3, other clients through haproxy still served")
		} else {
			t.Log("this socks5d has no socks.proxy_protocol: haproxy runs without send-proxy-v2, and the ban through the balancer is not checked")
		}
		// The lease ends with the ban (5s): the source is let in again.
		eventually(t, 15*time.Second, "the ban to expire at instance 3", func() bool {
			c, err := dial(f.addr("SOCKS_3"), "carol", "carol-pw-1", dest, attacker)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
	})

	t.Run("BadValueInEtcdKeepsLastGoodState", func(t *testing.T) {
		etcdctl(t, f, "put", "/socks5d/users/mallory", "not json")
		eventually(t, 5*time.Second, "the refusal logged naming the key", func() bool {
			b, _ := os.ReadFile(filepath.Join(f.dir, "socks5d-1.log"))
			return strings.Contains(string(b), "/socks5d/users/mallory")
		})
		if r := do(t, a1, "LIST"); strings.Contains(strings.Join(r.Lines, "\n"), "mallory") || !strings.Contains(strings.Join(r.Lines, "\n"), "carol") {
			t.Errorf("LIST after a bad value: %v", r.Lines)
		}
		r := do(t, a1, "CONFIG socks.idle_timeout=5m")
		if r.OK || !strings.Contains(r.Status, "mallory") {
			t.Errorf("a change while the store holds a bad value: %q (want -ERR naming the key)", r.Status)
		}
		if err := cycle(front, "carol", "carol-pw-1", dest); err != nil {
			t.Errorf("serving stopped: %v", err)
		}
		etcdctl(t, f, "del", "/socks5d/users/mallory")
		eventually(t, 5*time.Second, "changes accepted again once the key is gone", func() bool {
			return do(t, a1, "CONFIG socks.idle_timeout=5m").OK
		})
	})

	t.Run("InstanceKilledMidTraffic", func(t *testing.T) {
		var before int
		for i := 0; i < 30; i++ {
			if cycle(front, "carol", "carol-pw-1", dest) == nil {
				before++
			}
		}
		if before != 30 {
			t.Fatalf("%d of 30 cycles through haproxy failed before the kill", 30-before)
		}
		f.stop(t, "socks5d-2", true)
		failedMeanwhile := 0
		took := eventually(t, 10*time.Second, "haproxy to mark instance 2 down", func() bool {
			if cycle(front, "carol", "carol-pw-1", dest) != nil {
				failedMeanwhile++
			}
			return !f.haproxyUp(t, "s2")
		})
		failed := 0
		for i := 0; i < 300; i++ {
			if err := cycle(front, "carol", "carol-pw-1", dest); err != nil {
				failed++
			}
		}
		t.Logf("instance 2 killed: haproxy marked it down after %s; %d cycles failed before that, %d of 300 after", took, failedMeanwhile, failed)
		if failed > 0 {
			t.Errorf("%d of 300 new connections through haproxy failed after instance 2 was removed", failed)
		}
	})

	t.Run("EtcdStoppedAndRestarted", func(t *testing.T) {
		f.stop(t, "etcd", false)
		eventually(t, 10*time.Second, "instances to see etcd gone", func() bool {
			return f.stat(t, a1, "store_connected") == 0 && f.stat(t, a3, "store_connected") == 0
		})
		for i := 0; i < 20; i++ {
			if err := cycle(front, "carol", "carol-pw-1", dest); err != nil {
				t.Fatalf("serving stopped with etcd down: %v", err)
			}
		}
		r := do(t, a1, "ADD BASIC", "USER erin", "PASS erin-pw-1")
		if r.OK || !strings.Contains(r.Status, "etcd") {
			t.Fatalf("ADD with etcd down: %q (want -ERR naming etcd)", r.Status)
		}
		// An instance restarted while etcd is down serves from its copy.
		f.stop(t, "socks5d-3", false)
		f.restart(t, "socks5d-3")
		eventually(t, 15*time.Second, "instance 3 to serve from its copy", func() bool {
			return cycle(f.addr("SOCKS_3"), "carol", "carol-pw-1", dest) == nil
		})
		b, _ := os.ReadFile(filepath.Join(f.dir, "socks5d-3.log"))
		if !strings.Contains(string(b), "serving from the last copy") {
			t.Error("instance 3 did not say it serves from its copy")
		}
		f.restart(t, "etcd")
		a3 = f.admin(t, 3)
		took := eventually(t, 20*time.Second, "instances to reconnect", func() bool {
			return f.stat(t, a1, "store_connected") == 1 && f.stat(t, a3, "store_connected") == 1
		})
		t.Logf("instances reconnected %s after etcd restarted", took)
		metrics := f.metrics(t, 1)
		for _, key := range []string{"store_connected", "store_revision", "store_errors", "store_conflicts", "store_bad_values"} {
			if !regexp.MustCompile(`socks5d_stat\{[^}]*key="` + key + `"[^}]*\} `).MatchString(metrics) {
				t.Errorf("/metrics lacks the store's health %s", key)
			}
		}
		if !regexp.MustCompile(`socks5d_stat\{[^}]*key="store_connected"[^}]*\} 1\n`).MatchString(metrics) {
			t.Error("/metrics does not say the store is connected again")
		}
		eventually(t, 10*time.Second, "ADD accepted again", func() bool {
			return do(t, a1, "ADD BASIC", "USER erin", "PASS erin-pw-1").OK
		})
		eventually(t, 10*time.Second, "erin on instance 3 (converged)", func() bool {
			return cycle(f.addr("SOCKS_3"), "erin", "erin-pw-1", dest) == nil
		})
		if r1, r3 := f.stat(t, a1, "store_revision"), f.stat(t, a3, "store_revision"); r1 != r3 {
			eventually(t, 5*time.Second, "the same revision on instances 1 and 3", func() bool {
				return f.stat(t, a1, "store_revision") == f.stat(t, a3, "store_revision")
			})
		}
	})
}

// etcdctl runs etcdctl against the bed's etcd.
func etcdctl(t *testing.T, f *fleet, args ...string) {
	t.Helper()
	out, err := execCommand("etcdctl", append([]string{"--endpoints", f.addr("ETCD")}, args...)...)
	if err != nil {
		t.Fatalf("etcdctl %v: %v\n%s", args, err, out)
	}
}
