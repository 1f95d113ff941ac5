package main

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// plotCols is the number of charts side by side in the --plot figure.
const plotCols = 3

// seriesColors are the bars of direct, server A and server B.
var seriesColors = []color.Color{
	color.RGBA{R: 0x99, G: 0x99, B: 0x99, A: 0xff}, // direct: grey
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, // A: blue
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}, // B: orange
}

// series is one bar of a chart: its label, the median and the min-max
// range of the repeats (both NaN without repeats).
type series struct {
	label    string
	color    color.Color
	v        float64
	min, max float64
}

// chartSeries returns the bars of one row: direct, A and B, each that
// has a figure.
func chartSeries(r *Report, row Row) []series {
	var out []series
	add := func(key, label string, c color.Color, v *float64) {
		if v == nil {
			return
		}
		s := series{label: label, color: c, v: *v, min: math.NaN(), max: math.NaN()}
		if rg, ok := row.Range[key]; ok {
			s.min, s.max = rg[0], rg[1]
		}
		out = append(out, s)
	}
	add("direct", "direct", seriesColors[0], row.Direct)
	for i, srv := range r.Servers {
		v := row.A
		if i == 1 {
			v = row.B
		}
		add(srv.Label, fmt.Sprintf("%s %s", string(rune('A'+i)), srv.Name), seriesColors[min(i+1, len(seriesColors)-1)], v)
	}
	return out
}

// rangeBars are the min-max whiskers of a chart's bars, at the bars' X.
type rangeBars []series

func (b rangeBars) Len() int                    { return len(b) }
func (b rangeBars) XY(i int) (float64, float64) { return float64(i), b[i].v }
func (b rangeBars) YError(i int) (float64, float64) {
	return b[i].v - b[i].min, b[i].max - b[i].v
}

// chart draws one row of the report as bars, one per endpoint, with the
// range of the repeats as whiskers; nil if the row has no figure.
// A row indented under another (a sub-row) is titled with both metrics,
// the other's on a line of its own.
func chart(r *Report, row Row, parent string) (*plot.Plot, error) {
	ss := chartSeries(r, row)
	if len(ss) == 0 {
		return nil, nil
	}
	p := plot.New()
	p.Title.Text = row.Metric
	if row.sub && parent != "" {
		p.Title.Text = parent + ":\n" + row.Metric
	}
	p.Title.TextStyle.Font.Size = vg.Points(9)
	p.Y.Label.Text = fmt.Sprintf("%s (%s is better)", row.Unit, row.Better)
	p.Y.Label.TextStyle.Font.Size = vg.Points(8)
	p.Y.Min = 0
	p.X.Min, p.X.Max = -0.5, float64(len(ss))-0.5 // whole bars at the edges
	p.Add(plotter.NewGrid())                      // under the bars
	names := make([]string, len(ss))
	var ranged rangeBars
	for i, s := range ss {
		names[i] = s.label
		bar, err := plotter.NewBarChart(plotter.Values{s.v}, vg.Points(28))
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", row.Metric, s.label, err)
		}
		bar.XMin = float64(i)
		bar.Color = s.color
		bar.LineStyle.Width = 0
		p.Add(bar)
		if math.IsNaN(s.min) { // no repeats: a whisker of zero length
			s.min, s.max = s.v, s.v
		}
		ranged = append(ranged, s)
	}
	if hasRange(ranged) {
		eb, err := plotter.NewYErrorBars(ranged)
		if err != nil {
			return nil, fmt.Errorf("%s: range: %w", row.Metric, err)
		}
		eb.CapWidth = vg.Points(8)
		p.Add(eb)
	}
	p.NominalX(names...)
	p.X.Tick.Label.Font.Size = vg.Points(7)
	return p, nil
}

// hasRange reports whether any bar's repeats differ.
func hasRange(b rangeBars) bool {
	for _, s := range b {
		if s.min != s.v || s.max != s.v {
			return true
		}
	}
	return false
}

// writePlot draws every row of the report as a chart (plotCols charts a
// line) into one SVG.
func writePlot(w io.Writer, r *Report) error {
	var plots []*plot.Plot
	parent := ""
	for _, row := range r.Rows {
		if !row.sub {
			parent = row.Metric
		}
		p, err := chart(r, row, parent)
		if err != nil {
			return err
		}
		if p != nil {
			plots = append(plots, p)
		}
	}
	if len(plots) == 0 {
		return fmt.Errorf("nothing to plot: no row has a figure")
	}
	rows := (len(plots) + plotCols - 1) / plotCols
	grid := make([][]*plot.Plot, rows)
	for i := range grid {
		grid[i] = make([]*plot.Plot, plotCols)
	}
	for i, p := range plots {
		grid[i/plotCols][i%plotCols] = p
	}
	const cellW, cellH = 240, 200 // points
	c := vgsvg.New(vg.Points(cellW*plotCols), vg.Points(float64(cellH*rows)))
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: rows, Cols: plotCols, PadX: vg.Points(12), PadY: vg.Points(12),
		PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(6)}
	canvases := plot.Align(grid, tiles, dc)
	for i, p := range plots {
		p.Draw(canvases[i/plotCols][i%plotCols])
	}
	_, err := c.WriteTo(w)
	return err
}

// savePlot writes the report's charts to the SVG file path.
func savePlot(path string, r *Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := writePlot(f, r); err != nil {
		f.Close()
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return f.Close()
}
