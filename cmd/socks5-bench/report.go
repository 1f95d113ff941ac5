package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Report is everything one run measured; --json prints it as is.
type Report struct {
	Servers  []ServerInfo `json:"servers"`
	Settings Settings     `json:"settings"`
	Rows     []Row        `json:"rows"`
	Notes    []string     `json:"notes,omitempty"`
	Elapsed  float64      `json:"elapsed_s"`
}

// ServerInfo names a server under test: label "a" or "b".
type ServerInfo struct {
	Label   string `json:"label"`
	Name    string `json:"name"`
	Command string `json:"command"`
}

// Settings are the effective sizes of the run.
type Settings struct {
	BulkBytes   int64   `json:"bulk_bytes_per_stream"`
	BulkTime    float64 `json:"bulk_time_s"`
	Streams     int     `json:"streams"`
	Cycles      int     `json:"cycles_sequential"`
	CyclesPar   int     `json:"cycles_parallel"`
	Par         int     `json:"parallelism"`
	CycleTime   float64 `json:"cycle_time_s"`
	HeldWanted  int     `json:"held_wanted"`
	Held        int     `json:"held"`
	RTT         int     `json:"rtt_iterations"`
	RTTTime     float64 `json:"rtt_time_s"`
	Nofile      uint64  `json:"nofile"`
	GOMAXPROCS  int     `json:"gomaxprocs"`
	AlternateAB bool    `json:"alternate_ab"`
	Repeat      int     `json:"repeat"`
}

// Row is one measurement: the direct figure, each server's figure, and
// their ratios. A nil figure is not applicable or failed (see Errors,
// keyed by "direct", "a", "b").
type Row struct {
	Metric  string            `json:"metric"`
	Unit    string            `json:"unit"`
	Better  string            `json:"better"` // "higher" or "lower"
	Direct  *float64          `json:"direct"`
	A       *float64          `json:"a"`
	ADirect *float64          `json:"a_direct"`
	B       *float64          `json:"b,omitempty"`
	BDirect *float64          `json:"b_direct,omitempty"`
	AB      *float64          `json:"a_b,omitempty"`
	Errors  map[string]string `json:"errors,omitempty"`
	// Range is the smallest and largest figure of the repeats, keyed like
	// Errors; the figure itself is their median.
	Range map[string][2]float64 `json:"range,omitempty"`

	sub bool // indented under the row above in the table
}

// fillRatios computes the ratio columns from the figures.
func (r *Row) fillRatios() {
	r.ADirect = ratio(r.A, r.Direct)
	r.BDirect = ratio(r.B, r.Direct)
	r.AB = ratio(r.A, r.B)
}

func writeJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// formatValue prints a figure with a precision suited to its unit.
func formatValue(unit string, v float64) string {
	switch unit {
	case "GiB/s":
		return fmt.Sprintf("%.3f", v)
	case "cycles/s", "conns":
		return fmt.Sprintf("%.0f", v)
	case "µs", "KiB", "s":
		if v >= 1000 {
			return fmt.Sprintf("%.0f", v)
		}
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%g", v)
}

func formatRatio(v float64) string {
	if v < 0.1 {
		return fmt.Sprintf("%.3f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// writeTable prints the report as an aligned text table: the metric
// column left-aligned, the figures right-aligned.
func writeTable(w io.Writer, r *Report) error {
	hasB := len(r.Servers) > 1
	var b strings.Builder
	for _, s := range r.Servers {
		fmt.Fprintf(&b, "%s = %s: %s\n", strings.ToUpper(s.Label), s.Name, s.Command)
	}
	st := r.Settings
	streams := "1 stream"
	if st.Streams > 1 {
		streams = fmt.Sprintf("1 and %d streams", st.Streams)
	}
	if st.Repeat > 1 {
		fmt.Fprintf(&b, "medians of %d runs each; ", st.Repeat)
	}
	fmt.Fprintf(&b, "bulk %s/stream ≤%gs, %s; cycles %d seq + %d %d-way ≤%gs; held %d (asked %d, nofile %d); rtt %d ≤%gs; GOMAXPROCS %d\n\n",
		formatSize(st.BulkBytes), st.BulkTime, streams, st.Cycles, st.CyclesPar, st.Par, st.CycleTime,
		st.Held, st.HeldWanted, st.Nofile, st.RTT, st.RTTTime, st.GOMAXPROCS)

	head := []string{"metric", "direct", "A " + r.Servers[0].Name, "A/direct"}
	if hasB {
		head = append(head, "B "+r.Servers[1].Name, "B/direct", "A/B")
	}
	rows := [][]string{head}
	cell := func(row Row, key string, v *float64) string {
		if _, bad := row.Errors[key]; bad {
			return "ERR"
		}
		if v == nil {
			return "-"
		}
		return formatValue(row.Unit, *v)
	}
	rcell := func(v *float64) string {
		if v == nil {
			return "-"
		}
		return formatRatio(*v)
	}
	for _, row := range r.Rows {
		line := []string{
			fmt.Sprintf("%s%s (%s)", map[bool]string{true: "  "}[row.sub], row.Metric, row.Unit),
			cell(row, "direct", row.Direct),
			cell(row, "a", row.A),
			rcell(row.ADirect),
		}
		if hasB {
			line = append(line, cell(row, "b", row.B), rcell(row.BDirect), rcell(row.AB))
		}
		rows = append(rows, line)
	}
	widths := make([]int, len(head))
	for _, line := range rows {
		for i, c := range line {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	for _, line := range rows {
		for i, c := range line {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			switch {
			case i == 0:
				b.WriteString(c + pad)
			default:
				b.WriteString("  " + pad + c)
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\nHigher is better for GiB/s, cycles/s and conns; lower for µs, KiB and s.\n" +
		"A/direct, B/direct and A/B are plain quotients of the figures.\n")
	if len(r.Notes) > 0 {
		b.WriteString("\nnotes:\n")
		for _, n := range r.Notes {
			b.WriteString("  " + strings.ReplaceAll(n, "\n", "\n    ") + "\n")
		}
	}
	fmt.Fprintf(&b, "\ntotal %.1fs\n", r.Elapsed)
	_, err := io.WriteString(w, b.String())
	return err
}
