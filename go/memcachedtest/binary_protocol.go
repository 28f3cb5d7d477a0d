package memcachedtest

import (
	"encoding/binary"
	"strings"
)

// Binary protocol opcodes (protocol_binary.h).
const (
	opGet        = 0x00
	opSet        = 0x01
	opAdd        = 0x02
	opReplace    = 0x03
	opDelete     = 0x04
	opIncrement  = 0x05
	opDecrement  = 0x06
	opQuit       = 0x07
	opFlush      = 0x08
	opGetQ       = 0x09
	opNoop       = 0x0a
	opVersion    = 0x0b
	opGetK       = 0x0c
	opGetKQ      = 0x0d
	opAppend     = 0x0e
	opPrepend    = 0x0f
	opStat       = 0x10
	opSetQ       = 0x11
	opAddQ       = 0x12
	opReplaceQ   = 0x13
	opDeleteQ    = 0x14
	opIncrementQ = 0x15
	opDecrementQ = 0x16
	opQuitQ      = 0x17
	opFlushQ     = 0x18
	opAppendQ    = 0x19
	opPrependQ   = 0x1a
	opTouch      = 0x1c
	opGat        = 0x1d
	opGatQ       = 0x1e
	opGatK       = 0x23
	opGatKQ      = 0x24
)

// Binary protocol response statuses.
const (
	statusOK          = 0x00
	statusKeyENOENT   = 0x01
	statusKeyEEXISTS  = 0x02
	statusE2BIG       = 0x03
	statusEINVAL      = 0x04
	statusNotStoredB  = 0x05
	statusDeltaBadval = 0x06
	statusUnknownCmd  = 0x81
	statusENOMEM      = 0x82
)

const binaryHeaderSize = 24

// binaryErrorText is the body memcached sends with each error status.
var binaryErrorText = map[uint16]string{
	statusKeyENOENT:   "Not found",
	statusKeyEEXISTS:  "Data exists for key.",
	statusE2BIG:       "Too large.",
	statusEINVAL:      "Invalid arguments",
	statusNotStoredB:  "Not stored.",
	statusDeltaBadval: "Non-numeric server-side value for incr or decr",
	statusUnknownCmd:  "Unknown command",
	statusENOMEM:      "Out of memory",
}

// quietOpcodes maps each quiet opcode to its loud twin.
var quietOpcodes = map[byte]byte{
	opSetQ: opSet, opAddQ: opAdd, opReplaceQ: opReplace, opDeleteQ: opDelete,
	opIncrementQ: opIncrement, opDecrementQ: opDecrement, opQuitQ: opQuit,
	opFlushQ: opFlush, opAppendQ: opAppend, opPrependQ: opPrepend,
	opGetQ: opGet, opGetKQ: opGetK, opGatQ: opGat, opGatKQ: opGatK,
}

// binRequest is one decoded request header plus extras and key; the value,
// if any, is still unread.
type binRequest struct {
	opcode  byte // as sent; responses echo it
	cmd     byte // loud opcode
	quiet   bool
	extras  []byte
	key     string
	vlen    int64
	opaque  uint32
	cas     uint64
	bodyLen uint32
}

func (c *conn) binHeader(opcode byte, status uint16, extLen, keyLen int, bodyLen int, opaque uint32, cas uint64) {
	var h [binaryHeaderSize]byte
	h[0] = binaryResponseMagic
	h[1] = opcode
	binary.BigEndian.PutUint16(h[2:], uint16(keyLen))
	h[4] = byte(extLen)
	binary.BigEndian.PutUint16(h[6:], status)
	binary.BigEndian.PutUint32(h[8:], uint32(bodyLen))
	binary.BigEndian.PutUint32(h[12:], opaque)
	binary.BigEndian.PutUint64(h[16:], cas)
	c.out = append(c.out, h[:]...)
}

