package memcachedtest

import (
	"sync"
)

// maxRelativeExptime is memcached's REALTIME_MAXDELTA: exptimes up to 30 days
// are seconds from now, larger ones are absolute unix times.
const maxRelativeExptime = 60 * 60 * 24 * 30

// expiredStamp marks an item as already expired (negative exptimes and
// absolute times in the past), whatever the clock says.
const expiredStamp = -1

// itemHeaderSize is what memcached 1.6 charges per item on top of key and
// value: the 48-byte item struct plus the 8-byte cas. Using the same
// arithmetic makes "bytes", the item size limit and eviction points match
// the real server (a 1 MiB limit leaves 1048516 bytes of value for a
// one-byte key).
const itemHeaderSize = 48 + 8

// itemTotalSize is memcached's item_make_header + cas: header, key plus its
// NUL, 4 bytes of client flags when non-zero, value plus its CRLF.
func itemTotalSize(nkey int, flags uint32, vlen int) int64 {
	n := int64(itemHeaderSize + nkey + 1 + vlen + 2)
	if flags != 0 {
		n += 4
	}
	return n
}

// absExptime converts a protocol exptime into an absolute unix second, 0
// meaning never, the way memcached's realtime() does.
func absExptime(exptime int64, now int64) int64 {
	switch {
	case exptime == 0:
		return 0
	case exptime < 0:
		return expiredStamp
	case exptime > maxRelativeExptime:
		return exptime
	default:
		return now + exptime
	}
}

type item struct {
	key string
	// value is replaced, never written into, once the item is linked, so
	// a response may keep referring to it after the lock is released.
	value []byte
	flags uint32
	// exptime is an absolute unix second; 0 never expires.
	exptime   int64
	cas       uint64
	atime     int64 // last access or update
	fetched   bool
	stale     bool // marked by md I / ms I: mg reports X
	tokenSent bool // a client was handed W: others get Z
	keyBinary bool // stored through a base64 (b flag) meta key
	class     int
	size      int64

	prev, next *item
}

func (it *item) expired(now int64) bool {
	return it.exptime != 0 && it.exptime <= now
}

// ttl is the remaining lifetime as meta commands report it: -1 for none.
func (it *item) ttl(now int64) int64 {
	if it.exptime == 0 {
		return -1
	}
	return it.exptime - now
}

type storeStatus int

const (
	statusStored storeStatus = iota
	statusNotStored
	statusExists
	statusNotFound
	statusTooLarge
	statusNoMemory
)

type storeMode int

const (
	modeSet storeMode = iota
	modeAdd
	modeReplace
	modeAppend
	modePrepend
	modeCAS
)

// storeRequest is one storage command after protocol decoding.
type storeRequest struct {
	key     string
	value   []byte
	flags   uint32
	exptime int64 // absolute, see absExptime
	mode    storeMode
	cas     uint64 // compare-and-swap token, 0 for none
	// setStale (ms I): a cas older than the item's stores the value but
	// marks it stale instead of failing.
	setStale bool
	// vivify (ms N in append/prepend mode) creates a missing item with
	// vivifyExptime instead of failing.
	vivify        bool
	vivifyExptime int64
	newCas        uint64 // ms E: use this cas instead of the next counter value
	keyBinary     bool
	// internal stores (counters created by incr/ma) are not storage
	// commands and stay out of cmd_set, as in memcached.
	internal bool
}

// counters are the server-wide statistics memcached reports in "stats".
type counters struct {
	cmdGet, cmdSet, cmdFlush, cmdTouch, cmdMeta   uint64
	getHits, getMisses, getExpired, getFlushed    uint64
	deleteHits, deleteMisses                      uint64
	incrHits, incrMisses, decrHits, decrMisses    uint64
	casHits, casMisses, casBadval                 uint64
	touchHits, touchMisses                        uint64
	storeTooLarge, storeNoMemory                  uint64
	evictions, reclaimed                          uint64
	expiredUnfetched, evictedUnfetched, totalItem uint64
}

// store is the cache: a map, one LRU list and byte accounting. Protocol
// handlers lock mu and use the primitives below, which is how memcached's
// meta commands can read an item's old state and change it atomically.
type store struct {
	mu          sync.Mutex
	items       map[string]*item
	head, tail  *item // head is the most recently used
	bytes       int64
	maxBytes    int64
	itemSizeMax int
	evict       bool
	casCounter  uint64
	flushAt     int64 // pending delayed flush_all, 0 for none
	verbosity   int
	classes     []slabClass
	st          counters
}

