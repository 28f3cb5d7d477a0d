package memcachedtest

import (
	"bytes"
	"strconv"
	"strings"
)

const (
	maxKeyLength = 250
	// A line that grows past this without a newline closes the connection
	// unless it is a multi-get, as in memcached.
	maxCommandLine = 2048
	maxGetLine     = 16 << 20
	maxInt32       = 1<<31 - 1
	maxVerbosity   = 2
	// memcached's tokenizer stops at 24 tokens; meta commands refuse
	// lines with 20 or more (counting its terminal token).
	maxMetaTokens = 20
)

const (
	msgBadFormat    = "CLIENT_ERROR bad command line format"
	msgBadExptime   = "CLIENT_ERROR invalid exptime argument"
	msgBadChunk     = "CLIENT_ERROR bad data chunk"
	msgTooLarge     = "SERVER_ERROR object too large for cache"
	msgNoMemory     = "SERVER_ERROR out of memory storing object"
	msgNonNumeric   = "CLIENT_ERROR cannot increment or decrement non-numeric value"
	msgBadDelta     = "CLIENT_ERROR invalid numeric delta argument"
	msgDeleteUsage  = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]"
	msgTooManyConns = "ERROR Too many open connections"
)

// readLine returns the next command line without its LF and, as memcached
// does, without a CR before the LF unless the CR is the whole line. Like
// memcached, it hangs up once more than maxCommandLine bytes arrived
// without a newline, unless the line is a multi-get.
func (c *conn) readLine() (string, error) {
	var acc []byte
	for {
		n := c.r.Buffered()
		if n == 0 {
			if _, err := c.r.Peek(1); err != nil {
				return "", errDropConn
			}
			n = c.r.Buffered()
		}
		buf, _ := c.r.Peek(n)
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			line := append(acc, buf[:i]...)
			c.r.Discard(i + 1)
			if len(line) > 1 && line[len(line)-1] == '\r' {
				line = line[:len(line)-1]
			}
			return string(line), nil
		}
		total := len(acc) + n
		if total > maxGetLine {
			return "", errCloseConn
		}
		if total > maxCommandLine {
			head := append(acc[:len(acc):len(acc)], buf[:min(n, 128)]...)
			if !looksLikeGet(head) {
				return "", errCloseConn
			}
		}
		if n == readBufferSize {
			acc = append(acc, buf...)
			c.r.Discard(n)
			continue
		}
		if _, err := c.r.Peek(n + 1); err != nil {
			return "", errDropConn
		}
	}
}

func looksLikeGet(b []byte) bool {
	i := 0
	for i < len(b) && i <= 100 && b[i] == ' ' {
		i++
	}
	s := string(b[i:min(len(b), i+5)])
	return strings.HasPrefix(s, "get ") || strings.HasPrefix(s, "gets ")
}

// tokenize splits on spaces only, as memcached does (a tab is part of a
// token). memcached works on C strings, so a NUL ends the line.
func tokenize(line string) []string {
	if i := strings.IndexByte(line, 0); i >= 0 {
		line = line[:i]
	}
	var tokens []string
	for _, t := range strings.Split(line, " ") {
		if t != "" {
			tokens = append(tokens, t)
		}
	}
	return tokens
}

// outString is memcached's out_string: a command's noreply swallows the
// next line it would write.
func (c *conn) outString(s string) {
	if c.noreply {
		c.noreply = false
		return
	}
	c.out = append(c.out, s...)
	c.out = append(c.out, '\r', '\n')
}

// outError always answers, even under noreply.
func (c *conn) outError(s string) {
	c.noreply = false
	c.outString(s)
}

func (c *conn) setNoreplyMaybe(tokens []string) {
	if len(tokens) > 0 && tokens[len(tokens)-1] == "noreply" {
		c.noreply = true
	}
}

func (c *conn) handleText() error {
	line, err := c.readLine()
	if err != nil {
		return err
	}
	tokens := tokenize(line)
	if c.stalled() {
		return c.skipTextValue(tokens)
	}
	c.noreply = false
	return c.dispatchText(tokens)
}

// skipTextValue consumes the data block of a storage command read while
// the server is stalled, so the connection stays in sync afterwards.
func (c *conn) skipTextValue(tokens []string) error {
	if len(tokens) < 3 {
		return nil
	}
	var lenTok string
	switch tokens[0] {
	case "set", "add", "replace", "append", "prepend", "cas":
		if len(tokens) < 5 {
			return nil
		}
		lenTok = tokens[4]
	case "ms":
		lenTok = tokens[2]
	default:
		return nil
	}
	if n, ok := parseStrtol(lenTok); ok && n >= 0 {
		return c.discard(int64(n) + 2)
	}
	return nil
}