func (c *conn) binReply(r *binRequest, cas uint64, extras []byte, key string, value []byte) {
	c.binHeader(r.opcode, statusOK, len(extras), len(key), len(extras)+len(key)+len(value), r.opaque, cas)
	c.out = append(c.out, extras...)
	c.out = append(c.out, key...)
	c.appendValue(value)
}

// binSuccess answers a command that worked, unless it was quiet.
func (c *conn) binSuccess(r *binRequest, cas uint64, extras []byte, value []byte) {
	if !r.quiet {
		c.binReply(r, cas, extras, "", value)
	}
}

// binError answers with an error status; quiet commands get errors too.
func (c *conn) binError(r *binRequest, status uint16) {
	msg := binaryErrorText[status]
	c.binHeader(r.opcode, status, 0, 0, len(msg), r.opaque, 0)
	c.out = append(c.out, msg...)
}

func (c *conn) handleBinary() error {
	hdr, err := c.readFull(binaryHeaderSize)
	if err != nil {
		return err
	}
	if hdr[0] != binaryRequestMagic {
		// memcached hangs up on a bad magic without a word.
		return errCloseConn
	}
	r := &binRequest{
		opcode:  hdr[1],
		opaque:  binary.BigEndian.Uint32(hdr[12:]),
		cas:     binary.BigEndian.Uint64(hdr[16:]),
		bodyLen: binary.BigEndian.Uint32(hdr[8:]),
	}
	keyLen := int(binary.BigEndian.Uint16(hdr[2:]))
	extLen := int(hdr[4])
	if c.stalled() {
		return c.discard(int64(r.bodyLen))
	}
	r.cmd, r.quiet = r.opcode, false
	if loud, ok := quietOpcodes[r.opcode]; ok {
		r.cmd, r.quiet = loud, true
	}
	if int64(keyLen) > int64(r.bodyLen) || int64(keyLen+extLen) > int64(r.bodyLen) {
		c.binError(r, statusUnknownCmd)
		return errCloseConn
	}
	ext, err := c.readFull(extLen)
	if err != nil {
		return err
	}
	key, err := c.readFull(keyLen)
	if err != nil {
		return err
	}
	r.extras, r.key = ext, string(key)
	r.vlen = int64(r.bodyLen) - int64(keyLen) - int64(extLen)
	if keyLen > maxKeyLength {
		c.binError(r, statusEINVAL)
		return errCloseConn
	}

	noValue := r.vlen == 0
	valid := true
	switch r.cmd {
	case opVersion, opNoop, opQuit:
		valid = extLen == 0 && keyLen == 0 && noValue
	case opFlush:
		valid = keyLen == 0 && noValue && (extLen == 0 || extLen == 4)
	case opSet, opAdd, opReplace:
		valid = extLen == 8 && keyLen != 0
	case opGet, opGetK:
		valid = extLen == 0 && keyLen > 0 && noValue
	case opDelete:
		valid = keyLen > 0 && extLen == 0 && noValue
	case opIncrement, opDecrement:
		valid = keyLen > 0 && extLen == 20 && noValue
	case opAppend, opPrepend:
		valid = keyLen > 0 && extLen == 0
	case opStat:
		valid = extLen == 0
	case opTouch, opGat, opGatK:
		valid = extLen == 4 && keyLen != 0
	default:
		c.binError(r, statusUnknownCmd)
		return c.discard(r.vlen)
	}
	if !valid {
		c.binError(r, statusEINVAL)
		return errCloseConn
	}

	switch r.cmd {
	case opVersion:
		c.binSuccess(r, 0, nil, []byte(c.srv.cfg.Version))
	case opNoop:
		c.binSuccess(r, 0, nil, nil)
		// A noop ends a pipeline of quiet commands: answer now.
		return c.flush()
	case opQuit:
		c.binSuccess(r, 0, nil, nil)
		return errCloseConn
	case opFlush:
		var delay int64
		if extLen == 4 {
			delay = int64(binary.BigEndian.Uint32(ext))
		}
		c.withStore(func(st *store, now int64) {
			st.st.cmdFlush++
			st.flush(delay, now)
		})
		c.binSuccess(r, 0, nil, nil)
	case opSet, opAdd, opReplace, opAppend, opPrepend:
		return c.binUpdate(r)
	case opGet, opGetK, opTouch, opGat, opGatK:
		if err := c.discard(r.vlen); err != nil {
			return err
		}
		c.binGet(r)
	case opDelete:
		var status storeStatus
		c.withStore(func(st *store, now int64) { status = st.remove(r.key, r.cas, now) })
		switch status {
		case statusStored:
			c.binSuccess(r, 0, nil, nil)
		case statusExists:
			c.binError(r, statusKeyEEXISTS)
		default:
			c.binError(r, statusKeyENOENT)
		}
	case opIncrement, opDecrement:
		c.binArithmetic(r)
	case opStat:
		if err := c.discard(r.vlen); err != nil {
			return err
		}
		c.binStat(r)
	}
	return nil
}

