//go:build !unix

package middleware

// noFollow is 0 where open has no such flag; OpenDataFile checks with
// Lstat instead.
const noFollow = 0
