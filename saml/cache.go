package saml

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ssobroker/ssobroker/tenants"
)

// DefaultCacheEntries is the Cache size when NewCache is given 0.
const DefaultCacheEntries = 1000

// Cache keeps one built ServiceProvider per connection, least recently
// used first out, so that keys and certificates are parsed once per
// connection version rather than on every login. An entry is reused only
// while the connection's UpdatedAt is unchanged: the broker reads UpdatedAt
// cheaply (tenants.ConnectionRef) and the cache reloads on any change, so a
// replaced certificate or key takes effect at the next login on every
// replica.
type Cache struct {
	opts Options
	max  int

	mu      sync.Mutex
	entries map[string]*list.Element
	lru     *list.List // front: most recently used
}

type cacheEntry struct {
	id        string
	updatedAt time.Time
	sp        *ServiceProvider
}

// NewCache returns a cache of at most maxEntries service providers
// (DefaultCacheEntries if maxEntries <= 0), built with opts.
func NewCache(maxEntries int, opts Options) *Cache {
	if maxEntries <= 0 {
		maxEntries = DefaultCacheEntries
	}
	return &Cache{opts: opts, max: maxEntries, entries: map[string]*list.Element{}, lru: list.New()}
}

// ServiceProvider returns the SP of connection id as of updatedAt, calling
// load (outside the lock) on a miss. Concurrent misses for one connection
// may each load; the last one stored wins, which is harmless.
func (c *Cache) ServiceProvider(ctx context.Context, id string, updatedAt time.Time, load func(context.Context) (tenants.Connection, error)) (*ServiceProvider, error) {
	c.mu.Lock()
	if el, ok := c.entries[id]; ok {
		e := el.Value.(*cacheEntry)
		if e.updatedAt.Equal(updatedAt) {
			c.lru.MoveToFront(el)
			c.mu.Unlock()
			return e.sp, nil
		}
	}
	c.mu.Unlock()

	conn, err := load(ctx)
	if err != nil {
		return nil, fmt.Errorf("saml: loading connection %s: %w", id, err)
	}
	if conn.ID != id {
		return nil, fmt.Errorf("saml: loading connection %s returned connection %s", id, conn.ID)
	}
	sp, err := NewServiceProvider(conn, c.opts)
	if err != nil {
		return nil, err
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	e := &cacheEntry{id: id, updatedAt: conn.UpdatedAt, sp: sp}
	if el, ok := c.entries[id]; ok {
		// Keep the newer version if a concurrent load stored one.
		if old := el.Value.(*cacheEntry); old.updatedAt.After(e.updatedAt) {
			c.lru.MoveToFront(el)
			return sp, nil
		}
		el.Value = e
		c.lru.MoveToFront(el)
		return sp, nil
	}
	c.entries[id] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		last := c.lru.Back()
		delete(c.entries, last.Value.(*cacheEntry).id)
		c.lru.Remove(last)
	}
	return sp, nil
}

// Invalidate drops connection id, e.g. after it was updated or deleted.
func (c *Cache) Invalidate(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[id]; ok {
		delete(c.entries, id)
		c.lru.Remove(el)
	}
}

// Len reports the number of cached service providers.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
