package memcachedtest

import (
	"encoding/base64"
	"strconv"
)

// The meta commands (mg, ms, md, ma, mn, me) follow memcached 1.6.18's
// proto_text.c, plus three later additions from the protocol documentation
// that 1.6.18 rejects as invalid flags: E (explicit new cas) on every
// command, x (drop the value, keep the item) on md, and s (stored size) and
// N (vivify) on ms in append/prepend mode.

const maxOpaqueLength = 32

const (
	msgOpaqueTooLong  = "CLIENT_ERROR opaque token too long"
	msgBadToken       = "CLIENT_ERROR bad token in command line format"
	msgInvalidOrDup   = "CLIENT_ERROR invalid or duplicate flag"
	msgFlagsTooLong   = "CLIENT_ERROR options flags too long"
	msgMGFlagsTooLong = "CLIENT_ERROR options flags are too long"
)

// metaFlags is a parsed meta flag set (memcached's struct _meta_flags).
type metaFlags struct {
	noUpdate, vivify, value, setStale, noReply bool
	hasCas, newTTL, keyBinary, removeValue     bool
	mode                                       byte
	// exptime (T), vivifyTTL (N) and recacheTTL (R) are as sent; resolve
	// them with absExptime at the moment they are applied.
	exptime, vivifyTTL, recacheTTL int64
	clientFlags                    uint32
	reqCas, newCas, delta, initial uint64
}

// metaPreparse checks and decodes the flags from tokens[start:]. It may
// base64-decode *key (flag b). Duplicate and unknown flags stop parsing at
// once; other bad tokens are reported after all flags were seen, with the
// last message winning, as upstream.
func metaPreparse(tokens []string, start int, key *string) (metaFlags, string, bool) {
	of := metaFlags{delta: 1}
	errstr := msgBadFormat
	bad := false
	var seen [127]bool
	for _, tok := range tokens[start:] {
		o := tok[0]
		if o >= 127 || seen[o] {
			return of, "CLIENT_ERROR duplicate flag", false
		}
		seen[o] = true
		arg := tok[1:]
		exptimeArg := func(dst *int64) {
			if v, ok := parseStrtol(arg); ok {
				*dst = int64(v)
			} else {
				errstr, bad = msgBadToken, true
			}
		}
		switch o {
		case 'b':
			dec, err := base64.StdEncoding.DecodeString(*key)
			if err != nil || len(dec) == 0 {
				errstr, bad = "CLIENT_ERROR error decoding key", true
			} else {
				*key = string(dec)
			}
			of.keyBinary = true
		case 'N':
			of.vivify = true
			exptimeArg(&of.vivifyTTL)
		case 'T':
			exptimeArg(&of.exptime)
			of.newTTL = true
		case 'R':
			exptimeArg(&of.recacheTTL)
		case 'O', 'P', 'L', 'k', 's', 't', 'c', 'f', 'l', 'h':
		case 'v':
			of.value = true
		case 'u':
			of.noUpdate = true
		case 'q':
			of.noReply = true
		case 'F':
			if v, ok := parseStrtoul(arg); ok {
				of.clientFlags = v
			} else {
				bad = true
			}
		case 'C':
			if v, ok := parseStrtoull(arg); ok {
				of.reqCas, of.hasCas = v, true
			} else {
				errstr, bad = msgBadToken, true
			}
		case 'E':
			if v, ok := parseStrtoull(arg); ok {
				of.newCas = v
			} else {
				errstr, bad = msgBadToken, true
			}
		case 'M':
			if len(tok) != 2 {
				errstr, bad = "CLIENT_ERROR incorrect length for M token", true
			} else {
				of.mode = tok[1]
			}
		case 'J':
			if v, ok := parseStrtoull(arg); ok {
				of.initial = v
			} else {
				errstr, bad = "CLIENT_ERROR invalid numeric initial value", true
			}
		case 'D':
			if v, ok := parseStrtoull(arg); ok {
				of.delta = v
			} else {
				errstr, bad = "CLIENT_ERROR invalid numeric delta value", true
			}
		case 'I':
			of.setStale = true
		case 'x':
			of.removeValue = true
		default:
			return of, "CLIENT_ERROR invalid flag", false
		}
	}
	return of, errstr, !bad
}

