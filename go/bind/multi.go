package bind

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"unsafe"

	"github.com/omcache/omcache/go/client"
)

// packItems encodes aligned multi-get results in columns, so that Python
// decodes them with a few C-level calls instead of a loop per key:
//
//	StatusOK, u32 hits, u32 errors, u32 format length, u32 errors offset,
//	a Python struct format for the values ("<5s100s..."; ASCII),
//	hits x u32 index, hits x u32 flags, hits x u64 cas,
//	the hits' values back to back,
//	then, at the errors offset, per error: u32 index, error record
//	(status, u32 length, message).
//
// Misses are left out; hits keep the order of the keys.
func packItems(items []*client.Item, errs []error) []byte {
	out, _ := appendItems(nil, nil, items, errs)
	return out
}

// appendItems appends packItems' encoding of items and errs to dst, using
// format's memory for the struct format; it returns both slices.
func appendItems(dst, format []byte, items []*client.Item, errs []error) ([]byte, []byte) {
	hits, size := 0, 0
	format = append(format[:0], '<')
	for i, it := range items {
		if errs[i] == nil && it != nil {
			hits++
			size += 16 + len(it.Value)
			format = strconv.AppendInt(format, int64(len(it.Value)), 10)
			format = append(format, 's')
		}
	}
	if dst == nil {
		dst = make([]byte, 0, 1+16+len(format)+size)
	}
	p := packer{buf: append(dst, StatusOK)}
	p.u32(uint32(hits))
	head := len(p.buf)
	p.u32(0) // errors, filled in below
	p.u32(uint32(len(format)))
	p.u32(0) // errors offset, filled in below
	p.buf = append(p.buf, format...)
	for i, it := range items {
		if errs[i] == nil && it != nil {
			p.u32(uint32(i))
		}
	}
	for i, it := range items {
		if errs[i] == nil && it != nil {
			p.u32(it.Flags)
		}
	}
	for i, it := range items {
		if errs[i] == nil && it != nil {
			p.u64(it.CAS)
		}
	}
	for i, it := range items {
		if errs[i] == nil && it != nil {
			p.buf = append(p.buf, it.Value...)
		}
	}
	errPos, n := len(p.buf), 0
	for i, err := range errs {
		if err != nil && !errors.Is(err, client.ErrCacheMiss) {
			p.u32(uint32(i))
			p.errRecord(err)
			n++
		}
	}
	binary.LittleEndian.PutUint32(p.buf[head:], uint32(n))
	binary.LittleEndian.PutUint32(p.buf[head+8:], uint32(errPos))
	return p.buf, format
}

// packErrs encodes aligned per-key results of SetMulti/DeleteMulti: a record
// of index (u32) and error record for every key that did not succeed.
func packErrs(errs []error) []byte {
	p := newPacker(StatusOK, 0)
	for i, err := range errs {
		if err != nil {
			p.u32(uint32(i))
			p.errRecord(err)
		}
	}
	return p.buf
}

// multiScratch is the working memory of a GetMultiInto call: the key list,
// the engine's reusable results and the struct format, kept for the next
// call so that a multi-get allocates nothing in the common case.
type multiScratch struct {
	keys   [][]byte
	res    client.MultiGet
	format []byte
}

var multiFree freeList[multiScratch]

