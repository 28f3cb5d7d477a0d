package memcachedtest

// memcached parses every number with strtol/strtoull wrappers (util.c's
// safe_strto*). Clients see their quirks: leading blanks are skipped, a
// number may be followed by white space, "-0" is zero, flags are truncated
// to 32 bits and exptimes to a signed 32-bit value. These functions
// reproduce them on Go strings (a token, or item data plus its CRLF).

func isCSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// scanNumber does strtoull/strtoll's scan: returns the sign, the magnitude,
// whether it overflowed 64 bits, and where the number ends (0 when there
// were no digits, like strtoull leaving endptr at the start).
func scanNumber(s string) (neg bool, mag uint64, overflow bool, end int) {
	i := 0
	for i < len(s) && isCSpace(s[i]) {
		i++
	}
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	start := i
	for i < len(s) && isDigit(s[i]) {
		d := uint64(s[i] - '0')
		if mag > (^uint64(0)-d)/10 {
			overflow = true
		}
		mag = mag*10 + d
		i++
	}
	if i == start {
		return false, 0, false, 0
	}
	return neg, mag, overflow, i
}

// acceptEnd is the safe_strto* tail check: the number must be followed by
// white space or the end of the string.
func acceptEnd(s string, end int) bool {
	return end > 0 && (end == len(s) || isCSpace(s[end]))
}

func containsMinus(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '-' {
			return true
		}
	}
	return false
}

// parseStrtoull is safe_strtoull.
func parseStrtoull(s string) (uint64, bool) {
	neg, mag, overflow, end := scanNumber(s)
	if overflow || !acceptEnd(s, end) {
		return 0, false
	}
	v := mag
	if neg {
		v = -mag
	}
	if int64(v) < 0 && containsMinus(s) {
		return 0, false
	}
	return v, true
}

// parseStrtoul is safe_strtoul on an LP64 system: a 64-bit parse truncated
// to 32 bits.
func parseStrtoul(s string) (uint32, bool) {
	v, ok := parseStrtoull(s)
	return uint32(v), ok
}

// parseStrtol is safe_strtol on an LP64 system: a signed 64-bit parse
// truncated to 32 bits.
func parseStrtol(s string) (int32, bool) {
	neg, mag, overflow, end := scanNumber(s)
	if overflow || !acceptEnd(s, end) {
		return 0, false
	}
	if neg {
		if mag > 1<<63 {
			return 0, false
		}
		return int32(-int64(mag)), true
	}
	if mag > 1<<63-1 {
		return 0, false
	}
	return int32(int64(mag)), true
}
