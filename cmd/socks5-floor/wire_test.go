package main

import "testing"

// FuzzHandshake feeds arbitrary bytes to each parser: none may panic or
// take more bytes than it was given, and a whole message is taken whole.
func FuzzHandshake(f *testing.F) {
	f.Add([]byte{5, 1, 2})
	f.Add([]byte{1, 5, 'f', 'l', 'o', 'o', 'r', 6, 's', '3', 'c', 'r', 'e', 't'})
	f.Add([]byte{5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 80})
	f.Fuzz(func(t *testing.T, b []byte) {
		parsers := map[string]func([]byte) (int, error){
			"greeting": greeting,
			"login":    func(b []byte) (int, error) { return login(b, testCreds) },
			"request": func(b []byte) (int, error) {
				n, _, err := request(b)
				return n, err
			},
		}
		for name, parse := range parsers {
			n, err := parse(b)
			if n < 0 || n > len(b) {
				t.Fatalf("%s took %d of %d bytes", name, n, len(b))
			}
			if err == nil && n == 0 {
				t.Fatalf("%s took nothing and reported no error", name)
			}
		}
	})
}
