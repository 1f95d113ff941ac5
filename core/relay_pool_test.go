package core

import "testing"

// TestBufferPoolsBySizeClass: relay buffers are pooled by power-of-two
// class, so however many IO sizes are set over the server's life the
// pools stay bounded, and every buffer fits the size it was taken for.
func TestBufferPoolsBySizeClass(t *testing.T) {
	for _, tc := range []struct{ size, class int }{
		{1, 1}, {4096, 4096}, {4097, 8192}, {5000, 8192}, {8191, 8192}, {8192, 8192},
		{32 << 10, 32 << 10}, {(32 << 10) + 1, 64 << 10}, {16 << 20, 16 << 20},
	} {
		p := poolFor(tc.size)
		if p != poolFor(tc.class) {
			t.Errorf("size %d: not in the pool of class %d", tc.size, tc.class)
		}
		bp := p.Get().(*[]byte)
		if len(*bp) != tc.class {
			t.Errorf("size %d: buffer of %d bytes, want %d", tc.size, len(*bp), tc.class)
		}
		p.Put(bp)
	}
	// Every size from 4 KiB to 1 MiB shares 9 pools.
	seen := map[any]bool{}
	for size := 4096; size <= 1<<20; size += 1000 {
		seen[poolFor(size)] = true
	}
	if len(seen) != 9 {
		t.Errorf("%d pools for sizes 4KiB..1MiB, want 9 (one per power of two)", len(seen))
	}
}