func newStore(maxBytes int64, itemSizeMax int, evict bool) *store {
	return &store{
		items:       make(map[string]*item),
		maxBytes:    maxBytes,
		itemSizeMax: itemSizeMax,
		evict:       evict,
		classes:     newSlabClasses(),
	}
}

// sizeOK reports whether an item fits under the item size limit.
func (s *store) sizeOK(nkey int, flags uint32, vlen int) bool {
	return itemTotalSize(nkey, flags, vlen) <= int64(s.itemSizeMax)
}

func (s *store) nextCas() uint64 {
	s.casCounter++
	return s.casCounter
}

// prepare runs the bookkeeping every command needs first: a delayed
// flush_all whose time has come empties the cache. Like memcached (whose
// oldest_live is the flush's second), the flush drops every item stored up
// to and including its second: it stays armed until that second is over.
// Every item alive when a command runs was stored before it, as no command
// ran since.
func (s *store) prepare(now int64) {
	if s.flushAt != 0 && now >= s.flushAt {
		if now > s.flushAt {
			s.flushAt = 0
		}
		s.clear()
	}
}

// flush implements flush_all: at once for delay <= 0, else once the
// (memcached-style relative or absolute) delay has passed.
func (s *store) flush(delay int64, now int64) {
	if delay <= 0 {
		s.flushAt = 0
		s.clear()
		// memcached marks an immediate flush with a fresh cas id
		// (oldest_cas), which uses up one value of the counter.
		s.nextCas()
		return
	}
	// memcached sets oldest_live = realtime(delay) - 1: "flush_all 1"
	// drops the items at once, "flush_all 2" within a second (when its
	// clock next ticks). A flush due now takes a cas id, as an immediate
	// one does.
	s.flushAt = absExptime(delay, now) - 1
	if s.flushAt <= now {
		s.nextCas()
	}
	s.prepare(now)
}

func (s *store) clear() {
	for it := s.head; it != nil; {
		next := it.next
		s.unlink(it)
		it = next
	}
}

// find returns the live item for key, dropping it if it has expired.
func (s *store) find(key string, now int64) (*item, bool) {
	it := s.items[key]
	if it == nil {
		return nil, false
	}
	if it.expired(now) {
		if !it.fetched {
			s.st.expiredUnfetched++
		}
		s.unlink(it)
		return nil, true
	}
	return it, false
}

// bump records a fetch: LRU head, access time, fetched bit.
func (s *store) bump(it *item, now int64) {
	it.fetched = true
	s.touchLRU(it, now)
}

func (s *store) touchLRU(it *item, now int64) {
	it.atime = now
	if s.head == it {
		return
	}
	s.listRemove(it)
	s.listPush(it)
}

func (s *store) listRemove(it *item) {
	if it.prev != nil {
		it.prev.next = it.next
	} else {
		s.head = it.next
	}
	if it.next != nil {
		it.next.prev = it.prev
	} else {
		s.tail = it.prev
	}
	it.prev, it.next = nil, nil
}

func (s *store) listPush(it *item) {
	it.next = s.head
	it.prev = nil
	if s.head != nil {
		s.head.prev = it
	}
	s.head = it
	if s.tail == nil {
		s.tail = it
	}
}

func (s *store) unlink(it *item) {
	if s.items[it.key] != it {
		return
	}
	delete(s.items, it.key)
	s.listRemove(it)
	s.bytes -= it.size
	c := &s.classes[it.class]
	c.items--
	c.requested -= it.size
}

// newItem builds an unlinked item with its size and slab class computed.
func (s *store) newItem(key string, value []byte, flags uint32, exptime int64) *item {
	it := &item{key: key, value: value, flags: flags, exptime: exptime}
	it.size = itemTotalSize(len(key), flags, len(value))
	it.class = classFor(s.classes, it.size)
	return it
}