// GetMultiInto fetches many keys in one pipelined exchange per server, all
// servers at once (with gat set, every item found also gets expiration
// exptime), and writes the packed result (see packItems) into
// the caller's buffer (bufCap bytes at bufAddr, memory the caller owns and
// does not touch during the call), which saves the result's allocation and
// the handle bookkeeping of a returned []byte. It returns the result's
// length, or -token when it does not fit: TakeResult(token) returns it.
//
// With nkeys < 0 the keys are a packed key list (u32 count, count u32
// lengths, the keys back to back); with
// nkeys >= 0 they are nkeys keys joined by '\n' (no key may hold one),
// which Python builds with one join and one encode.
func GetMultiInto(h, keysAddr, keysLen, nkeys, bufAddr, bufCap int64, gat bool, exptime int64) (ret int64) {
	buf := bytesAt(bufAddr, bufCap)
	defer func() {
		if r := recover(); r != nil {
			ret = -stashResult([]byte{StatusInternal})
		}
	}()
	c, err := lookup(h)
	if err != nil {
		return writePacked(buf, packedError(err))
	}
	if !isU32(exptime) {
		return writePacked(buf, packedError(client.ErrInvalidArguments))
	}
	s := multiFree.get()
	defer func() {
		// The keys alias the caller's memory: forget them.
		clear(s.keys)
		multiFree.put(s, s.res.Retained()+cap(s.keys)*24+cap(s.format))
	}()
	s.keys, err = appendKeys(s.keys[:0], bytesAt(keysAddr, keysLen), nkeys)
	if err != nil {
		return writePacked(buf, packedError(err))
	}
	c.GetMultiReuse(&s.res, s.keys, gat, uint32(exptime))
	var out []byte
	out, s.format = appendItems(buf[:0:len(buf)], s.format, s.res.Found, s.res.Errs)
	// Values that were read into buffers of their own are copied out now:
	// give the buffers back for the next large values.
	for _, it := range s.res.Found {
		if it != nil && len(it.Value) >= client.LargeValue {
			client.ReleaseValue(it.Value)
			it.Value = nil
		}
	}
	if len(buf) > 0 && unsafe.SliceData(out) == unsafe.SliceData(buf) {
		return int64(len(out))
	}
	// append moved it to Go memory: too big for the buffer.
	return -stashResult(out)
}

// writePacked copies a packed result into buf, or stashes it when it does
// not fit; it returns GetInto's length or -token.
func writePacked(buf, packed []byte) int64 {
	if len(packed) > len(buf) {
		return -stashResult(packed)
	}
	return int64(copy(buf, packed))
}

// setScratch is the working memory of a SetMulti call, reused.
type setScratch struct {
	keys  [][]byte
	items []client.Item
	ptrs  []*client.Item
}

var setFree freeList[setScratch]

// SetMulti stores many items with quiet SETs and one NOOP per server.
//
// The keys are at keysAddr as for GetMultiInto (nkeys >= 0: that many keys
// joined by '\n'; nkeys < 0: a packed key list). The values are back to
// back at valuesAddr, with one u32 length per key at lensAddr (lensLen
// bytes). flagsLen is 0 when every item gets flags, else flagsAddr holds
// one u32 flags per key. Every item gets expiration exptime.
//
// It returns StatusOK when every item was stored; otherwise -token, and
// TakeResult(token) returns either the whole call's error or a packErrs
// result naming the items that were not stored.
func SetMulti(h, keysAddr, keysLen, nkeys, valuesAddr, valuesLen, lensAddr, lensLen, flagsAddr, flagsLen, flags, exptime int64) (ret int64) {
	defer func() {
		if r := recover(); r != nil {
			ret = -stashResult([]byte{StatusInternal})
		}
	}()
	var flagList []byte
	if flagsLen != 0 {
		flagList = bytesAt(flagsAddr, flagsLen)
	}
	return setMultiBytes(h, bytesAt(keysAddr, keysLen), nkeys, bytesAt(valuesAddr, valuesLen), bytesAt(lensAddr, lensLen), flagList, flags, exptime)
}

