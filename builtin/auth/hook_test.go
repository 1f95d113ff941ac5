package auth_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/socks5d/socks5d/builtin/auth"
	"github.com/socks5d/socks5d/middleware"
	"github.com/socks5d/socks5d/middleware/mwtest"
)

// hookServer is a local HTTP hook: it answers from a table by user and
// records every request it gets.
type hookServer struct {
	*httptest.Server
	mu     sync.Mutex
	seen   []*http.Request
	bodies []map[string]string
	answer func(user, password string) (status int, body string)
}

func newHookServer(t *testing.T, answer func(user, password string) (int, string)) *hookServer {
	t.Helper()
	h := &hookServer{answer: answer}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		data, _ := io.ReadAll(r.Body)
		var body map[string]string
		_ = json.Unmarshal(data, &body)
		h.mu.Lock()
		h.seen = append(h.seen, r)
		h.bodies = append(h.bodies, body)
		h.mu.Unlock()
		status, out := h.answer(body["user"], body["password"])
		w.WriteHeader(status)
		_, _ = io.WriteString(w, out)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) requests() ([]*http.Request, []map[string]string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seen, h.bodies
}

func TestHook(t *testing.T) {
	hook := newHookServer(t, func(user, password string) (int, string) {
		switch {
		case user == "erin" && password == "erin-pw":
			return 200, `{"result":"allow","role":"admin"}`
		case user == "frank" && password == "frank-pw":
			return 200, `{"result":"allow"}`
		case user == "erin" || user == "frank":
			return 200, `{"result":"deny"}`
		case user == "broken":
			return 200, `{"result":"allow","role":"root"}`
		case user == "garbage":
			return 200, `<html>`
		case user == "extra":
			return 200, `{"result":"allow","expires":3}`
		case user == "oops":
			return 500, `internal error`
		}
		return 200, `{"result":"unknown"}`
	})
	local := mwtest.Users{"gina": {Password: "gina-pw", Role: middleware.RoleBasic}}
	a, mw, logs := backendStage(t, map[string]any{"max_failures": 0, "cache": "0s", "backends": []any{
		map[string]any{"type": "http", "url": hook.URL + "/check"},
		map[string]any{"type": "local"},
	}}, local, nil)
	mustLogin(t, a, "erin", "erin-pw", middleware.RoleAdmin)
	mustLogin(t, a, "frank", "frank-pw", middleware.RoleBasic)
	refused(t, a, "erin", "frank-pw")
	mustLogin(t, a, "gina", "gina-pw", middleware.RoleBasic) // unknown to the hook: the local list decides
	refused(t, a, "gina", "nope")
	for _, user := range []string{"broken", "garbage", "extra"} {
		err := refused(t, a, user, "x-pw", auth.ErrBackend, auth.ErrHookAnswer)
		if !strings.Contains(err.Error(), hook.URL) {
			t.Errorf("%s: error %q does not name the hook", user, err)
		}
	}
	err := refused(t, a, "oops", "x-pw", auth.ErrBackend)
	if !strings.Contains(err.Error(), "500") {
		t.Errorf("error %q does not give the status", err)
	}
	if got := backendStat(t, mw, "auth_http_errors"); got != 4 {
		t.Errorf("auth_http_errors = %d, want 4", got)
	}

	reqs, bodies := hook.requests()
	if len(reqs) != 9 {
		t.Fatalf("hook asked %d times, want 9", len(reqs))
	}
	for i, r := range reqs {
		if r.Method != http.MethodPost || r.URL.Path != "/check" || r.URL.RawQuery != "" {
			t.Errorf("request %d: %s %s, want POST /check without a query", i, r.Method, r.URL)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("request %d: Content-Type %q", i, ct)
		}
		if bodies[i]["client"] != "127.0.0.1" || bodies[i]["listener"] != "socks" || bodies[i]["password"] == "" {
			t.Errorf("request %d: body %v lacks the client, listener or password", i, bodies[i])
		}
	}
	noPasswordIn(t, "the log", logs.String(), "erin-pw", "frank-pw", "gina-pw", "x-pw")

	// The admin port asks the hook too, without a client address.
	if role, ok := mw.(middleware.LoginSource).Login(context.Background(), "erin", "erin-pw"); !ok || role != middleware.RoleAdmin {
		t.Errorf("Login(erin) = %v, %v; want Admin", role, ok)
	}
	_, bodies = hook.requests()
	if last := bodies[len(bodies)-1]; last["listener"] != "pctp" || last["client"] != "" {
		t.Errorf("PCTP login body %v, want listener pctp and no client", last)
	}
}

// A hook that redirects is an error: the password is never sent on.
func TestHookRedirectRefused(t *testing.T) {
	var got sync.Map
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store("asked", true)
		_, _ = io.WriteString(w, `{"result":"allow"}`)
	}))
	defer target.Close()
	hook := newHookServer(t, func(string, string) (int, string) { return 200, "" })
	hook.Config.Handler = http.RedirectHandler(target.URL, http.StatusTemporaryRedirect)
	a, _, _ := backendStage(t, map[string]any{"max_failures": 0, "backends": []any{
		map[string]any{"type": "http", "url": hook.URL},
	}}, nil, nil)
	refused(t, a, "erin", "erin-pw", auth.ErrBackend)
	if _, asked := got.Load("asked"); asked {
		t.Error("the redirect was followed with the password")
	}
}

// Every remote check is taken from the client's budget, like a bcrypt
// comparison: guesses beyond it never reach the hook.
func TestHookBudget(t *testing.T) {
	hook := newHookServer(t, func(string, string) (int, string) { return 200, `{"result":"deny"}` })
	a, _, _ := backendStage(t, map[string]any{"max_failures": 2, "backends": []any{
		map[string]any{"type": "http", "url": hook.URL},
	}}, nil, nil)
	for range 6 {
		_, _ = a.Authenticate(context.Background(), "erin", "guess")
	}
	if reqs, _ := hook.requests(); len(reqs) != 3 {
		t.Errorf("hook asked %d times for 6 guesses with max_failures 2, want 3 (max_failures + 1)", len(reqs))
	}
}
