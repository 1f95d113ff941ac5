package auth_test

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The test directory's tree: base dc=example,dc=test; users alice, bob
// and carol under ou=people (carol in the admin group); the service
// account cn=svc. Passwords are plaintext in the test tree (slapd
// compares them on bind).
const (
	testBase       = "dc=example,dc=test"
	testPeople     = "ou=people," + testBase
	testAdminGroup = "cn=proxy-admins,ou=groups," + testBase
	testServiceDN  = "cn=svc," + testBase
	testServicePW  = "svc-secret"
)

var testTree = `dn: dc=example,dc=test
objectClass: dcObject
objectClass: organization
o: example
dc: example

dn: ou=people,dc=example,dc=test
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=example,dc=test
objectClass: organizationalUnit
ou: groups

dn: cn=svc,dc=example,dc=test
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: svc
userPassword: ` + testServicePW + `

` + ldifUser("alice", "alice-pw") + ldifUser("bob", "bob-pw") + ldifUser("carol", "carol-pw") + `dn: cn=proxy-admins,ou=groups,dc=example,dc=test
objectClass: groupOfNames
cn: proxy-admins
member: uid=carol,ou=people,dc=example,dc=test
`

func ldifUser(uid, pw string) string {
	return "dn: uid=" + uid + "," + testPeople + "\nobjectClass: inetOrgPerson\nuid: " + uid +
		"\ncn: " + uid + "\nsn: " + uid + "\nuserPassword: " + pw + "\n\n"
}

// Anonymous clients may only bind; a bound user or the service account
// reads the tree (searches, the admin group).
const testConf = `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile DIR/slapd.pid
argsfile DIR/slapd.args
database mdb
maxsize 16777216
suffix "dc=example,dc=test"
rootdn "cn=root,dc=example,dc=test"
directory DIR/db
access to attrs=userPassword by self read by anonymous auth by * none
access to * by users read by * none
`

// slapd is Debian's OpenLDAP server run by a test on a loopback port,
// with its configuration and database in a temporary directory (no ldapi
// socket, nothing outside that directory).
type slapd struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	URL  string

	mu  sync.Mutex
	cmd *exec.Cmd
	log bytes.Buffer
}

// findTool finds an OpenLDAP program (they live in /usr/sbin and
// /usr/bin); missing, it skips the test, or fails it under CI=true.
func findTool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing and CI=true: install Debian's slapd (.ci/run does)", name)
	}
	t.Skipf("%s not installed (Debian package slapd); CI=true makes this a failure", name)
	return ""
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// startSlapd makes the test tree with slapadd and starts slapd on a free
// loopback port; it is stopped when the test ends.
func startSlapd(t *testing.T) *slapd {
	t.Helper()
	bin := findTool(t, "slapd")
	slapadd := findTool(t, "slapadd")
	if !fileExists("/etc/ldap/schema/inetorgperson.schema") || !fileExists("/usr/lib/ldap/back_mdb.so") {
		if os.Getenv("CI") == "true" {
			t.Fatal("slapd's schema or back_mdb module is missing and CI=true: install Debian's slapd")
		}
		t.Skip("slapd's schema or back_mdb module is missing (Debian package slapd)")
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(conf, []byte(strings.ReplaceAll(testConf, "DIR", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	add := exec.Command(slapadd, "-f", conf, "-q")
	add.Stdin = strings.NewReader(testTree)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("slapadd: %v\n%s", err, out)
	}
	s := &slapd{t: t, bin: bin, dir: dir, port: freePort(t)}
	s.URL = "ldap://127.0.0.1:" + strconv.Itoa(s.port)
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// freePort returns a loopback TCP port nobody listens on at the moment.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Start runs slapd in the foreground (-d 0) and waits until it accepts
// connections (at most 10 s).
func (s *slapd) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatal("slapd already running")
	}
	cmd := exec.Command(s.bin, "-f", filepath.Join(s.dir, "slapd.conf"), "-h", s.URL+"/", "-d", "0")
	cmd.Stdout, cmd.Stderr = &s.log, &s.log
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("slapd: %v", err)
	}
	s.cmd = cmd
	addr := "127.0.0.1:" + strconv.Itoa(s.port)
	for range 200 {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("slapd did not listen on %s within 10s:\n%s", addr, s.log.String())
}

// Stop kills slapd (the directory goes down) and waits for it.
func (s *slapd) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}
