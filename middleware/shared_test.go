package middleware

import (
	"errors"
	"testing"
)

type closer struct{ closed *int }

func (c closer) Close() error { *c.closed++; return errors.New("closed") }

func TestSharedGetAndClose(t *testing.T) {
	p := NewShared()
	n := 0
	a := Get(p, "a", func() *int { n++; return new(int) })
	if b := Get(p, "a", func() *int { n++; return new(int) }); a != b || n != 1 {
		t.Fatal("Get created a second value for the same key")
	}
	closed := 0
	Get(p, "c", func() closer { return closer{&closed} })
	if err := p.Close(); err == nil || closed != 1 {
		t.Fatalf("Close: err %v, closed %d", err, closed)
	}
	if err := p.Close(); err != nil || closed != 1 {
		t.Fatal("a second Close closed again")
	}
}
