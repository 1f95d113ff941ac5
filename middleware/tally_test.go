package middleware

import "testing"

func TestTally(t *testing.T) {
	tl := NewTally()
	a, b := &Session{}, &Session{}
	tl.Begin(a)
	tl.Begin(b)
	a.Up.Add(10)
	b.Down.Add(5)
	if got := tl.Snapshot(); got != (TallySnapshot{Open: 2, Total: 2, LiveUp: 10, LiveDown: 5, Up: 10, Down: 5}) {
		t.Fatalf("live: %+v", got)
	}
	a.Reply, a.ReplySent = ReplySucceeded, true
	if up, down := tl.End(a); up != 10 || down != 0 {
		t.Fatalf("End = %d, %d", up, down)
	}
	tl.End(b) // no reply sent
	if got := tl.Snapshot(); got != (TallySnapshot{Total: 2, Up: 10, Down: 5}) {
		t.Fatalf("ended: %+v", got)
	}
	var replies []Reply
	tl.Replies(func(code Reply, n int64) { replies = append(replies, code) })
	if len(replies) != 1 || replies[0] != ReplySucceeded || tl.NoReply() != 1 {
		t.Fatalf("replies %v, none %d", replies, tl.NoReply())
	}
}
