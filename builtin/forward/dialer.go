package forward

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/socks5d/socks5d/middleware"
)

// dialer is the egress dialer the stage installs on each Session. It
// reads the session's user, role, client, command and target when
// DialContext is called: the terminal handler sets them, in the same
// goroutine, before it dials.
type dialer struct {
	st   *stage
	next middleware.Dialer
	s    *middleware.Session
}

var _ middleware.NameDialer = (*dialer)(nil)

// DialsName implements middleware.NameDialer: a name whose rule sends it
// through an upstream is handed to the upstream unresolved.
func (d *dialer) DialsName(_, address string) bool {
	q, ok := dialTarget(d.s, address)
	if !ok || q.Name == "" || q.Addr.IsValid() {
		return false
	}
	r := d.st.choose(&q)
	return r != nil && len(r.egress.hops) > 0
}

// DialContext dials address (host:port) through the egress of the first
// rule that matches (direct when none does). When the rule has a fallback,
// its own egress gets connect_timeout and the fallback what is left.
func (d *dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var r *rule
	if q, ok := dialTarget(d.s, address); ok {
		r = d.st.choose(&q)
	}
	if r == nil {
		return d.dial(ctx, direct, false, network, address)
	}
	if r.fallback == nil {
		return d.dial(ctx, r.egress, false, network, address)
	}
	actx, cancel := context.WithTimeout(ctx, d.st.timeout)
	c, err := d.dial(actx, r.egress, false, network, address)
	cancel()
	if err == nil || ctx.Err() != nil || isVerdict(err) {
		return c, err
	}
	d.st.state.fallbacks.Add(1)
	if l := d.s.Logger; l != nil {
		l.Info("egress failed, trying the fallback", "egress", r.egress.label, "fallback", r.fallback.label, "error", err)
	}
	return d.dial(ctx, r.fallback, true, network, address)
}

// isVerdict reports whether err is the last upstream's word about the
// destination (unreachable, refused): the upstreams worked, so a
// fallback would not help.
func isVerdict(err error) bool {
	var re *middleware.ReplyError
	return errors.Is(err, ErrUpstream) && errors.As(err, &re) && re.Code != middleware.ReplyGeneralFailure
}

// dial dials address through eg: directly with the next Dialer, or to
// eg's first upstream and then hop by hop. The outgoing socket is bound
// as eg says.
func (d *dialer) dial(ctx context.Context, eg *egress, fallback bool, network, address string) (net.Conn, error) {
	label := eg.label
	if fallback {
		label = "fallback:" + label
	}
	d.s.SetEgress(label)
	if f := socketControl(eg); f != nil {
		ctx = middleware.WithSocketControl(ctx, f)
	}
	if len(eg.hops) == 0 {
		c, err := d.next.DialContext(ctx, network, address)
		if err == nil {
			d.st.state.direct.Add(1)
		}
		return c, err
	}
	now := d.st.now()
	for _, h := range eg.hops {
		if !d.st.state.health(h.key).usable(now) {
			return nil, &middleware.ReplyError{Code: middleware.ReplyGeneralFailure, Err: fmt.Errorf("%w: %s", ErrBackoff, h.shown)}
		}
	}
	first := eg.hops[0]
	raw, err := d.next.DialContext(ctx, "tcp", first.host)
	if err != nil {
		err = &UpstreamError{Upstream: first.shown, Err: err}
		d.failed(first, err)
		return nil, &middleware.ReplyError{Code: middleware.ReplyGeneralFailure, Err: err}
	}
	conn := raw
	for i, h := range eg.hops {
		target, last := address, i == len(eg.hops)-1
		if !last {
			target = eg.hops[i+1].host
		}
		hop := socksHop
		if h.scheme == "http" {
			hop = httpHop
		}
		if conn, err = hop(ctx, conn, h, target); err != nil {
			_ = raw.Close()
			if ctx.Err() != nil {
				err = fmt.Errorf("%w (%w)", err, ctx.Err())
			}
			code := replyOf(err, last)
			var ue *UpstreamError
			reported := errors.As(err, &ue) && (ue.Reply != 0 || ue.Status >= 500)
			switch {
			case last && code != middleware.ReplyGeneralFailure:
				d.st.state.health(h.key).ok() // it answered about the destination
			case !last && reported:
				d.st.state.health(h.key).ok() // it could not reach the next hop
				d.failed(eg.hops[i+1], err)
			default:
				d.failed(h, err)
			}
			return nil, &middleware.ReplyError{Code: code, Err: err}
		}
		d.st.state.health(h.key).ok()
	}
	d.st.state.via.Add(1)
	return conn, nil
}

// failed counts a failure of upstream h and logs it (without a password),
// and when it starts a backoff.
func (d *dialer) failed(h *upstream, err error) {
	started := d.st.state.health(h.key).fail(d.st.now(), d.st.limit, d.st.backoff)
	l := d.s.Logger
	if l == nil {
		return
	}
	l.Info("upstream failed", "upstream", h.shown, "error", err)
	if started {
		l.Warn("upstream keeps failing: skipped for the backoff", "upstream", h.shown, "backoff", d.st.backoff.String())
	}
}