// dispatchText follows memcached's process_command_ascii. nt counts the
// tokens plus memcached's terminal token, so the bounds read as upstream's.
func (c *conn) dispatchText(tokens []string) error {
	nt := len(tokens) + 1
	if nt < 2 || len(tokens[0]) < 2 {
		c.outString("ERROR")
		return nil
	}
	cmd := tokens[0]
	if cmd[0] == 'm' && len(cmd) == 2 {
		return c.dispatchMeta(tokens)
	}
	switch cmd {
	case "get", "bget", "gets", "gat", "gats":
		if nt < 3 {
			c.outString("ERROR")
			return nil
		}
		return c.textGet(tokens, cmd == "gets" || cmd == "gats", cmd == "gat" || cmd == "gats")
	case "set", "add", "replace", "append", "prepend":
		if nt != 6 && nt != 7 {
			c.outString("ERROR")
			return nil
		}
		mode := map[string]storeMode{"set": modeSet, "add": modeAdd, "replace": modeReplace,
			"append": modeAppend, "prepend": modePrepend}[cmd]
		return c.textUpdate(tokens, mode)
	case "cas":
		if nt != 7 && nt != 8 {
			c.outString("ERROR")
			return nil
		}
		return c.textUpdate(tokens, modeCAS)
	case "incr", "decr":
		if nt != 4 && nt != 5 {
			c.outString("ERROR")
			return nil
		}
		c.textArithmetic(tokens, cmd == "incr")
	case "delete":
		if nt < 3 || nt > 5 {
			c.outString("ERROR")
			return nil
		}
		c.textDelete(tokens)
	case "touch":
		if nt != 4 && nt != 5 {
			c.outString("ERROR")
			return nil
		}
		c.textTouch(tokens)
	case "stats":
		c.textStats(tokens)
	case "flush_all":
		if nt < 2 || nt > 4 {
			c.outString("ERROR")
			return nil
		}
		c.textFlushAll(tokens)
	case "version":
		c.outString("VERSION " + c.srv.cfg.Version)
	case "quit":
		return errCloseConn
	case "verbosity":
		if nt != 3 && nt != 4 {
			c.outString("ERROR")
			return nil
		}
		c.textVerbosity(tokens)
	case "cache_memlimit":
		if nt != 3 && nt != 4 {
			c.outString("ERROR")
			return nil
		}
		c.textMemlimit(tokens)
	case "shutdown":
		c.outString("ERROR: shutdown not enabled")
	default:
		// memcached hangs up on what looks like an HTTP request.
		if strings.HasPrefix(tokens[len(tokens)-1], "HTTP/") {
			return errCloseConn
		}
		c.outString("ERROR")
	}
	return nil
}

func (c *conn) textGet(tokens []string, withCas, touch bool) error {
	keys := tokens[1:]
	var exptime int32
	if touch {
		var ok bool
		if exptime, ok = parseStrtol(tokens[1]); !ok {
			c.outString(msgBadExptime)
			return nil
		}
		keys = tokens[2:]
	}
	st := c.srv.store
	// memcached answers a get with a too-long key with an error alone, after
	// fetching (and counting) the keys before it: check them all before any
	// value is queued, as the reply is streamed.
	for i, key := range keys {
		if len(key) > maxKeyLength {
			st.mu.Lock()
			now := c.srv.now()
			st.prepare(now)
			for _, k := range keys[:i] {
				if touch {
					st.touch(k, absExptime(int64(exptime), now), now)
				} else {
					st.get(k, now)
				}
			}
			st.mu.Unlock()
			c.outString(msgBadFormat)
			return nil
		}
	}
	for _, key := range keys {
		// One key at a time under the lock: the reply refers to the stored
		// value (no copy) and is written between keys once it is large,
		// which blocks while the client does not read (backpressure).
		st.mu.Lock()
		now := c.srv.now()
		st.prepare(now)
		var it *item
		if touch {
			it = st.touch(key, absExptime(int64(exptime), now), now)
		} else {
			it = st.get(key, now)
		}
		if it != nil {
			c.out = append(c.out, "VALUE "...)
			c.out = append(c.out, it.key...)
			c.out = append(c.out, ' ')
			c.out = strconv.AppendUint(c.out, uint64(it.flags), 10)
			c.out = append(c.out, ' ')
			c.out = strconv.AppendInt(c.out, int64(len(it.value)), 10)
			if withCas {
				c.out = append(c.out, ' ')
				c.out = strconv.AppendUint(c.out, it.cas, 10)
			}
			c.out = append(c.out, '\r', '\n')
			c.appendValue(it.value)
			c.out = append(c.out, '\r', '\n')
		}
		st.mu.Unlock()
		if err := c.flushIfFull(); err != nil {
			return err
		}
	}
	c.out = append(c.out, "END\r\n"...)
	return nil
}

