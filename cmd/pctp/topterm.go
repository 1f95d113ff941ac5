package main

// The top view on a terminal: the alternate screen, raw mode for the quit
// key, the window size, and putting everything back on the way out.

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/term"

	"github.com/socks5d/socks5d/pctp"
)

// Terminal control sequences (xterm; every terminal emulator in use knows
// them).
const (
	enterAltScreen = "\x1b[?1049h\x1b[?25l" // alternate screen, cursor hidden
	leaveAltScreen = "\x1b[?25h\x1b[?1049l" // cursor shown, main screen back
	cursorHome     = "\x1b[H"
	clearLineEnd   = "\x1b[K"
	clearBelow     = "\x1b[J"
)

// ttyDisplay draws frames over each other on the alternate screen.
type ttyDisplay struct {
	out io.Writer
	fd  int // for the window size
}

func (d ttyDisplay) size() (int, int) {
	w, h, err := term.GetSize(d.fd)
	if err != nil || w <= 0 || h <= 0 {
		return 80, 24
	}
	return w, h
}

// draw repaints from the top left, clearing what the previous frame left
// to the right of each line and below the last; raw mode needs CR LF.
func (d ttyDisplay) draw(frame string) error {
	body := strings.ReplaceAll(strings.TrimSuffix(frame, "\n"), "\n", clearLineEnd+"\r\n")
	_, err := io.WriteString(d.out, cursorHome+body+clearLineEnd+clearBelow)
	return err
}

// isTerminalFile returns f's descriptor if f is a terminal.
func isTerminalFile(v any) (*os.File, bool) {
	f, ok := v.(*os.File)
	return f, ok && term.IsTerminal(int(f.Fd()))
}

// runTopOnTerminal shows the view on the terminal in and out until q,
// Ctrl-C, ctx's end or an error, and restores the terminal (raw mode,
// alternate screen, cursor) whatever happened. It returns with no round
// outstanding unless closeAfter is set, in which case it closes the
// client instead of waiting for the round.
func runTopOnTerminal(ctx context.Context, c *pctp.Client, in, out *os.File, opt topOptions, closeAfter bool) (err error) {
	inFd := int(in.Fd())
	old, err := term.MakeRaw(inFd)
	if err != nil {
		return fmt.Errorf("%w: raw mode: %w", errTop, err)
	}
	keys := startKeys(inFd)
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	io.WriteString(out, enterAltScreen)
	wait, err := topLoop(ctx, c, ttyDisplay{out: out, fd: int(out.Fd())}, keys.keys, winch, opt)
	keys.stop() // before the prompt can see the screen: what is typed then is the prompt's
	signal.Stop(winch)
	io.WriteString(out, leaveAltScreen)
	_ = term.Restore(inFd, old)
	if closeAfter {
		c.Close()
	}
	wait()
	return err
}

// runTopStream shows the view as a stream of frames on a non-terminal
// stdout (for a log, or `watch`-like use with -n).
func runTopStream(ctx context.Context, c *pctp.Client, out io.Writer, opt topOptions) error {
	wait, err := topLoop(ctx, c, &streamDisplay{w: out}, nil, nil, opt)
	wait()
	return err
}

// promptTop is TOP [INTERVAL] typed at the prompt: the view on the
// prompt's terminal, then back to the prompt on the same session.
func promptTop(ctx context.Context, c *pctp.Client, stdin io.Reader, stdout io.Writer, line string, opt topOptions) error {
	if _, arg, _ := strings.Cut(strings.TrimSpace(line), " "); strings.TrimSpace(arg) != "" {
		d, err := parseRefresh(strings.TrimSpace(arg))
		if err != nil {
			return fmt.Errorf("%w: %w", errTop, err)
		}
		opt.interval = d
	}
	in, inTTY := isTerminalFile(stdin)
	out, outTTY := isTerminalFile(stdout)
	if !inTTY || !outTTY {
		return fmt.Errorf("%w: needs a terminal", errTop)
	}
	return runTopOnTerminal(ctx, c, in, out, opt, false)
}
