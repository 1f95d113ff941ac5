package match

import "testing"

func TestQuoteValue(t *testing.T) {
	for v, want := range map[string]string{
		"alice":       "alice",
		"10.0.0.0/8":  "10.0.0.0/8",
		"*.internal":  "*.internal",
		"":            `""`,
		"bob smith":   `"bob smith"`,
		"a,b":         `"a,b"`,
		`say "hi"`:    `"say \"hi\""`,
		"k=v":         `"k=v"`,
		`back\slash`:  `"back\\slash"`,
		"tab\there":   `"tab\there"`,
		"ünï":         `"ünï"`,
		"\xff":        `"\xff"`,
		"line\nbreak": `"line\nbreak"`,
	} {
		if got := QuoteValue(v); got != want {
			t.Errorf("QuoteValue(%q) = %s, want %s", v, got, want)
		}
		vals, err := (&lineParser{s: want}).values()
		if err != nil || len(vals) != 1 || vals[0] != v {
			t.Errorf("values(%s) = %q, %v; want [%q]", want, vals, err, v)
		}
	}
}