// withStore runs f under the store lock after the per-command bookkeeping.
func (c *conn) withStore(f func(st *store, now int64)) {
	st := c.srv.store
	st.mu.Lock()
	now := c.srv.now()
	st.prepare(now)
	f(st, now)
	st.mu.Unlock()
}

func (c *conn) binUpdate(r *binRequest) error {
	var flags uint32
	var exptime int64
	mode := map[byte]storeMode{opSet: modeSet, opAdd: modeAdd, opReplace: modeReplace,
		opAppend: modeAppend, opPrepend: modePrepend}[r.cmd]
	if len(r.extras) == 8 {
		flags = binary.BigEndian.Uint32(r.extras)
		exptime = int64(binary.BigEndian.Uint32(r.extras[4:]))
	}
	st := c.srv.store
	if r.vlen > maxInt32-2 || !st.sizeOK(len(r.key), flags, int(r.vlen)) {
		// Unlike text, memcached's binary path leaves store_too_large alone.
		c.withStore(func(st *store, now int64) {
			if r.cmd == opSet {
				if old, _ := st.find(r.key, now); old != nil {
					st.unlink(old)
				}
			}
		})
		c.binError(r, statusE2BIG)
		return c.discard(r.vlen)
	}
	value, err := c.readFull(int(r.vlen))
	if err != nil {
		return err
	}
	if r.cas != 0 && (mode == modeSet || mode == modeAdd || mode == modeReplace) {
		mode = modeCAS
	}
	var status storeStatus
	var cas uint64
	c.withStore(func(st *store, now int64) {
		var it *item
		status, it = st.storeItem(&storeRequest{
			key: r.key, value: value, flags: flags, exptime: absExptime(exptime, now),
			mode: mode, cas: r.cas,
		}, now)
		if it != nil {
			cas = it.cas
		}
	})
	switch status {
	case statusStored:
		c.binSuccess(r, cas, nil, nil)
	case statusExists:
		c.binError(r, statusKeyEEXISTS)
	case statusNotFound:
		c.binError(r, statusKeyENOENT)
	case statusNoMemory:
		c.binError(r, statusENOMEM)
	default:
		switch mode {
		case modeAdd:
			c.binError(r, statusKeyEEXISTS)
		case modeReplace:
			c.binError(r, statusKeyENOENT)
		default:
			c.binError(r, statusNotStoredB)
		}
	}
	return nil
}

