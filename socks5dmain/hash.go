package socks5dmain

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/socks5d/socks5d/core"
)

// runHash is `socks5d hash`: it reads a password (without echo on a
// terminal, asked twice; else the first line of stdin) and prints its
// bcrypt hash for the config file's users: entries (core.HashPassword:
// passwords over 72 octets are pre-hashed, as the server checks them).
func runHash(args []string, stdin *os.File, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("socks5d hash", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: socks5d hash < password-file\n\n"+
			"Prints a bcrypt hash to use as a password in the config file's users: list.\n"+
			"Passwords are 1-255 octets; one longer than 72 octets is hashed as\n"+
			"base64(SHA-256(password)), as the server checks it.")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	var password string
	if term.IsTerminal(int(stdin.Fd())) {
		fmt.Fprint(stderr, "Password: ")
		p1, err := term.ReadPassword(int(stdin.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return err
		}
		fmt.Fprint(stderr, "Again: ")
		p2, err := term.ReadPassword(int(stdin.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return err
		}
		if string(p1) != string(p2) {
			return usageError{errors.New("the passwords differ")}
		}
		password = string(p1)
	} else {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		password = strings.TrimRight(line, "\r\n")
	}
	hash, err := core.HashPassword(password)
	if err != nil {
		return usageError{fmt.Errorf("hash: %w", err)}
	}
	fmt.Fprintln(stdout, hash)
	return nil
}
