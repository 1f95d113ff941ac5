package iobuf_test

import (
	"context"
	"errors"
	"testing"

	"github.com/socks5d/socks5d/builtin/iobuf"
	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     map[string]any
		want    int
		wantErr []error
		errHas  []string
	}{
		{name: "defaults", cfg: nil, want: 32768},
		{name: "bytes", cfg: map[string]any{"size": 65536}, want: 65536},
		{name: "unit", cfg: map[string]any{"size": "64KiB"}, want: 65536},
		{name: "decimal unit", cfg: map[string]any{"size": "8kb"}, want: 8000},
		{name: "seed value", cfg: map[string]any{"size": 8000}, want: 8000},
		{name: "minimum", cfg: map[string]any{"size": 4096}, want: 4096},
		{name: "too small", cfg: map[string]any{"size": 100},
			wantErr: []error{middleware.ErrBadValue, iobuf.ErrSizeRange}, errHas: []string{`"size"`, "100", "4096..16777216 bytes"}},
		{name: "just too small", cfg: map[string]any{"size": iobuf.MinSize - 1},
			wantErr: []error{middleware.ErrBadValue, iobuf.ErrSizeRange}, errHas: []string{`"size"`}},
		{name: "zero", cfg: map[string]any{"size": 0},
			wantErr: []error{middleware.ErrBadValue, iobuf.ErrSizeRange}, errHas: []string{`"size"`}},
		{name: "maximum", cfg: map[string]any{"size": "16MiB"}, want: 16 << 20},
		{name: "too large", cfg: map[string]any{"size": 16<<20 + 1},
			wantErr: []error{middleware.ErrBadValue, iobuf.ErrSizeRange}, errHas: []string{`"size"`, "16777217", "4096..16777216 bytes"}},
		{name: "way too large", cfg: map[string]any{"size": "1GiB"},
			wantErr: []error{middleware.ErrBadValue, iobuf.ErrSizeRange}, errHas: []string{`"size"`}},
		{name: "negative", cfg: map[string]any{"size": -1},
			wantErr: []error{middleware.ErrBadValue}, errHas: []string{`"size"`}},
		{name: "not a size", cfg: map[string]any{"size": "big"},
			wantErr: []error{middleware.ErrBadValue}, errHas: []string{`"size"`}},
		{name: "bool", cfg: map[string]any{"size": true},
			wantErr: []error{middleware.ErrBadValue}, errHas: []string{`"size"`}},
		{name: "unknown key", cfg: map[string]any{"io": 8000},
			wantErr: []error{middleware.ErrUnknownKey}, errHas: []string{`"io"`, "size"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mw, err := mwtest.Build(t, iobuf.Type, mwtest.Params("iobuf", tt.cfg))
			if tt.wantErr != nil {
				mwtest.ExpectError(t, err, tt.wantErr, tt.errHas...)
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			s, _ := mwtest.Session(t)
			var seen int
			tm := &mwtest.Terminal{Facts: func(s *middleware.Session) { seen = s.IOSize }}
			if err := mwtest.Serve(context.Background(), mw, tm, s); err != nil {
				t.Fatal(err)
			}
			if seen != tt.want {
				t.Errorf("IOSize before next = %d, want %d", seen, tt.want)
			}
		})
	}
}

func TestSettings(t *testing.T) {
	mw := mwtest.New(t, iobuf.Type, mwtest.Params("iobuf", map[string]any{"size": "1MiB"}))
	tun, ok := mw.(middleware.Tunable)
	if !ok {
		t.Fatal("stage does not implement Tunable")
	}
	got := tun.Settings()
	want := []middleware.Setting{{Key: "size", Value: "1048576", Help: "relay buffer size in bytes for new connections (4096..16777216)"}}
	if len(got) != 1 || got[0] != want[0] {
		t.Errorf("Settings = %+v, want %+v", got, want)
	}

}

func TestNextErrorPassedThrough(t *testing.T) {
	mw := mwtest.New(t, iobuf.Type, mwtest.Params("iobuf", nil))
	want := errors.New("boom")
	s, _ := mwtest.Session(t)
	if err := mwtest.Serve(context.Background(), mw, &mwtest.Terminal{Err: want}, s); !errors.Is(err, want) {
		t.Errorf("Serve = %v, want %v", err, want)
	}
}
