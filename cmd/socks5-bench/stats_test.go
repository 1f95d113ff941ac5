package main

import (
	"math"
	"testing"
	"time"
)

func durs(ns ...int) []time.Duration {
	out := make([]time.Duration, len(ns))
	for i, n := range ns {
		out[i] = time.Duration(n)
	}
	return out
}

func seq(n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i + 1)
	}
	return out
}

func TestPercentile(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one p50", durs(7), 50, 7},
		{"one p99", durs(7), 99, 7},
		{"two p50", durs(1, 2), 50, 1},
		{"two p99", durs(1, 2), 99, 2},
		{"1..10 p50", seq(10), 50, 5},
		{"1..10 p90", seq(10), 90, 9},
		{"1..10 p99", seq(10), 99, 10},
		{"1..100 p50", seq(100), 50, 50},
		{"1..100 p99", seq(100), 99, 99},
		{"1..100 p100", seq(100), 100, 100},
		{"1..1000 p99", seq(1000), 99, 990},
		{"p0 clamps to first", seq(10), 0, 1},
		{"p above 100 clamps to last", seq(10), 150, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentile(tc.in, tc.p); got != tc.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tc.in, tc.p, got, tc.want)
			}
		})
	}
}

func TestLatencyStatsSortsAndConverts(t *testing.T) {
	lat := make([]time.Duration, 0, 100)
	for i := 100; i >= 1; i-- { // descending on purpose
		lat = append(lat, time.Duration(i)*time.Microsecond)
	}
	p50, p99 := latencyStats(lat)
	if p50 != 50 || p99 != 99 {
		t.Errorf("latencyStats = %v, %v µs; want 50, 99", p50, p99)
	}
	if lat[0] != time.Microsecond {
		t.Errorf("latencyStats did not sort in place: first %v", lat[0])
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "0", want: 0},
		{in: "123", want: 123},
		{in: "64K", want: 64 << 10},
		{in: "64KiB", want: 64 << 10},
		{in: "8M", want: 8 << 20},
		{in: "8 MiB", want: 8 << 20},
		{in: "1G", want: 1 << 30},
		{in: "2GiB", want: 2 << 30},
		{in: "10B", want: 10},
		{in: "", bad: true},
		{in: "MiB", bad: true},
		{in: "-1M", bad: true},
		{in: "1.5G", bad: true},
		{in: "9999999999999G", bad: true},
	} {
		got, err := parseSize(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("parseSize(%q) = %d, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for in, want := range map[int64]string{
		1 << 30: "1GiB", 8 << 20: "8MiB", 3 << 10: "3KiB", 1000: "1000", 0: "0", (1 << 30) + 1: "1073741825",
	} {
		if got := formatSize(in); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestRatio(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	if r := ratio(f(3), f(2)); r == nil || *r != 1.5 {
		t.Errorf("ratio(3, 2) = %v, want 1.5", r)
	}
	for _, tc := range [][2]*float64{{nil, f(1)}, {f(1), nil}, {f(1), f(0)}} {
		if r := ratio(tc[0], tc[1]); r != nil {
			t.Errorf("ratio(%v, %v) = %v, want nil", tc[0], tc[1], *r)
		}
	}
}

func TestFitHeld(t *testing.T) {
	for _, tc := range []struct {
		want   int
		limits []uint64
		n      int
	}{
		{10000, []uint64{20000}, 9900},
		{10000, []uint64{20000, 20000, 4096}, 1948},
		{200, []uint64{20000}, 200},
		{10000, []uint64{1 << 40}, 10000},
		{10000, []uint64{100}, 0},
		{10000, nil, 10000},
	} {
		if got := fitHeld(tc.want, tc.limits...); got != tc.n {
			t.Errorf("fitHeld(%d, %v) = %d, want %d", tc.want, tc.limits, got, tc.n)
		}
	}
}

func TestMedians(t *testing.T) {
	nan := math.NaN()
	got := medians([][]float64{{3, 10, nan}, {1, 30, nan}, {2, 20, nan}})
	if got[0] != 2 || got[1] != 20 || !math.IsNaN(got[2]) {
		t.Errorf("odd count: %v", got)
	}
	got = medians([][]float64{{4, 1}, {1, 2}, {2, 3}, {100, 4}})
	if got[0] != 3 || got[1] != 2.5 {
		t.Errorf("even count: %v", got)
	}
	if got := medians([][]float64{{7, 8}}); got[0] != 7 || got[1] != 8 {
		t.Errorf("one run: %v", got)
	}
	if medians(nil) != nil {
		t.Error("no runs: not nil")
	}
}
