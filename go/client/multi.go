package client

import (
	"fmt"
	"sync"

	"github.com/omcache/omcache/go/binprot"
	"github.com/omcache/omcache/go/conn"
)

// noopOpaque marks the NOOP that ends a batch; entries use their index.
const noopOpaque = 0xffffffff

// batch is one multi-key command. Entry i of the input becomes one quiet
// request with opaque i, sent to the server owning its key. Quiet requests
// are answered only when there is something to say (a hit for gets, a
// failure for stores), and the NOOP that follows each server's batch is
// answered once every request before it was handled, so the NOOP's reply
// tells the client that the silence about the other entries is final.
type batch struct {
	op  binprot.Opcode // quiet opcode; its responses carry it too
	n   int
	key func(i int) []byte // nil: entry i is invalid (errs[i] preset)
	// encode appends entry i's request with opaque i.
	encode func(buf []byte, i int) []byte
	// hit decodes a successful response for entry i (gets only), copying
	// what it keeps into ar.
	hit func(i int, r binprot.Response, ar *arena) error
	// mapErr turns a status error into the command's error for entry i.
	mapErr func(i int, err error) error
	// silent is the result of entries that got no response: ErrCacheMiss
	// for gets, nil (success) for stores and deletes.
	silent error

	errs     []error
	owner    []int32 // server of entry i, or -1 if the entry is invalid
	answered []bool
}

// run sends every valid entry to its server, all servers concurrently, and
// fills b.errs. It never returns before every server has answered, failed
// or timed out.
func (c *Client) run(b *batch) {
	b.owner = make([]int32, b.n)
	b.answered = make([]bool, b.n)
	counts := make([]int, len(c.servers))
	for i := 0; i < b.n; i++ {
		b.owner[i] = -1
		if b.errs[i] != nil {
			continue
		}
		key := b.key(i)
		if !c.keyOK(key) {
			b.errs[i] = ErrMalformedKey
			continue
		}
		si, err := c.route(key)
		if err != nil {
			b.errs[i] = err
			continue
		}
		b.owner[i] = int32(si)
		counts[si]++
	}
	groups := make([][]int, len(c.servers))
	busy := 0
	for si, n := range counts {
		if n > 0 {
			groups[si] = make([]int, 0, n)
			busy++
		}
	}
	for i, si := range b.owner {
		if si >= 0 {
			groups[si] = append(groups[si], i)
		}
	}
	// The last group runs on the calling goroutine: with one server (or all
	// keys on one) there is no goroutine to start, park and wake.
	var wg sync.WaitGroup
	for si, idx := range groups {
		if len(idx) == 0 {
			continue
		}
		busy--
		if busy == 0 {
			c.runGroup(b, si, idx)
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.runGroup(b, si, idx)
		}()
	}
	wg.Wait()
}

// runGroup runs the entries idx on server si, retrying once on a new
// connection if a pooled one turns out to have been closed by the server.
func (c *Client) runGroup(b *batch, si int, idx []int) {
	s := c.servers[si]
	epoch := s.h.epoch.Load()
	defer func() {
		// A panic here would kill the host process (this may be a goroutine
		// of ours, where the caller's recover cannot reach): fail the
		// group's keys instead.
		if p := recover(); p != nil {
			b.failUnanswered(idx, fmt.Errorf("%w: internal error: %v", ErrProtocol, p))
		}
	}()
	for attempt := 0; ; attempt++ {
		cn, pooled, err := c.get(s)
		if err != nil {
			c.record(si, epoch, err)
			b.failUnanswered(idx, err)
			return
		}
		err = b.exchange(cn, si, idx, &arena{left: len(idx)})
		s.put(cn)
		if err != nil && pooled && attempt == 0 && !cn.Received() && staleConnError(err) {
			s.dropIdle()
			continue
		}
		c.record(si, epoch, err)
		if err != nil {
			b.failUnanswered(idx, err)
		}
		return
	}
}

func (b *batch) failUnanswered(idx []int, err error) {
	for _, i := range idx {
		if !b.answered[i] {
			b.answered[i] = true
			b.errs[i] = err
		}
	}
}

// exchange writes the group's requests and a NOOP in one Send and reads
// responses up to the NOOP's.
func (b *batch) exchange(cn *conn.Conn, si int, idx []int, ar *arena) error {
	buf := cn.Buffer()
	for _, i := range idx {
		buf = b.encode(buf, i)
	}
	buf = binprot.AppendKeyOnly(buf, binprot.OpNoop, nil, 0, noopOpaque)
	if err := cn.Send(buf); err != nil {
		return transportError(err)
	}
	for {
		r, err := cn.Recv()
		if err != nil {
			return transportError(err)
		}
		if r.Opcode == binprot.OpNoop {
			if r.Status != binprot.StatusOK || r.Opaque != noopOpaque {
				cn.Close()
				return protocolError(cn.Addr(), "NOOP answered with %v, opaque %#x", r.Status, r.Opaque)
			}
			break
		}
		i := int(r.Opaque)
		if r.Opcode != b.op || i >= b.n || int(b.owner[i]) != si || b.answered[i] {
			cn.Close()
			return protocolError(cn.Addr(), "unexpected %v response with opaque %#x in a %v batch", r.Opcode, r.Opaque, b.op)
		}
		if r.Status != binprot.StatusOK {
			b.answered[i] = true
			b.errs[i] = b.mapErr(i, statusError(r.Status, r.Value))
			continue
		}
		if b.hit == nil {
			cn.Close()
			return protocolError(cn.Addr(), "success response to quiet %v", b.op)
		}
		if err := b.hit(i, r, ar); err != nil {
			cn.Close()
			return err
		}
		b.answered[i] = true
	}
	for _, i := range idx {
		if !b.answered[i] {
			b.answered[i] = true
			b.errs[i] = b.silent
		}
	}
	return nil
}