// opaqueOK reports whether every O token is short enough to echo.
func opaqueOK(tokens []string) bool {
	for _, tok := range tokens {
		if tok[0] == 'O' && len(tok) > maxOpaqueLength {
			return false
		}
	}
	return true
}

// appendMetaKey writes " k<key>", base64-encoded and followed by " b" for
// binary keys.
func appendMetaKey(out []byte, key string, binary bool) []byte {
	out = append(out, " k"...)
	if !binary {
		return append(out, key...)
	}
	out = base64.StdEncoding.AppendEncode(out, []byte(key))
	return append(out, " b"...)
}

// appendEchoFlags writes the O and k flags every meta reply carries back.
func appendEchoFlags(out []byte, tokens []string, key string, binary bool) []byte {
	for _, tok := range tokens {
		switch tok[0] {
		case 'O':
			out = append(out, ' ')
			out = append(out, tok...)
		case 'k':
			out = appendMetaKey(out, key, binary)
		}
	}
	return out
}

func (c *conn) dispatchMeta(tokens []string) error {
	switch tokens[0][1] {
	case 'g':
		c.metaGet(tokens)
	case 's':
		return c.metaSet(tokens)
	case 'd':
		c.metaDelete(tokens)
	case 'a':
		c.metaArithmetic(tokens)
	case 'n':
		c.outString("MN")
		// mn exists to end a pipeline: answer now.
		return c.flush()
	case 'e':
		c.metaDebug(tokens)
	default:
		c.outString("ERROR")
	}
	return nil
}

func (c *conn) metaGet(tokens []string) {
	nt := len(tokens) + 1
	if nt < 3 {
		c.outString("ERROR")
		return
	}
	if len(tokens[1]) > maxKeyLength {
		c.outError(msgBadFormat)
		return
	}
	if nt > maxMetaTokens {
		c.outError(msgMGFlagsTooLong)
		return
	}
	flags := tokens[2:]
	st := c.srv.store
	st.mu.Lock()
	defer st.mu.Unlock()
	now := c.srv.now()
	st.prepare(now)
	key := tokens[1]
	of, errstr, ok := metaPreparse(tokens, 2, &key)
	if !ok {
		c.outError(errstr)
		return
	}
	c.noreply = of.noReply

	// memcached fetches with an immediate LRU bump unless a flag needs the
	// item's state from before this fetch (h, l) or changes it (N, R, T);
	// then the bump waits until the reply is built, and is skipped if that
	// fails (an over-long opaque).
	locked := false
	for _, tok := range flags {
		switch tok[0] {
		case 'N', 'R', 'T', 'h', 'l':
			locked = true
		}
	}
	it, expired := st.find(key, now)
	if it != nil && !locked && !of.noUpdate {
		st.bump(it, now)
	}
	created := false
	if it == nil && of.vivify {
		// The stub's TTL comes from N below, when the flags are walked.
		// Like memcached, it does not remember a base64 key.
		nit := st.newItem(key, nil, 0, 0)
		if st.link(nit, nil, of.newCas, now) {
			it, created = nit, true
		}
	}
	if it == nil {
		st.st.cmdGet++
		st.st.getMisses++
		if expired {
			st.st.getExpired++
		}
		if !opaqueOK(flags) {
			c.outError(msgOpaqueTooLong)
			return
		}
		line := appendEchoFlags([]byte("EN"), flags, key, of.keyBinary)
		c.outString(string(line))
		return
	}

	if !opaqueOK(flags) {
		// Too late for a clean refusal: memcached has already applied
		// any T or N before it looks at the opaque.
		for _, tok := range flags {
			switch {
			case tok[0] == 'O' && len(tok) > maxOpaqueLength:
				c.outError(msgOpaqueTooLong)
				return
			case tok[0] == 'T':
				it.exptime = absExptime(of.exptime, now)
			case tok[0] == 'N' && created:
				it.exptime = absExptime(of.vivifyTTL, now)
			}
		}
	}
	out := c.out
	if of.value {
		out = append(out, "VA "...)
		out = strconv.AppendInt(out, int64(len(it.value)), 10)
	} else {
		out = append(out, "HD"...)
	}
	won, ttlSet := false, false
	// Flags are answered and applied in request order, so "t T30" reports
	// the old TTL and "T30 t" the new one, as memcached does.
	for _, tok := range flags {
		switch tok[0] {
		case 'T':
			ttlSet = true
			it.exptime = absExptime(of.exptime, now)
		case 'N':
			if created {
				it.exptime = absExptime(of.vivifyTTL, now)
				won = true
			}
		case 'R':
			if !it.tokenSent && !created && it.exptime != 0 && it.exptime < absExptime(of.recacheTTL, now) {
				won = true
			}
		case 's':
			out = append(out, " s"...)
			out = strconv.AppendInt(out, int64(len(it.value)), 10)
		case 't':
			out = append(out, " t"...)
			out = strconv.AppendInt(out, it.ttl(now), 10)
		case 'c':
			out = append(out, " c"...)
			out = strconv.AppendUint(out, it.cas, 10)
		case 'f':
			out = append(out, " f"...)
			out = strconv.AppendUint(out, uint64(it.flags), 10)
		case 'l':
			out = append(out, " l"...)
			out = strconv.AppendInt(out, now-it.atime, 10)
		case 'h':
			if it.fetched {
				out = append(out, " h1"...)
			} else {
				out = append(out, " h0"...)
			}
		case 'O':
			out = append(out, ' ')
			out = append(out, tok...)
		case 'k':
			out = appendMetaKey(out, it.key, it.keyBinary)
		}
	}
	// Z before W: a client is never told it won and lost at once.
	if it.tokenSent {
		out = append(out, " Z"...)
	}
	if it.stale {
		out = append(out, " X"...)
		if !it.tokenSent {
			won = true
		}
	}
	if won {
		out = append(out, " W"...)
		it.tokenSent = true
	}
	out = append(out, '\r', '\n')
	c.out = out
	if of.value {
		c.appendValue(it.value) // shared, not copied under the lock
		c.out = append(c.out, '\r', '\n')
	}
	if locked && !of.noUpdate {
		st.bump(it, now)
	}
	if ttlSet {
		st.st.cmdTouch++
		st.st.touchHits++
		st.classes[it.class].touchHits++
	} else {
		st.st.cmdGet++
		st.st.getHits++
		st.classes[it.class].getHits++
	}
}

