package main

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"
	"testing"
)

// svgTexts parses an SVG and returns its text elements' contents and the
// fill colours of its paths and rectangles.
func svgTexts(t *testing.T, svg []byte) (texts []string, fills map[string]int) {
	t.Helper()
	fills = map[string]int{}
	dec := xml.NewDecoder(bytes.NewReader(svg))
	inText := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the plot is not well-formed SVG: %v", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			inText = el.Name.Local == "text"
			for _, a := range el.Attr {
				if a.Name.Local == "style" {
					for _, decl := range strings.Split(a.Value, ";") {
						if v, ok := strings.CutPrefix(strings.TrimSpace(decl), "fill:"); ok {
							fills[strings.TrimSpace(v)]++
						}
					}
				}
				if a.Name.Local == "fill" {
					fills[a.Value]++
				}
			}
		case xml.CharData:
			if inText {
				texts = append(texts, strings.TrimSpace(string(el)))
			}
		case xml.EndElement:
			inText = false
		}
	}
	return texts, fills
}

// TestPlotSeriesAndLabels renders fixed results and checks the SVG has a
// chart per row with a figure (titled with the metric), a bar per
// endpoint in the endpoint's colour, the endpoints named on the X axis and
// the unit on the Y axis.
func TestPlotSeriesAndLabels(t *testing.T) {
	r := sampleReport(true)
	r.Rows[1].Range = map[string][2]float64{"direct": {19000, 21000}, "a": {8500, 9500}, "b": {7000, 8100}}
	var b bytes.Buffer
	if err := writePlot(&b, r); err != nil {
		t.Fatal(err)
	}
	texts, fills := svgTexts(t, b.Bytes())
	joined := "\n" + strings.Join(texts, "\n") + "\n"
	for _, want := range []string{
		"bulk upload, 1 stream", "connection cycles, 64-way", "server RSS per held connection", "64-byte round trip p50",
		"direct", "A socks5d", "B microsocks",
		"GiB/s (higher is better)", "KiB (lower is better)", "µs (lower is better)",
		"connection cycles, 64-way:", // the RSS row is titled under the row it is indented under
	} {
		if !strings.Contains(joined, "\n"+want+"\n") {
			t.Errorf("the plot has no label %q; its texts:%s", want, joined)
		}
	}
	// Bars: direct in 3 charts (the RSS row has none), A in 4, B in 3
	// (its round trip failed).
	for name, c := range map[string]struct {
		rgb  string
		bars int
	}{
		"direct": {"#999999", 3}, "A": {"#1F77B4", 4}, "B": {"#FF7F0E", 3},
	} {
		if got := fills[c.rgb]; got != c.bars {
			t.Errorf("%s: %d bars in %s, want %d (fills: %v)", name, got, c.rgb, c.bars, fills)
		}
	}
	// Only the cycles chart has repeats: its whiskers widen the Y range
	// above the largest median (9000 < 21000).
	if !strings.Contains(joined, "\n20000\n") {
		t.Errorf("the cycles chart's axis does not reach the range's top; texts:%s", joined)
	}
}

// TestPlotNothing refuses a report without a single figure.
func TestPlotNothing(t *testing.T) {
	r := &Report{Servers: []ServerInfo{{Label: "a", Name: "x"}}, Rows: []Row{{Metric: "m", Unit: "s", Errors: map[string]string{"a": "failed"}}}}
	if err := writePlot(io.Discard, r); err == nil {
		t.Fatal("a report without figures plotted")
	}
}