func sameErr(_ int, err error) error { return err }

// GetMulti gets many keys at once. Both results are aligned with keys: for
// each i, items[i] is the item or nil, and errs[i] is nil, ErrCacheMiss,
// ErrMalformedKey or the error of the server owning keys[i]. Duplicate keys
// are fetched once per occurrence.
func (c *Client) GetMulti(keys [][]byte) (items []*Item, errs []error) {
	return c.getMulti(binprot.OpGetKQ, keys, 0)
}

// GatMulti is GetMulti that also sets the expiration of every item found to
// exp (get-and-touch).
func (c *Client) GatMulti(keys [][]byte, exp uint32) (items []*Item, errs []error) {
	return c.getMulti(binprot.OpGATKQ, keys, exp)
}

func (c *Client) getMulti(op binprot.Opcode, keys [][]byte, exp uint32) ([]*Item, []error) {
	items := make([]*Item, len(keys))
	// One allocation for all the Items instead of one per hit.
	slab := make([]Item, len(keys))
	b := &batch{
		op:   op,
		n:    len(keys),
		key:  func(i int) []byte { return keys[i] },
		errs: make([]error, len(keys)),
		encode: func(buf []byte, i int) []byte {
			if op == binprot.OpGATKQ {
				return binprot.AppendTouch(buf, op, keys[i], exp, uint32(i))
			}
			return binprot.AppendKeyOnly(buf, op, keys[i], 0, uint32(i))
		},
		mapErr: sameErr,
		silent: ErrCacheMiss,
	}
	b.hit = func(i int, r binprot.Response, ar *arena) error {
		flags, ok := r.Flags()
		if !ok || string(r.Key) != string(keys[i]) {
			return fmt.Errorf("%w: %v response for key %q with key %q and %d bytes of extras",
				ErrProtocol, r.Opcode, keys[i], r.Key, len(r.Extras))
		}
		slab[i] = Item{Key: keys[i], Value: ar.clone(r.Value), Flags: flags, CAS: r.CAS}
		items[i] = &slab[i]
		return nil
	}
	c.run(b)
	return items, b.errs
}

// SetMulti stores many items at once, as Set does for each (a nonzero CAS
// makes that item's store conditional). The result is aligned with items:
// errs[i] is nil if items[i] was stored, or why it was not. A nil item gives
// ErrInvalidArguments.
func (c *Client) SetMulti(items []*Item) []error {
	b := &batch{
		op:   binprot.OpSetQ,
		n:    len(items),
		key:  func(i int) []byte { return items[i].Key },
		errs: make([]error, len(items)),
		encode: func(buf []byte, i int) []byte {
			it := items[i]
			return binprot.AppendStore(buf, binprot.OpSetQ, it.Key, it.Value, it.Flags, it.Expiration, it.CAS, uint32(i))
		},
		mapErr: func(i int, err error) error { return storeError(binprot.OpSet, items[i].CAS, err) },
	}
	for i, it := range items {
		if it == nil {
			b.errs[i] = ErrInvalidArguments
		}
	}
	c.run(b)
	return b.errs
}

// DeleteMulti deletes many keys at once. The result is aligned with keys:
// errs[i] is nil if keys[i] was deleted, ErrCacheMiss if it was absent, or
// another error.
func (c *Client) DeleteMulti(keys [][]byte) []error {
	b := &batch{
		op:   binprot.OpDeleteQ,
		n:    len(keys),
		key:  func(i int) []byte { return keys[i] },
		errs: make([]error, len(keys)),
		encode: func(buf []byte, i int) []byte {
			return binprot.AppendKeyOnly(buf, binprot.OpDeleteQ, keys[i], 0, uint32(i))
		},
		mapErr: sameErr,
	}
	c.run(b)
	return b.errs
}

// arena hands out copies of small values carved from shared chunks, so a
// GetMulti of many small values makes a few allocations instead of one per
// value. Each copy's capacity is capped at its length: appending to one
// value reallocates instead of overwriting its neighbour.
type arena struct {
	chunk []byte
	left  int // values still expected: sizes the next chunk
}

const (
	arenaChunk    = 32 << 10
	arenaMaxValue = 4 << 10 // bigger values get their own allocation
)

func (a *arena) clone(b []byte) []byte {
	a.left--
	if len(b) > arenaMaxValue || len(b) == 0 {
		c := make([]byte, len(b))
		copy(c, b)
		return c
	}
	if len(b) > cap(a.chunk)-len(a.chunk) {
		// Guess that the values still to come are about this size.
		a.chunk = make([]byte, 0, min(arenaChunk, len(b)*max(1, a.left+1)))
	}
	n := len(a.chunk)
	a.chunk = append(a.chunk, b...)
	return a.chunk[n : n+len(b) : n+len(b)]
}