func (c *conn) metaSet(tokens []string) error {
	nt := len(tokens) + 1
	if nt < 3 {
		c.outString("ERROR")
		return nil
	}
	if len(tokens[1]) > maxKeyLength || nt == 3 {
		c.outError(msgBadFormat)
		return nil
	}
	if nt > maxMetaTokens {
		c.outError(msgFlagsTooLong)
		return nil
	}
	vlen, ok := parseStrtol(tokens[2])
	if !ok || vlen < 0 || vlen > maxInt32-2 {
		c.outError(msgBadFormat)
		return nil
	}
	// From here on a failed command still swallows its data block.
	fail := func(msg string) error {
		c.outError(msg)
		return c.discard(int64(vlen) + 2)
	}
	flags := tokens[3:]
	key := tokens[1]
	st := c.srv.store
	of, errstr, ok := metaPreparse(tokens, 3, &key)
	if !ok {
		return fail(errstr)
	}
	var mode storeMode
	switch of.mode {
	case 0, 'S':
		mode = modeSet
	case 'E':
		mode = modeAdd
	case 'A':
		mode = modeAppend
	case 'P':
		mode = modePrepend
	case 'R':
		mode = modeReplace
	default:
		return fail("CLIENT_ERROR invalid mode for ms M token")
	}
	if !opaqueOK(flags) {
		return fail(msgOpaqueTooLong)
	}
	// A cas turns set and replace into cas; append/prepend check it
	// themselves; add ignores it.
	if of.hasCas && (mode == modeSet || mode == modeReplace) {
		mode = modeCAS
	}
	if !st.sizeOK(len(key), of.clientFlags, int(vlen)) {
		st.mu.Lock()
		st.st.storeTooLarge++
		if old, _ := st.find(key, c.srv.now()); old != nil {
			st.unlink(old)
		}
		st.mu.Unlock()
		return fail(msgTooLarge)
	}
	data, err := c.readFull(int(vlen) + 2)
	if err != nil {
		return err
	}
	if data[vlen] != '\r' || data[vlen+1] != '\n' {
		st.countBadChunk()
		c.outError(msgBadChunk)
		return nil
	}
	c.noreply = of.noReply

	st.mu.Lock()
	now := c.srv.now()
	st.prepare(now)
	status, it := st.storeItem(&storeRequest{
		key: key, value: data[:vlen:vlen], flags: of.clientFlags, exptime: absExptime(of.exptime, now),
		mode: mode, cas: of.reqCas, setStale: of.setStale && mode == modeCAS,
		vivify: of.vivify, vivifyExptime: absExptime(of.vivifyTTL, now), newCas: of.newCas,
		keyBinary: of.keyBinary,
	}, now)
	var cas uint64
	size := 0
	if it != nil {
		cas, size = it.cas, len(it.value)
	}
	st.mu.Unlock()

	var out []byte
	switch status {
	case statusStored:
		out = []byte("HD")
	case statusExists:
		out = []byte("EX")
	case statusNotFound:
		out = []byte("NF")
	case statusNoMemory:
		c.outError(msgNoMemory)
		return nil
	default:
		out = []byte("NS")
	}
	for _, tok := range flags {
		switch tok[0] {
		case 'O':
			out = append(out, ' ')
			out = append(out, tok...)
		case 'k':
			out = appendMetaKey(out, key, of.keyBinary)
		case 'c':
			out = append(out, " c"...)
			out = strconv.AppendUint(out, cas, 10)
		case 's':
			if status == statusStored {
				out = append(out, " s"...)
				out = strconv.AppendInt(out, int64(size), 10)
			}
		}
	}
	if status != statusStored {
		// q only hides the nominal HD.
		c.noreply = false
	}
	c.outString(string(out))
	return nil
}