func (c *conn) textUpdate(tokens []string, mode storeMode) error {
	c.setNoreplyMaybe(tokens)
	key := tokens[1]
	if len(key) > maxKeyLength {
		c.outString(msgBadFormat)
		return nil
	}
	flags, ok1 := parseStrtoul(tokens[2])
	exptime, ok2 := parseStrtol(tokens[3])
	vlen, ok3 := parseStrtol(tokens[4])
	if !ok1 || !ok2 || !ok3 {
		c.outString(msgBadFormat)
		return nil
	}
	var cas uint64
	if mode == modeCAS {
		var ok bool
		if cas, ok = parseStrtoull(tokens[5]); !ok {
			c.outString(msgBadFormat)
			return nil
		}
	}
	if vlen < 0 || vlen > maxInt32-2 {
		c.outString(msgBadFormat)
		return nil
	}
	st := c.srv.store
	if !st.sizeOK(len(key), flags, int(vlen)) {
		st.mu.Lock()
		st.st.storeTooLarge++
		if mode == modeSet {
			// memcached drops the old value rather than leave stale data
			// behind a set that could not be stored.
			if old, _ := st.find(key, c.srv.now()); old != nil {
				st.unlink(old)
			}
		}
		st.mu.Unlock()
		c.outString(msgTooLarge)
		return c.discard(int64(vlen) + 2)
	}
	data, err := c.readFull(int(vlen) + 2)
	if err != nil {
		return err
	}
	if data[vlen] != '\r' || data[vlen+1] != '\n' {
		st.countBadChunk()
		c.outString(msgBadChunk)
		return nil
	}
	st.mu.Lock()
	now := c.srv.now()
	st.prepare(now)
	status, _ := st.storeItem(&storeRequest{
		key: key, value: data[:vlen:vlen], flags: flags,
		exptime: absExptime(int64(exptime), now), mode: mode, cas: cas,
	}, now)
	st.mu.Unlock()
	c.outString(textStoreReply(status))
	return nil
}

func textStoreReply(s storeStatus) string {
	switch s {
	case statusStored:
		return "STORED"
	case statusExists:
		return "EXISTS"
	case statusNotFound:
		return "NOT_FOUND"
	case statusNoMemory:
		return msgNoMemory
	default:
		return "NOT_STORED"
	}
}

func (c *conn) textArithmetic(tokens []string, incr bool) {
	c.setNoreplyMaybe(tokens)
	key := tokens[1]
	if len(key) > maxKeyLength {
		c.outString(msgBadFormat)
		return
	}
	delta, ok := parseStrtoull(tokens[2])
	if !ok {
		c.outString(msgBadDelta)
		return
	}
	st := c.srv.store
	st.mu.Lock()
	now := c.srv.now()
	st.prepare(now)
	status, v, _ := st.addDelta(key, incr, delta, 0, 0, now)
	if status == deltaNotFound {
		st.countDeltaMiss(incr)
	}
	st.mu.Unlock()
	switch status {
	case deltaOK:
		c.outString(formatUint(v))
	case deltaNonNumeric:
		c.outString(msgNonNumeric)
	case deltaNoMemory:
		c.outString("SERVER_ERROR out of memory")
	default:
		c.outString("NOT_FOUND")
	}
}

func (c *conn) textDelete(tokens []string) {
	nt := len(tokens) + 1
	if nt > 3 {
		// "delete key 0" is accepted for old clients that sent a hold time.
		holdIsZero := tokens[2] == "0"
		c.setNoreplyMaybe(tokens)
		valid := (nt == 4 && (holdIsZero || c.noreply)) || (nt == 5 && holdIsZero && c.noreply)
		if !valid {
			c.outString(msgDeleteUsage)
			return
		}
	}
	key := tokens[1]
	if len(key) > maxKeyLength {
		c.outString(msgBadFormat)
		return
	}
	st := c.srv.store
	st.mu.Lock()
	now := c.srv.now()
	st.prepare(now)
	status := st.remove(key, 0, now)
	st.mu.Unlock()
	if status == statusStored {
		c.outString("DELETED")
	} else {
		c.outString("NOT_FOUND")
	}
}

func (c *conn) textTouch(tokens []string) {
	c.setNoreplyMaybe(tokens)
	key := tokens[1]
	if len(key) > maxKeyLength {
		c.outString(msgBadFormat)
		return
	}
	exptime, ok := parseStrtol(tokens[2])
	if !ok {
		c.outString(msgBadExptime)
		return
	}
	st := c.srv.store
	st.mu.Lock()
	now := c.srv.now()
	st.prepare(now)
	it := st.touch(key, absExptime(int64(exptime), now), now)
	st.mu.Unlock()
	if it != nil {
		c.outString("TOUCHED")
	} else {
		c.outString("NOT_FOUND")
	}
}

