package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func fp(v float64) *float64 { return &v }

func sampleReport(two bool) *Report {
	r := &Report{
		Servers: []ServerInfo{{Label: "a", Name: "socks5d", Command: "socks5d -p {port}"}},
		Settings: Settings{
			BulkBytes: 1 << 30, BulkTime: 4, Streams: 8, Cycles: 5000, CyclesPar: 20000, Par: 64,
			CycleTime: 3, HeldWanted: 10000, Held: 9900, RTT: 20000, RTTTime: 3, Nofile: 20000, GOMAXPROCS: 2,
		},
		Rows: []Row{
			{Metric: "bulk upload, 1 stream", Unit: "GiB/s", Better: "higher", Direct: fp(4), A: fp(2.5)},
			{Metric: "connection cycles, 64-way", Unit: "cycles/s", Better: "higher", Direct: fp(20000), A: fp(9000)},
			{Metric: "server RSS per held connection", Unit: "KiB", Better: "lower", A: fp(12.5), sub: true},
			{Metric: "64-byte round trip p50", Unit: "µs", Better: "lower", Direct: fp(15.5), A: fp(1500),
				Errors: nil},
		},
		Elapsed: 61.25,
	}
	if two {
		r.Servers = append(r.Servers, ServerInfo{Label: "b", Name: "microsocks", Command: "microsocks -p {port}"})
		r.Rows[0].B = fp(0.25)
		r.Rows[1].B = fp(8000)
		r.Rows[2].B = fp(13)
		r.Rows[3].Errors = map[string]string{"b": "connection refused"}
		r.Notes = []string{"microsocks: rtt 64B: connection refused\nsecond line"}
	}
	for i := range r.Rows {
		r.Rows[i].fillRatios()
	}
	return r
}

func TestWriteTableOneServer(t *testing.T) {
	var b bytes.Buffer
	if err := writeTable(&b, sampleReport(false)); err != nil {
		t.Fatal(err)
	}
	want := `A = socks5d: socks5d -p {port}
bulk 1GiB/stream ≤4s, 1 and 8 streams; cycles 5000 seq + 20000 64-way ≤3s; held 9900 (asked 10000, nofile 20000); rtt 20000 ≤3s; GOMAXPROCS 2

metric                                  direct  A socks5d  A/direct
bulk upload, 1 stream (GiB/s)            4.000      2.500      0.62
connection cycles, 64-way (cycles/s)     20000       9000      0.45
  server RSS per held connection (KiB)       -      12.50         -
64-byte round trip p50 (µs)              15.50       1500     96.77

Higher is better for GiB/s, cycles/s and conns; lower for µs, KiB and s.
A/direct, B/direct and A/B are plain quotients of the figures.

total 61.2s
`
	if got := b.String(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}

func TestWriteTableTwoServers(t *testing.T) {
	var b bytes.Buffer
	if err := writeTable(&b, sampleReport(true)); err != nil {
		t.Fatal(err)
	}
	want := `A = socks5d: socks5d -p {port}
B = microsocks: microsocks -p {port}
bulk 1GiB/stream ≤4s, 1 and 8 streams; cycles 5000 seq + 20000 64-way ≤3s; held 9900 (asked 10000, nofile 20000); rtt 20000 ≤3s; GOMAXPROCS 2

metric                                  direct  A socks5d  A/direct  B microsocks  B/direct    A/B
bulk upload, 1 stream (GiB/s)            4.000      2.500      0.62         0.250     0.062  10.00
connection cycles, 64-way (cycles/s)     20000       9000      0.45          8000      0.40   1.12
  server RSS per held connection (KiB)       -      12.50         -         13.00         -   0.96
64-byte round trip p50 (µs)              15.50       1500     96.77           ERR         -      -

Higher is better for GiB/s, cycles/s and conns; lower for µs, KiB and s.
A/direct, B/direct and A/B are plain quotients of the figures.

notes:
  microsocks: rtt 64B: connection refused
    second line

total 61.2s
`
	if got := b.String(); got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}

func TestWriteJSON(t *testing.T) {
	for _, two := range []bool{false, true} {
		var b bytes.Buffer
		if err := writeJSON(&b, sampleReport(two)); err != nil {
			t.Fatal(err)
		}
		var got struct {
			Servers  []map[string]string `json:"servers"`
			Settings map[string]any      `json:"settings"`
			Rows     []map[string]any    `json:"rows"`
			Notes    []string            `json:"notes"`
			Elapsed  float64             `json:"elapsed_s"`
		}
		if err := json.Unmarshal(b.Bytes(), &got); err != nil {
			t.Fatalf("two=%v: %v\n%s", two, err, b.String())
		}
		if got.Elapsed != 61.25 || got.Settings["held"] != 9900.0 || got.Settings["bulk_bytes_per_stream"] != float64(1<<30) {
			t.Errorf("two=%v: elapsed %v, settings %v", two, got.Elapsed, got.Settings)
		}
		if len(got.Rows) != 4 || len(got.Servers) != map[bool]int{false: 1, true: 2}[two] {
			t.Fatalf("two=%v: %d rows, %d servers", two, len(got.Rows), len(got.Servers))
		}
		r0 := got.Rows[0]
		if r0["metric"] != "bulk upload, 1 stream" || r0["unit"] != "GiB/s" || r0["better"] != "higher" ||
			r0["direct"] != 4.0 || r0["a"] != 2.5 || r0["a_direct"] != 0.625 {
			t.Errorf("two=%v: row 0 = %v", two, r0)
		}
		// Not applicable is null, present.
		if v, ok := got.Rows[2]["direct"]; !ok || v != nil {
			t.Errorf("two=%v: row 2 direct = %v (present %v), want null", two, v, ok)
		}
		_, hasB := r0["b"]
		_, hasAB := r0["a_b"]
		if hasB != two || hasAB != two {
			t.Errorf("two=%v: b present %v, a_b present %v", two, hasB, hasAB)
		}
		if two {
			if r0["b"] != 0.25 || r0["a_b"] != 10.0 || r0["b_direct"] != 0.0625 {
				t.Errorf("row 0 = %v", r0)
			}
			errs, _ := got.Rows[3]["errors"].(map[string]any)
			if errs["b"] != "connection refused" || got.Rows[3]["b"] != nil {
				t.Errorf("row 3 = %v", got.Rows[3])
			}
			if len(got.Notes) != 1 || !strings.HasPrefix(got.Notes[0], "microsocks:") {
				t.Errorf("notes = %q", got.Notes)
			}
		} else if _, ok := got.Rows[3]["errors"]; ok {
			t.Errorf("row 3 has errors without failures: %v", got.Rows[3])
		}
	}
}