func (c *conn) metaDelete(tokens []string) {
	nt := len(tokens) + 1
	if nt < 3 {
		c.outString("ERROR")
		return
	}
	if len(tokens[1]) > maxKeyLength {
		c.outString(msgBadFormat)
		return
	}
	if nt > maxMetaTokens {
		c.outString(msgFlagsTooLong)
		return
	}
	flags := tokens[2:]
	st := c.srv.store
	st.mu.Lock()
	defer st.mu.Unlock()
	now := c.srv.now()
	st.prepare(now)
	key := tokens[1]
	of, _, ok := metaPreparse(tokens, 2, &key)
	if !ok {
		c.outError(msgInvalidOrDup)
		return
	}
	if !opaqueOK(flags) {
		c.outError(msgOpaqueTooLong)
		return
	}
	c.noreply = of.noReply

	var code string
	it, _ := st.find(key, now)
	switch {
	case it == nil:
		st.st.deleteMisses++
		code = "NF"
	case of.hasCas && it.cas != of.reqCas:
		st.st.deleteMisses++
		code = "EX"
	default:
		code = "HD"
		if of.removeValue {
			exptime := int64(0)
			if of.newTTL {
				exptime = absExptime(of.exptime, now)
			}
			tomb := st.newItem(it.key, nil, of.clientFlags, exptime)
			tomb.keyBinary = it.keyBinary
			if st.link(tomb, it, of.newCas, now) {
				it = tomb
			} else {
				code = "NS"
			}
		}
		switch {
		case code != "HD":
		case of.setStale:
			// Mark stale instead of deleting: the next mg gets X and W.
			if of.newTTL {
				it.exptime = absExptime(of.exptime, now)
			}
			it.stale = true
			it.tokenSent = false
			if of.newCas != 0 {
				it.cas = of.newCas
			} else {
				it.cas = st.nextCas()
			}
		default:
			st.st.deleteHits++
			st.classes[it.class].deleteHits++
			if !of.removeValue {
				st.unlink(it)
			}
		}
	}
	if code != "HD" {
		c.noreply = false
	}
	c.outString(string(appendEchoFlags([]byte(code), flags, key, of.keyBinary)))
}