func (c *conn) binGet(r *binRequest) {
	touch := r.cmd == opTouch || r.cmd == opGat || r.cmd == opGatK
	withKey := r.cmd == opGetK || r.cmd == opGatK
	// Items change under the store lock (cas, exptime), so the reply is
	// built from a snapshot taken while holding it; the value itself is
	// shared, as stored values are never modified.
	var (
		found bool
		snap  item
	)
	c.withStore(func(st *store, now int64) {
		var it *item
		if touch {
			exptime := int64(binary.BigEndian.Uint32(r.extras))
			it = st.touch(r.key, absExptime(exptime, now), now)
		} else {
			it = st.get(r.key, now)
		}
		if it != nil {
			found, snap = true, item{flags: it.flags, cas: it.cas, value: it.value}
		}
	})
	if !found {
		switch {
		case r.quiet:
		case withKey:
			c.binHeader(r.opcode, statusKeyENOENT, 0, len(r.key), len(r.key), r.opaque, 0)
			c.out = append(c.out, r.key...)
		default:
			c.binError(r, statusKeyENOENT)
		}
		return
	}
	var flags [4]byte
	binary.BigEndian.PutUint32(flags[:], snap.flags)
	key := ""
	if withKey {
		key = r.key
	}
	var value []byte
	if r.cmd != opTouch {
		value = snap.value
	}
	// Hits are answered even for quiet gets: that is their point.
	c.binReply(r, snap.cas, flags[:], key, value)
}

func (c *conn) binArithmetic(r *binRequest) {
	delta := binary.BigEndian.Uint64(r.extras)
	initial := binary.BigEndian.Uint64(r.extras[8:])
	exptime := binary.BigEndian.Uint32(r.extras[16:])
	incr := r.cmd == opIncrement
	var (
		status   deltaStatus
		v, cas   uint64
		ok       bool
		vivified storeStatus
	)
	c.withStore(func(st *store, now int64) {
		var it *item
		status, v, it = st.addDelta(r.key, incr, delta, r.cas, 0, now)
		if status == deltaNotFound {
			// An expiration of all ones means "do not create".
			if exptime == 0xffffffff {
				st.countDeltaMiss(incr)
				return
			}
			vivified, it = st.vivifyNumber(r.key, initial, absExptime(int64(exptime), now), 0, now)
			v = initial
		}
		if it != nil {
			ok, cas = true, it.cas
		}
	})
	switch {
	case ok:
		var body [8]byte
		binary.BigEndian.PutUint64(body[:], v)
		c.binSuccess(r, cas, nil, body[:])
	case status == deltaNonNumeric:
		c.binError(r, statusDeltaBadval)
	case status == deltaCasMismatch:
		c.binError(r, statusKeyEEXISTS)
	case status == deltaNoMemory || vivified == statusNoMemory:
		c.binError(r, statusENOMEM)
	case status == deltaNotFound && exptime != 0xffffffff:
		c.binError(r, statusNotStoredB)
	default:
		c.binError(r, statusKeyENOENT)
	}
}

// binStat answers with one packet per statistic and an empty packet to
// end, as memcached does; the key selects the group.
func (c *conn) binStat(r *binRequest) {
	var lines []statLine
	switch sub := r.key; {
	case sub == "":
		lines = c.srv.generalStats()
	case strings.HasPrefix(sub, "reset"):
		c.srv.resetStats()
	case strings.HasPrefix(sub, "settings"):
		lines = c.srv.settingsStats()
	case strings.HasPrefix(sub, "detail"):
		switch rest := sub[len("detail"):]; {
		case strings.HasPrefix(rest, " dump"):
			lines = []statLine{{"detailed", "END\r\n"}}
		case strings.HasPrefix(rest, " on"), strings.HasPrefix(rest, " off"):
		default:
			c.binError(r, statusKeyENOENT)
			return
		}
	case sub == "items":
		lines = c.srv.itemsStats()
	case sub == "slabs":
		lines = c.srv.slabsStats()
	case sub == "sizes":
		lines = []statLine{{"sizes_status", "disabled"}}
	default:
		c.binError(r, statusKeyENOENT)
		return
	}
	for _, l := range lines {
		c.binHeader(r.opcode, statusOK, 0, len(l.name), len(l.name)+len(l.value), r.opaque, 0)
		c.out = append(c.out, l.name...)
		c.out = append(c.out, l.value...)
	}
	c.binHeader(r.opcode, statusOK, 0, 0, 0, r.opaque, 0)
}
