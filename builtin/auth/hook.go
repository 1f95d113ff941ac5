package auth

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/socks5d/socks5d/middleware"
)

// maxHookAnswer bounds the hook's answer body.
const maxHookAnswer = 64 << 10

// hookRequest is the JSON body POSTed to the hook. The password is in the
// body only, never in the URL.
type hookRequest struct {
	User     string `json:"user"`
	Password string `json:"password"`
	Client   string `json:"client"`   // the client's IP address, "" for the admin port
	Listener string `json:"listener"` // socks or pctp
}

// hookAnswer is the JSON the hook answers with: result allow, deny or
// unknown (ask the next backend), and for allow the role (admin or basic,
// default basic).
type hookAnswer struct {
	Result string `json:"result"`
	Role   string `json:"role"`
}

// hookBackend asks an HTTP endpoint.
type hookBackend struct {
	url    string
	client *http.Client
}

func newHook(bc BackendConfig, timeout time.Duration) (*hookBackend, error) {
	u, err := url.Parse(bc.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("key \"url\": %q is not an http:// or https:// URL", bc.URL)
	}
	if u.User != nil {
		return nil, errors.New("key \"url\": no user or password in the URL")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // the hook is asked directly, never through a proxy from the environment
	if bc.CAFile != "" {
		if u.Scheme != "https" {
			return nil, errors.New("key \"ca_file\": only for an https:// hook")
		}
		pool, err := loadCA(bc.CAFile)
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &hookBackend{
		url: bc.URL,
		client: &http.Client{
			Transport: tr,
			Timeout:   timeout,
			// A redirect would resend the password elsewhere: refuse it.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// check POSTs the user, the password and the client's address as JSON and
// reads the answer. Anything but a 200 with a well-formed answer is an
// error wrapping ErrBackend (a malformed answer also wraps
// ErrHookAnswer); errors never hold the password.
func (h *hookBackend) check(ctx context.Context, user, password string, from origin) (verdict, middleware.Role, error) {
	req := hookRequest{User: user, Password: password, Listener: from.listener}
	if from.client.IsValid() {
		req.Client = from.client.Unmap().String()
	}
	body, err := json.Marshal(req)
	if err != nil { // cannot happen for strings; never show the body
		return 0, 0, fmt.Errorf("%w: %s: encoding the request", ErrBackend, h.url)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %s: %w", ErrBackend, h.url, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	resp, err := h.client.Do(hreq)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // url.Error repeats the URL: keep only the cause
			err = ue.Err
		}
		return 0, 0, fmt.Errorf("%w: %s: %w", ErrBackend, h.url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxHookAnswer+1))
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %s: reading the answer: %w", ErrBackend, h.url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("%w: %s: answered %s", ErrBackend, h.url, resp.Status)
	}
	if len(data) > maxHookAnswer {
		return 0, 0, fmt.Errorf("%w: %w: %s: the answer is longer than %d bytes", ErrBackend, ErrHookAnswer, h.url, maxHookAnswer)
	}
	var a hookAnswer
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return 0, 0, fmt.Errorf("%w: %w: %s: %v (want {\"result\":\"allow|deny|unknown\",\"role\":\"admin|basic\"})", ErrBackend, ErrHookAnswer, h.url, err)
	}
	switch a.Result {
	case "allow":
		role := middleware.RoleBasic
		if a.Role != "" {
			if role, err = middleware.ParseRole(a.Role); err != nil {
				return 0, 0, fmt.Errorf("%w: %w: %s: role %q is not admin or basic", ErrBackend, ErrHookAnswer, h.url, a.Role)
			}
		}
		return allowUser, role, nil
	case "deny":
		return denyUser, 0, nil
	case "unknown":
		return unknownUser, 0, nil
	}
	return 0, 0, fmt.Errorf("%w: %w: %s: result %q is not allow, deny or unknown", ErrBackend, ErrHookAnswer, h.url, a.Result)
}
