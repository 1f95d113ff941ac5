package connlog

import (
	"testing"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

func TestRingIndex(t *testing.T) {
	r := new(ring)
	for i := range 10 {
		rec := middleware.Record{ID: uint64(i)}
		r.add(&rec, 4)
	}
	got := r.records(0)
	for i, want := range []uint64{9, 8, 7, 6} {
		if got[i].ID != want {
			t.Fatalf("records = %v", got)
		}
	}
}

// BenchmarkAdd measures the ring's Add path alone: one record copied in
// under the mutex.
func BenchmarkAdd(b *testing.B) {
	r := new(ring)
	rec := middleware.Record{ID: 1, Time: time.Now(), User: "alice", Target: middleware.Target{Name: "example.org", Port: 443}, Bytes: 15750}
	b.ReportAllocs()
	for b.Loop() {
		r.add(&rec, MinSize)
	}
}
