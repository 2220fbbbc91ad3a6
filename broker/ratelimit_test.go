package broker

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestLimiterSlidingWindow(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := newLimiter("test", 10, time.Minute, 1000, clock)
	for i := 0; i < 10; i++ {
		if ok, _ := l.allow("a"); !ok {
			t.Fatalf("request %d refused under the limit", i)
		}
	}
	ok, retry := l.allow("a")
	if ok || retry < time.Second || retry > time.Minute {
		t.Fatalf("11th request: ok=%t retry=%s; want refused with a retry within the window", ok, retry)
	}
	if ok, _ := l.allow("b"); !ok {
		t.Fatal("another key is limited too")
	}
	// Half a window later half the previous window still counts: 5 of 10.
	clock.advance(90 * time.Second)
	allowed := 0
	for i := 0; i < 10; i++ {
		if ok, _ := l.allow("a"); ok {
			allowed++
		}
	}
	if allowed != 5 {
		t.Fatalf("after 1.5 windows %d requests allowed, want 5", allowed)
	}
	// Two windows of silence forget everything.
	clock.advance(2 * time.Minute)
	if ok, _ := l.allow("a"); !ok {
		t.Fatal("still limited after two quiet windows")
	}
}

func TestLimiterBoundsMemory(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := newLimiter("test", 1000000, time.Minute, 100, clock)
	for i := 0; i < 10000; i++ {
		l.allow(fmt.Sprint("k", i))
	}
	if n := len(l.current); n > 101 {
		t.Fatalf("%d keys tracked, want at most 101", n)
	}
}

func TestLimiterDisabled(t *testing.T) {
	var l *limiter
	if ok, _ := l.allow("x"); !ok {
		t.Fatal("nil limiter refused")
	}
}

func TestIPKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.1", "ip:192.0.2.1"},
		{"::ffff:192.0.2.1", "ip:192.0.2.1"},
		{"2001:db8:1:2:3:4:5:6", "ip6:2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "ip6:2001:db8:1:2::/64"},
		{"", "ip:"},
	}
	for _, tt := range tests {
		if got := ipKey(tt.in); got != tt.want {
			t.Errorf("ipKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
