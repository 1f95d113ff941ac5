package pctp

import (
	"bufio"
	"io"
	"strings"
	"unicode/utf8"
)

// MaxLine is the longest command line the server accepts, in octets, not
// counting the line end (LF or CR LF). A longer line is answered -ERR and
// discarded up to the next LF.
const MaxLine = 1024

// maxReplyLine is the longest reply line the server writes, in octets, not
// counting its LF (the report allows replies of 1024 octets with the LF).
const maxReplyLine = 1023

// lineReader reads command lines with a fixed buffer: a line longer than
// max is reported as too long as soon as the buffer fills, and the rest of
// it is discarded on the next call, so memory never grows with the line.
type lineReader struct {
	br      *bufio.Reader
	max     int
	discard bool // the previous line was too long: skip to the next LF
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, max+len("\r\n")), max: max}
}

// next returns the next line without its LF or CR LF. The slice is valid
// until the following call. tooLong reports a line longer than max (line
// is then nil). An incomplete last line before EOF is dropped: the client
// went away in the middle of a command.
func (r *lineReader) next() (line []byte, tooLong bool, err error) {
	for r.discard {
		_, err := r.br.ReadSlice('\n')
		switch err {
		case nil:
			r.discard = false
		case bufio.ErrBufferFull:
		default:
			return nil, false, err
		}
	}
	b, err := r.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		r.discard = true
		return nil, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	b = b[:len(b)-1]
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	if len(b) > r.max {
		return nil, true, nil
	}
	return b, false, nil
}

// cmdLine is a parsed command line: a keyword, then optionally one SPACE
// and an argument (which runs to the end of the line and may itself contain
// spaces, as a password may). A SPACE followed by nothing is no argument.
type cmdLine struct {
	keyword string // as sent
	arg     string
}

// parseLine splits a command line. It never fails: whether the keyword is
// known is the registry's business.
func parseLine(s string) cmdLine {
	kw, arg, _ := strings.Cut(s, " ")
	return cmdLine{keyword: kw, arg: arg}
}

// String formats the line as it is sent, without its line end.
func (c cmdLine) String() string {
	if c.arg == "" {
		return c.keyword
	}
	return c.keyword + " " + c.arg
}

// hasArg reports whether the line has a (non-empty) argument.
func (c cmdLine) hasArg() bool { return c.arg != "" }

// name is the keyword in upper case, or "" when it is not 1 to 16 ASCII
// letters (so binary garbage never matches a command).
func (c cmdLine) name() string {
	k := c.keyword
	if len(k) == 0 || len(k) > 16 {
		return ""
	}
	var b [16]byte
	for i := 0; i < len(k); i++ {
		ch := k[i]
		switch {
		case 'A' <= ch && ch <= 'Z':
		case 'a' <= ch && ch <= 'z':
			ch -= 'a' - 'A'
		default:
			return ""
		}
		b[i] = ch
	}
	return string(b[:len(k)])
}

// oneLine makes s safe to send as (part of) one reply line: CR, LF and
// other control characters become spaces, and it is cut to max octets at a
// rune boundary.
func oneLine(s string, max int) string {
	if strings.IndexFunc(s, isControl) >= 0 {
		s = strings.Map(func(r rune) rune {
			if isControl(r) {
				return ' '
			}
			return r
		}, s)
	}
	return truncate(s, max)
}

func isControl(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }

// truncate cuts s to at most max octets without splitting a UTF-8 rune.
func truncate(s string, max int) string {
	if len(s) <= max {
		return s
	}
	s = s[:max]
	for len(s) > 0 && !utf8.RuneStart(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	if len(s) > 0 {
		if r, _ := utf8.DecodeLastRuneInString(s); r == utf8.RuneError {
			s = s[:len(s)-1]
		}
	}
	return s
}

// field escapes s for a space-separated field of a LOGS line: "-" when it
// is empty, and %XX for spaces, control characters and '%', so a name or a
// domain a client sent can never split a field or forge a line.
func field(s string) string {
	if s == "" {
		return "-"
	}
	return escapeHex(s, needsEscape)
}

// escapeHex writes every byte of s for which escape is true as %XX
// (upper-case hex), and the others as they are.
func escapeHex(s string, escape func(rune) bool) string {
	if !strings.ContainsFunc(s, escape) {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if escape(rune(c)) {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func needsEscape(r rune) bool { return r <= ' ' || r == 0x7f || r == '%' }