// makeRoom evicts from the LRU tail until need more bytes fit, counting the
// bytes of replacing (about to be unlinked) as already free. It fails when
// the item cannot fit at all or eviction is disabled.
func (s *store) makeRoom(need int64, replacing *item, now int64) bool {
	free := int64(0)
	if replacing != nil {
		free = replacing.size
	}
	if need > s.maxBytes {
		return false
	}
	for s.bytes-free+need > s.maxBytes {
		victim := s.tail
		if victim == replacing {
			victim = victim.prev
		}
		if victim == nil {
			return false
		}
		c := &s.classes[victim.class]
		switch {
		case victim.expired(now):
			s.st.reclaimed++
			c.reclaimed++
			if !victim.fetched {
				s.st.expiredUnfetched++
				c.expiredUnfetched++
			}
		case !s.evict:
			c.outOfMemory++
			return false
		default:
			s.st.evictions++
			c.evicted++
			if victim.exptime != 0 {
				c.evictedNonzero++
			}
			if !victim.fetched {
				s.st.evictedUnfetched++
				c.evictedUnfetched++
			}
			c.evictedTime = now - victim.atime
		}
		s.unlink(victim)
	}
	return true
}

// link makes it the live item for its key, replacing old (which may be nil),
// and gives it a cas: newCas if non-zero, else the next counter value.
func (s *store) link(it, old *item, newCas uint64, now int64) bool {
	if !s.makeRoom(it.size, old, now) {
		s.st.storeNoMemory++
		return false
	}
	if old != nil {
		s.unlink(old)
	}
	if newCas != 0 {
		it.cas = newCas
	} else {
		it.cas = s.nextCas()
	}
	it.atime = now
	s.items[it.key] = it
	s.listPush(it)
	s.bytes += it.size
	c := &s.classes[it.class]
	c.items++
	c.requested += it.size
	c.noteGrowth()
	s.st.totalItem++
	return true
}

// storeItem is memcached's do_store_item: every storage command of every
// protocol ends here. It returns the linked item on success.
func (s *store) storeItem(r *storeRequest, now int64) (storeStatus, *item) {
	if !r.internal {
		s.st.cmdSet++
	}
	old, _ := s.find(r.key, now)
	nit := s.newItem(r.key, r.value, r.flags, r.exptime)
	nit.keyBinary = r.keyBinary
	if old == nil {
		switch r.mode {
		case modeSet, modeAdd:
		case modeCAS:
			s.st.casMisses++
			return statusNotFound, nil
		case modeAppend, modePrepend:
			if !r.vivify {
				return statusNotStored, nil
			}
			nit.exptime = r.vivifyExptime
		default:
			return statusNotStored, nil
		}
		if !r.internal {
			s.classes[nit.class].cmdSet++
		}
		if !s.link(nit, nil, r.newCas, now) {
			return statusNoMemory, nil
		}
		return statusStored, nit
	}

	oc := &s.classes[old.class]
	if !r.internal {
		oc.cmdSet++
	}
	casMatch := r.cas != 0 && r.cas == old.cas
	casStale := r.cas != 0 && !casMatch && r.setStale && r.cas < old.cas
	switch r.mode {
	case modeAdd:
		// memcached promotes the existing item even though add fails.
		s.touchLRU(old, now)
		return statusNotStored, nil
	case modeCAS:
		switch {
		case casMatch:
			s.st.casHits++
			oc.casHits++
		case casStale:
			nit.exptime = old.exptime
			nit.stale = true
			nit.tokenSent = old.tokenSent
			s.st.casHits++
			oc.casHits++
		default:
			s.st.casBadval++
			oc.casBadval++
			return statusExists, nil
		}
	case modeAppend, modePrepend:
		if r.cas != 0 && !casMatch {
			return statusExists, nil
		}
		joined := make([]byte, 0, len(old.value)+len(r.value))
		if r.mode == modeAppend {
			joined = append(append(joined, old.value...), r.value...)
		} else {
			joined = append(append(joined, r.value...), old.value...)
		}
		if !s.sizeOK(len(r.key), old.flags, len(joined)) {
			return statusNotStored, nil
		}
		// The joined item forgets a base64 key, as memcached's does.
		nit = s.newItem(r.key, joined, old.flags, old.exptime)
	}
	if !s.link(nit, old, r.newCas, now) {
		return statusNoMemory, nil
	}
	return statusStored, nit
}

type deltaStatus int

const (
	deltaOK deltaStatus = iota
	deltaNonNumeric
	deltaNotFound
	deltaCasMismatch
	deltaNoMemory
)