func (c *conn) metaArithmetic(tokens []string) {
	nt := len(tokens) + 1
	if nt < 3 {
		c.outString("ERROR")
		return
	}
	if len(tokens[1]) > maxKeyLength {
		c.outString(msgBadFormat)
		return
	}
	if nt > maxMetaTokens {
		c.outString(msgFlagsTooLong)
		return
	}
	flags := tokens[2:]
	st := c.srv.store
	st.mu.Lock()
	defer st.mu.Unlock()
	now := c.srv.now()
	st.prepare(now)
	key := tokens[1]
	of, _, ok := metaPreparse(tokens, 2, &key)
	if !ok {
		c.outError(msgInvalidOrDup)
		return
	}
	var incr bool
	switch of.mode {
	case 0, 'I', '+':
		incr = true
	case 'D', '-':
		incr = false
	default:
		c.outError("CLIENT_ERROR invalid mode for ma M token")
		return
	}
	if !opaqueOK(flags) {
		c.outError(msgOpaqueTooLong)
		return
	}
	c.noreply = of.noReply

	status, v, it := st.addDelta(key, incr, of.delta, of.reqCas, of.newCas, now)
	created := false
	code := ""
	switch status {
	case deltaNonNumeric:
		c.outError(msgNonNumeric)
		return
	case deltaNoMemory:
		c.outError("SERVER_ERROR out of memory")
		return
	case deltaCasMismatch:
		code = "EX"
	case deltaNotFound:
		if !of.vivify {
			st.countDeltaMiss(incr)
			code = "NF"
			break
		}
		// Created with no TTL; N sets it when the flags are walked.
		switch s, nit := st.vivifyNumber(key, of.initial, 0, of.newCas, now); s {
		case statusStored:
			it, v, created = nit, of.initial, true
		case statusNoMemory:
			c.outError("SERVER_ERROR Out of memory allocating new item")
			return
		default:
			code = "NS"
		}
	}
	if it == nil {
		c.noreply = false
		c.outString(string(appendEchoFlags([]byte(code), flags, key, of.keyBinary)))
		return
	}
	digits := formatUint(v)
	var out []byte
	if of.value {
		out = append(out, "VA "...)
		out = strconv.AppendInt(out, int64(len(digits)), 10)
	} else {
		out = append(out, "HD"...)
	}
	for _, tok := range flags {
		switch tok[0] {
		case 'c':
			out = append(out, " c"...)
			out = strconv.AppendUint(out, it.cas, 10)
		case 't':
			out = append(out, " t"...)
			out = strconv.AppendInt(out, it.ttl(now), 10)
		case 'T':
			it.exptime = absExptime(of.exptime, now)
		case 'N':
			if created {
				it.exptime = absExptime(of.vivifyTTL, now)
			}
		case 'O':
			out = append(out, ' ')
			out = append(out, tok...)
		case 'k':
			out = appendMetaKey(out, key, of.keyBinary)
		}
	}
	if of.value {
		out = append(out, '\r', '\n')
		out = append(out, digits...)
	}
	if created {
		// memcached only hides the reply of a delta that hit.
		c.noreply = false
	}
	c.outString(string(out))
}

// metaDebug is "me": a human-readable dump of an item's metadata.
func (c *conn) metaDebug(tokens []string) {
	nt := len(tokens) + 1
	if nt < 3 || len(tokens[1]) > maxKeyLength {
		c.outString(msgBadFormat)
		return
	}
	key := tokens[1]
	if nt >= 4 && tokens[2] == "b" {
		dec, err := base64.StdEncoding.DecodeString(key)
		if err != nil || len(dec) == 0 {
			c.outString(msgBadFormat)
			return
		}
		key = string(dec)
	}
	st := c.srv.store
	st.mu.Lock()
	defer st.mu.Unlock()
	now := c.srv.now()
	st.prepare(now)
	st.st.cmdMeta++
	it, _ := st.find(key, now)
	if it == nil {
		c.outString("EN")
		return
	}
	out := []byte("ME ")
	if it.keyBinary {
		out = base64.StdEncoding.AppendEncode(out, []byte(it.key))
	} else {
		out = append(out, it.key...)
	}
	out = append(out, " exp="...)
	out = strconv.AppendInt(out, it.ttl(now), 10)
	out = append(out, " la="...)
	out = strconv.AppendInt(out, now-it.atime, 10)
	out = append(out, " cas="...)
	out = strconv.AppendUint(out, it.cas, 10)
	if it.fetched {
		out = append(out, " fetch=yes"...)
	} else {
		out = append(out, " fetch=no"...)
	}
	out = append(out, " cls="...)
	out = strconv.AppendInt(out, int64(it.class), 10)
	out = append(out, " size="...)
	out = strconv.AppendInt(out, it.size, 10)
	c.outString(string(out))
}
