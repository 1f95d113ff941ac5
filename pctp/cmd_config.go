package pctp

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/socks5d/socks5d/middleware"
)

// CONFIG IO= changes the setting a stage declares for
// middleware.PurposeIOSize (iobuf's size), whatever the stage is called.

// ioMinimum is the smallest IO size. PCTP.md: "Values below 4096 are raised
// to 4096", so CONFIG IO= raises a smaller value and says so in its reply;
// the key=value form and the configuration file refuse it instead.
const ioMinimum = 4096

// Replies to invalid arguments.
const (
	badConfigShape = "Expected IO=<bytes> or <key>=<value>"
	badConfigIO    = "IO value must be a number of bytes"
)

func configCommands() []*command {
	return []*command{{
		keywords: []string{"CONFIG"},
		phases:   phaseMain,
		arg:      argOptional,
		validate: validSetting,
		reply:    replyMultiIfNoArgs,
		usage:    "CONFIG [IO=<bytes>|<key>=<value>]",
		help:     "List the live settings, or change one",
		handle:   cmdConfig,
	}}
}

func validSetting(arg string) string {
	k, v, found := strings.Cut(arg, "=")
	if !found || k == "" || strings.ContainsAny(k, " \t") {
		return badConfigShape
	}
	if strings.EqualFold(k, "IO") {
		if !allDigits(v) {
			return badConfigIO
		}
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return badConfigIO
		}
	}
	return ""
}

func cmdConfig(_ context.Context, s *session, arg string) reply {
	admin := s.srv.Admin
	if arg == "" {
		settings := admin.Settings()
		lines := make([]string, len(settings))
		for i, st := range settings {
			lines[i] = st.Key + ": " + st.Value
		}
		return multi("Sending settings...", lines)
	}
	k, v, _ := strings.Cut(arg, "=")
	if strings.EqualFold(k, "IO") {
		msg := "Setting IO buffers size"
		if n, _ := strconv.ParseInt(v, 10, 64); n < ioMinimum { // validSetting checked the digits
			v = strconv.Itoa(ioMinimum)
			msg += " to " + v + " (the minimum)"
		}
		key, err := admin.Purpose(middleware.PurposeIOSize, "")
		if err == nil {
			err = admin.Set(key, v)
		}
		if err != nil {
			return fail("Cannot set IO buffers size: " + err.Error())
		}
		s.log.Info("setting changed", "key", key, "value", v)
		return ok(msg)
	}
	settings := admin.Settings()
	known := make([]string, len(settings))
	found := false
	for i, st := range settings {
		known[i] = st.Key
		found = found || st.Key == k
	}
	if !found {
		return fail(fmt.Sprintf("Unknown setting %q (known: %s)", k, strings.Join(known, ", ")))
	}
	if err := admin.Set(k, v); err != nil {
		return fail("Cannot set " + k + ": " + err.Error())
	}
	s.log.Info("setting changed", "key", k, "value", v)
	return ok("Setting " + k)
}
