package main

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of
// sorted, which must be in ascending order; 0 for an empty slice.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// latencyStats sorts lat in place and returns its p50 and p99 in
// microseconds.
func latencyStats(lat []time.Duration) (p50, p99 float64) {
	slices.Sort(lat)
	return micros(percentile(lat, 50)), micros(percentile(lat, 99))
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// sizeFlag is a byte count flag that accepts K, M, G (and KiB, MiB, GiB,
// all powers of 1024) suffixes.
type sizeFlag int64

func (s *sizeFlag) String() string { return formatSize(int64(*s)) }

func (s *sizeFlag) Set(v string) error {
	n, err := parseSize(v)
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}

func parseSize(v string) (int64, error) {
	t := strings.TrimSpace(v)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{
		{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
		{"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1},
	} {
		if rest, ok := strings.CutSuffix(t, u.suffix); ok {
			t, mult = rest, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad size %q", v)
	}
	if n < 0 {
		return 0, errors.New("size must not be negative")
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q too large", v)
	}
	return n * mult, nil
}

func formatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return strconv.FormatInt(n, 10)
}

// ratio is a/b, or nil when either is missing or b is zero.
func ratio(a, b *float64) *float64 {
	if a == nil || b == nil || *b == 0 || math.IsNaN(*a) || math.IsNaN(*b) {
		return nil
	}
	r := *a / *b
	return &r
}

// medians returns, for each position, the median of runs[*][i] (the mean
// of the middle two for an even count). NaN stays NaN.
func medians(runs [][]float64) []float64 {
	if len(runs) == 0 {
		return nil
	}
	out := make([]float64, len(runs[0]))
	col := make([]float64, len(runs))
	for i := range out {
		for r, vals := range runs {
			col[r] = vals[i]
		}
		slices.Sort(col)
		m := len(col) / 2
		if len(col)%2 == 1 {
			out[i] = col[m]
		} else {
			out[i] = (col[m-1] + col[m]) / 2
		}
	}
	return out
}

// extremes returns, per figure, the smallest and the largest of the runs
// (NaN figures are left out; both NaN when every run's is).
func extremes(runs [][]float64) [][2]float64 {
	if len(runs) == 0 {
		return nil
	}
	out := make([][2]float64, len(runs[0]))
	for i := range out {
		out[i] = [2]float64{math.NaN(), math.NaN()}
		for _, vals := range runs {
			v := vals[i]
			if math.IsNaN(v) {
				continue
			}
			if math.IsNaN(out[i][0]) || v < out[i][0] {
				out[i][0] = v
			}
			if math.IsNaN(out[i][1]) || v > out[i][1] {
				out[i][1] = v
			}
		}
	}
	return out
}