// addDelta is memcached's do_add_delta: incr wraps at 2^64, decr stops at
// 0, and a result no longer than the old value is space-padded to the old
// length (memcached rewrites such values in place; clients see the pad).
func (s *store) addDelta(key string, incr bool, delta, cas, newCas uint64, now int64) (deltaStatus, uint64, *item) {
	it, _ := s.find(key, now)
	if it == nil {
		return deltaNotFound, 0, nil
	}
	if len(it.value) == 0 {
		return deltaNonNumeric, 0, nil
	}
	if cas != 0 && cas != it.cas {
		return deltaCasMismatch, 0, nil
	}
	v, ok := parseItemNumber(it.value)
	if !ok {
		return deltaNonNumeric, 0, nil
	}
	c := &s.classes[it.class]
	if incr {
		v += delta
		s.st.incrHits++
		c.incrHits++
	} else {
		if delta > v {
			v = 0
		} else {
			v -= delta
		}
		s.st.decrHits++
		c.decrHits++
	}
	digits := []byte(formatUint(v))
	if len(digits) <= len(it.value) {
		// memcached rewrites the value in place when the number fits,
		// padding with spaces: the item keeps its size and slab class.
		padded := make([]byte, len(it.value))
		copy(padded, digits)
		for i := len(digits); i < len(padded); i++ {
			padded[i] = ' '
		}
		it.value = padded
		if newCas != 0 {
			it.cas = newCas
		} else {
			it.cas = s.nextCas()
		}
		s.touchLRU(it, now)
		return deltaOK, v, it
	}
	nit := s.newItem(it.key, digits, it.flags, it.exptime)
	if !s.link(nit, it, newCas, now) {
		return deltaNoMemory, 0, nil
	}
	return deltaOK, v, nit
}

// vivifyNumber creates a missing counter (binary incr with an initial
// value, ma N/J); it fails if the key exists.
func (s *store) vivifyNumber(key string, initial uint64, exptime int64, newCas uint64, now int64) (storeStatus, *item) {
	return s.storeItem(&storeRequest{
		key: key, value: []byte(formatUint(initial)), exptime: exptime, mode: modeAdd, newCas: newCas,
		internal: true,
	}, now)
}

// touch sets a new exptime on a live item and records the access, as
// memcached's item_touch does; it counts touch statistics.
func (s *store) touch(key string, exptime int64, now int64) *item {
	s.st.cmdTouch++
	it, _ := s.find(key, now)
	if it == nil {
		s.st.touchMisses++
		return nil
	}
	it.exptime = exptime
	s.bump(it, now)
	s.st.touchHits++
	s.classes[it.class].touchHits++
	return it
}

// get is a plain retrieval with hit/miss statistics and an LRU bump.
func (s *store) get(key string, now int64) *item {
	s.st.cmdGet++
	it, expired := s.find(key, now)
	if it == nil {
		s.st.getMisses++
		if expired {
			s.st.getExpired++
		}
		return nil
	}
	s.st.getHits++
	s.classes[it.class].getHits++
	s.bump(it, now)
	return it
}

// countBadChunk counts a storage command whose data block did not end in
// CRLF: memcached counts it in cmd_set before checking.
func (s *store) countBadChunk() {
	s.mu.Lock()
	s.st.cmdSet++
	s.mu.Unlock()
}

func (s *store) countDeltaMiss(incr bool) {
	if incr {
		s.st.incrMisses++
	} else {
		s.st.decrMisses++
	}
}

// remove deletes key if present, with cas check when cas != 0.
func (s *store) remove(key string, cas uint64, now int64) storeStatus {
	it, _ := s.find(key, now)
	if it == nil {
		s.st.deleteMisses++
		return statusNotFound
	}
	if cas != 0 && cas != it.cas {
		return statusExists
	}
	s.st.deleteHits++
	s.classes[it.class].deleteHits++
	s.unlink(it)
	return statusStored
}

// parseItemNumber reads a stored value the way memcached's safe_strtoull
// does on item data: strtoull semantics (leading blanks, sign, base 10),
// then the next byte must be white space or the end (the stored CRLF), and
// negative numbers are refused.
func parseItemNumber(b []byte) (uint64, bool) {
	return parseStrtoull(string(b) + "\r\n")
}

func formatUint(v uint64) string {
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return string(buf[i:])
}