// setMultiBytes is SetMulti on arguments in Go memory (omcache.aio runs it later, on copies).
func setMultiBytes(h int64, keys []byte, nkeys int64, values, lens, flagList []byte, flags, exptime int64) (ret int64) {
	defer func() {
		if r := recover(); r != nil {
			ret = -stashResult([]byte{StatusInternal})
		}
	}()
	c, err := lookup(h)
	if err != nil {
		return -stashResult(packedError(err))
	}
	if !isU32(exptime) || !isU32(flags) {
		return -stashResult(packedError(client.ErrInvalidArguments))
	}
	s := setFree.get()
	defer func() {
		clear(s.keys)
		clear(s.items)
		clear(s.ptrs)
		setFree.put(s, cap(s.keys)*24+cap(s.items)*int(unsafe.Sizeof(client.Item{}))+cap(s.ptrs)*8)
	}()
	s.keys, err = appendKeys(s.keys[:0], keys, nkeys)
	if err != nil {
		return -stashResult(packedError(err))
	}
	n := len(s.keys)
	if len(lens) != 4*n || (len(flagList) != 0 && len(flagList) != 4*n) {
		return -stashResult(packedError(fmt.Errorf("%w: %d keys with %d bytes of lengths and %d of flags",
			errInternal, n, len(lens), len(flagList))))
	}
	s.items = resize(s.items, n)
	s.ptrs = resize(s.ptrs, n)
	for i := range s.items {
		l := uint64(binary.LittleEndian.Uint32(lens[4*i:]))
		if l > uint64(len(values)) {
			return -stashResult(packedError(fmt.Errorf("%w: values shorter than their lengths", errInternal)))
		}
		it := &s.items[i]
		it.Key, it.Value, values = s.keys[i], values[:l:l], values[l:]
		it.Flags = uint32(flags)
		if len(flagList) != 0 {
			it.Flags = binary.LittleEndian.Uint32(flagList[4*i:])
		}
		it.Expiration = uint32(exptime)
		s.ptrs[i] = it
	}
	if len(values) != 0 {
		return -stashResult(packedError(fmt.Errorf("%w: %d bytes of values past their lengths", errInternal, len(values))))
	}
	return errsResult(c.SetMulti(s.ptrs))
}

// DeleteMulti deletes many keys, given as for GetMultiInto. It returns
// StatusOK when every key was deleted; otherwise -token, and
// TakeResult(token) returns either the whole call's error or a packErrs
// result (a key that was absent has StatusMiss).
func DeleteMulti(h, keysAddr, keysLen, nkeys int64) (ret int64) {
	defer func() {
		if r := recover(); r != nil {
			ret = -stashResult([]byte{StatusInternal})
		}
	}()
	return deleteMultiBytes(h, bytesAt(keysAddr, keysLen), nkeys)
}

// deleteMultiBytes is DeleteMulti on keys in Go memory (omcache.aio runs it later, on a copy).
func deleteMultiBytes(h int64, keys []byte, nkeys int64) (ret int64) {
	defer func() {
		if r := recover(); r != nil {
			ret = -stashResult([]byte{StatusInternal})
		}
	}()
	c, err := lookup(h)
	if err != nil {
		return -stashResult(packedError(err))
	}
	s := setFree.get()
	defer func() {
		clear(s.keys)
		setFree.put(s, cap(s.keys)*24+cap(s.items)*int(unsafe.Sizeof(client.Item{}))+cap(s.ptrs)*8)
	}()
	s.keys, err = appendKeys(s.keys[:0], keys, nkeys)
	if err != nil {
		return -stashResult(packedError(err))
	}
	return errsResult(c.DeleteMulti(s.keys))
}

// errsResult is StatusOK if no entry failed, else -token of packErrs(errs).
func errsResult(errs []error) int64 {
	for _, err := range errs {
		if err != nil {
			return -stashResult(packErrs(errs))
		}
	}
	return StatusOK
}

// appendKeys decodes the keys of a multi-key call: nkeys joined by '\n',
// or a packed key list when nkeys < 0.
func appendKeys(dst [][]byte, b []byte, nkeys int64) ([][]byte, error) {
	if nkeys < 0 {
		return appendKeyList(dst, b)
	}
	return appendKeyLines(dst, b, nkeys)
}

func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// freeList keeps idle working memory of multi-key calls for reuse (a free
// list, not a sync.Pool: a pool is emptied by every garbage collection).
type freeList[T any] struct {
	mu   sync.Mutex
	free []*T
}

const (
	// freeListMax bounds the idle entries kept (about one per thread
	// calling at once).
	freeListMax = 32
	// retainMax is the most memory an idle entry may keep; one grown
	// larger by a huge call is dropped.
	retainMax = 1 << 20
)

func (l *freeList[T]) get() *T {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.free); n > 0 {
		x := l.free[n-1]
		l.free = l.free[:n-1]
		return x
	}
	return new(T)
}

// put keeps x unless it retains more than retainMax bytes or enough are kept.
func (l *freeList[T]) put(x *T, retained int) {
	if retained > retainMax {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.free) < freeListMax {
		l.free = append(l.free, x)
	}
}
