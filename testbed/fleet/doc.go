// Package fleet is the test bed of a socks5d fleet: fleet.sh starts one
// etcd, three socks5d sharing it and one haproxy in front, on loopback;
// the tests in this package drive real clients through it.
package fleet
