package ratesclient

import (
	"container/list"
	"sync"
	"time"
)

// lruCache is a size-bounded map of answers with optional expiry; the
// least recently used entry is evicted when it is full. Safe for concurrent
// use.
type lruCache struct {
	mu    sync.Mutex
	size  int
	order *list.List // front = most recently used; values are *cacheEntry
	items map[string]*list.Element
}

type cacheEntry struct {
	key     string
	answer  answer
	expires time.Time // zero: never
}

func newLRUCache(size int) *lruCache {
	return &lruCache{size: size, order: list.New(), items: make(map[string]*list.Element)}
}

// get returns the live entry for key, dropping it if it expired by now.
func (c *lruCache) get(key string, now time.Time) (answer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return answer{}, false
	}
	e := el.Value.(*cacheEntry)
	if !e.expires.IsZero() && !now.Before(e.expires) {
		c.order.Remove(el)
		delete(c.items, key)
		return answer{}, false
	}
	c.order.MoveToFront(el)
	return e.answer, true
}

// add stores a under key until expires (zero: until evicted).
func (c *lruCache) add(key string, a answer, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		e := el.Value.(*cacheEntry)
		e.answer, e.expires = a, expires
		c.order.MoveToFront(el)
		return
	}
	c.items[key] = c.order.PushFront(&cacheEntry{key: key, answer: a, expires: expires})
	for c.order.Len() > c.size {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(*cacheEntry).key)
	}
}

// len is the number of entries held, expired or not.
func (c *lruCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