func (c *conn) textFlushAll(tokens []string) {
	c.setNoreplyMaybe(tokens)
	st := c.srv.store
	// memcached counts the command before it looks at the arguments.
	st.mu.Lock()
	st.st.cmdFlush++
	st.mu.Unlock()
	nt := len(tokens) + 1
	var delay int32
	want := 2
	if c.noreply {
		want = 3
	}
	if nt != want {
		var ok bool
		if delay, ok = parseStrtol(tokens[1]); !ok {
			c.outString(msgBadExptime)
			return
		}
	}
	st.mu.Lock()
	now := c.srv.now()
	st.prepare(now)
	st.flush(int64(delay), now)
	st.mu.Unlock()
	c.outString("OK")
}

func (c *conn) textVerbosity(tokens []string) {
	c.setNoreplyMaybe(tokens)
	level, ok := parseStrtoul(tokens[1])
	if !ok {
		c.outString(msgBadFormat)
		return
	}
	st := c.srv.store
	st.mu.Lock()
	st.verbosity = int(min(level, maxVerbosity))
	st.mu.Unlock()
	c.outString("OK")
}

func (c *conn) textMemlimit(tokens []string) {
	c.setNoreplyMaybe(tokens)
	mb, ok := parseStrtoul(tokens[1])
	switch {
	case !ok:
		c.outString("ERROR")
	case mb < 8:
		c.outString("MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m")
	case mb > 1000000000:
		c.outString("MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes")
	default:
		st := c.srv.store
		st.mu.Lock()
		// Shrinking evicts lazily, at the next store, like memcached.
		st.maxBytes = int64(mb) << 20
		st.mu.Unlock()
		c.outString("OK")
	}
}

func (c *conn) textStats(tokens []string) {
	var lines []statLine
	sub := ""
	if len(tokens) > 1 {
		sub = tokens[1]
	}
	switch sub {
	case "":
		lines = c.srv.generalStats()
	case "reset":
		c.srv.resetStats()
		c.outString("RESET")
		return
	case "detail":
		arg := ""
		if len(tokens) > 2 {
			arg = tokens[2]
		}
		switch arg {
		case "on", "off":
			c.outString("OK")
		case "dump":
			// Per-prefix detail is not recorded: the dump is empty.
			c.outString("END")
		default:
			c.outString("CLIENT_ERROR usage: stats detail on|off|dump")
		}
		return
	case "settings":
		lines = c.srv.settingsStats()
	case "items":
		lines = c.srv.itemsStats()
	case "slabs":
		lines = c.srv.slabsStats()
	case "sizes":
		lines = []statLine{{"sizes_status", "disabled"}}
	case "conns":
		lines = c.srv.connsStats(c)
	case "cachedump":
		c.textCachedump(tokens)
		return
	default:
		c.outString("ERROR")
		return
	}
	for _, l := range lines {
		c.out = append(c.out, "STAT "...)
		c.out = append(c.out, l.name...)
		c.out = append(c.out, ' ')
		c.out = append(c.out, l.value...)
		c.out = append(c.out, '\r', '\n')
	}
	c.out = append(c.out, "END\r\n"...)
}

// textCachedump lists keys of one slab class: "stats cachedump <class>
// <limit>" (limit 0 for all), which some tools use to enumerate keys.
func (c *conn) textCachedump(tokens []string) {
	if len(tokens) < 4 {
		c.outString("CLIENT_ERROR bad command line")
		return
	}
	class, ok1 := parseStrtoul(tokens[2])
	limit, ok2 := parseStrtoul(tokens[3])
	if !ok1 || !ok2 {
		c.outString(msgBadFormat)
		return
	}
	if class >= maxSlabClasses {
		c.outString("CLIENT_ERROR Illegal slab id")
		return
	}
	st := c.srv.store
	st.mu.Lock()
	now := c.srv.now()
	st.prepare(now)
	n := uint32(0)
	for it := st.head; it != nil && (limit == 0 || n < limit); it = it.next {
		if it.class != int(class) || it.expired(now) {
			continue
		}
		exp := it.exptime
		if exp == expiredStamp {
			exp = 0
		}
		c.out = append(c.out, "ITEM "...)
		c.out = append(c.out, it.key...)
		c.out = append(c.out, " ["...)
		c.out = strconv.AppendInt(c.out, int64(len(it.value)), 10)
		c.out = append(c.out, " b; "...)
		c.out = strconv.AppendInt(c.out, exp, 10)
		c.out = append(c.out, " s]\r\n"...)
		n++
	}
	st.mu.Unlock()
	c.out = append(c.out, "END\r\n"...)
}
