package bind

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/omcache/omcache/go/client"
	"github.com/omcache/omcache/go/internal/mctest"
)

// pyMem copies b into memory outside the Go heap, as Python's bytes are, and
// returns its address: bytesAt must not be handed Go pointers disguised as
// integers (checkptr, enabled by -race, rejects that).
func pyMem(t testing.TB, b []byte) (addr, n int64) {
	t.Helper()
	if len(b) == 0 {
		return 0, 0
	}
	m, err := unix.Mmap(-1, 0, len(b), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Munmap(m) })
	copy(m, b)
	return int64(uintptrOf(m)), int64(len(b))
}

func packKeys(keys ...string) []byte {
	out := binary.LittleEndian.AppendUint32(nil, uint32(len(keys)))
	for _, k := range keys {
		out = binary.LittleEndian.AppendUint32(out, uint32(len(k)))
	}
	for _, k := range keys {
		out = append(out, k...)
	}
	return out
}

func TestAppendKeyList(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    []string
		wantErr bool
	}{
		{"empty list", packKeys(), []string{}, false},
		{"two keys", packKeys("a", "bcd"), []string{"a", "bcd"}, false},
		{"empty key", packKeys(""), []string{""}, false},
		{"truncated header", []byte{1, 0}, nil, true},
		{"count too large", []byte{0xff, 0xff, 0xff, 0xff}, nil, true},
		{"lengths past end", append(packKeys("abc")[:8], 'a'), nil, true},
		{"trailing bytes", append(packKeys("a"), 'x'), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := appendKeyList(nil, tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d keys, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if string(got[i]) != tt.want[i] {
					t.Errorf("key %d = %q, want %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func FuzzAppendKeyList(f *testing.F) {
	f.Add(packKeys("a", "bb"))
	f.Add([]byte{})
	f.Add([]byte{2, 0, 0, 0, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := appendKeyList(nil, b)
		if err != nil {
			return
		}
		// A decodable list re-encodes to the same bytes.
		ss := make([]string, len(keys))
		for i, k := range keys {
			ss[i] = string(k)
		}
		if string(packKeys(ss...)) != string(b) {
			t.Fatalf("round trip mismatch")
		}
	})
}

func TestStatusTableMapsEverySentinel(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, StatusOK},
		{client.ErrCacheMiss, StatusMiss},
		{client.ErrKeyExists, StatusExists},
		{client.ErrNotStored, StatusNotStored},
		{client.ErrTooLarge, StatusTooLarge},
		{client.ErrInvalidArguments, StatusInvalidArgs},
		{client.ErrDeltaBadValue, StatusDeltaBadValue},
		{client.ErrMalformedKey, StatusBadKey},
		{client.ErrServerError, StatusServerError},
		{client.ErrTimeout, StatusTimeout},
		{client.ErrConnection, StatusConnection},
		{client.ErrServerDown, StatusServerDown},
		{client.ErrServerDead, StatusServerDead},
		{client.ErrProtocol, StatusProtocol},
		{client.ErrNoServers, StatusNoServers},
		{client.ErrClosed, StatusClosed},
		{errBadConfig, StatusBadConfig},
		{errors.New("something else"), StatusInternal},
	}
	for _, tt := range tests {
		if got := statusOf(tt.err); got != tt.want {
			t.Errorf("statusOf(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestErrorDetailRoundTripAndCleaning(t *testing.T) {
	r := result(errors.New("bad\x00thing \xff"))
	if r&0xff != StatusInternal {
		t.Fatalf("status %d", r&0xff)
	}
	msg := ErrorDetail(r >> 8)
	if strings.Contains(msg, "\x00") || !strings.Contains(msg, "bad\\x00thing") {
		t.Fatalf("detail %q", msg)
	}
	if got := ErrorDetail(-1); !strings.Contains(got, "no longer available") {
		t.Fatalf("unknown token gave %q", got)
	}
}

func TestPanicsBecomeStatusInternal(t *testing.T) {
	f := func() (ret int64) {
		defer recoverInt(&ret)
		var m map[string]int
		m["x"] = 1 // nil map write panics
		return 0
	}
	if r := f(); r&0xff != StatusInternal || !strings.Contains(ErrorDetail(r>>8), "panic") {
		t.Fatalf("got %d %q", r, ErrorDetail(r>>8))
	}
	g := func() (ret []byte) {
		defer recoverPacked(&ret)
		panic("boom")
	}
	if r := g(); r[0] != StatusInternal || !strings.Contains(string(r[1:]), "boom") {
		t.Fatalf("got %q", r)
	}
}

func TestBadHandlesAndConfigs(t *testing.T) {
	if r := Get(987654, 0, 0); r[0] != StatusBadHandle {
		t.Errorf("Get on bad handle: %v", r[0])
	}
	if r := Store(987654, OpSet, 0, 0, 0, 0, 0, 0, 0); r&0xff != StatusBadHandle {
		t.Errorf("Store on bad handle: %d", r&0xff)
	}
	if r := ClientClose(987654); r&0xff != StatusBadHandle {
		t.Errorf("ClientClose on bad handle: %d", r&0xff)
	}
	for _, cfg := range []string{"", "server=", "bogus", "nope=1\nserver=a:1", "server=a:0", "server=[::1", "connect_timeout_ms=-1\nserver=a:1"} {
		if r := ClientNew(cfg); r[0] != StatusBadConfig {
			t.Errorf("ClientNew(%q) status %d (%s)", cfg, r[0], r[1:])
		}
	}
}

func TestParseConfigServersAndPlacement(t *testing.T) {
	tests := []struct{ in, want string }{
		{"host", "host:11211"},
		{"host:1", "host:1"},
		{"host:1:5", "host:1"},
		{"[::1]:5", "[::1]:5"},
		{"/tmp/x.sock", "/tmp/x.sock"},
	}
	for _, tt := range tests {
		servers, _, _, err := parseConfig("server=" + tt.in)
		if err != nil || len(servers) != 1 || servers[0].Addr() != tt.want {
			t.Errorf("parseConfig(server=%q) = %v, %v; want %q", tt.in, servers, err, tt.want)
		}
	}
	for cfg, want := range map[string][2]bool{
		"server=a:1":                                 {false, false},
		"server=a:1\ntext_multiget=1":                {true, false},
		"server=a:1\ntext_multiget=0\nbinary_keys=1": {false, true},
	} {
		_, _, opts, err := parseConfig(cfg)
		if err != nil || opts.TextMultiGet != want[0] || opts.BinaryKeys != want[1] {
			t.Errorf("parseConfig(%q): text %v, binary keys %v, %v; want %v", cfg, opts.TextMultiGet, opts.BinaryKeys, err, want)
		}
	}
	for _, cfg := range []string{
		"server=a:1\ndistribution=bogus",
		"server=a:1\nhash=bogus",
		"server=a:1\nbehavior.no_such_behavior=1",
		"server=a:1\nweighted=maybe",
		"server=a:1\nserver=b:1\nweights=1",
		"server=a:1\ntext_multiget=2",
	} {
		if r := ClientNew(cfg); r[0] != StatusBadConfig {
			t.Errorf("ClientNew(%q) status %d (%s)", cfg, r[0], r[1:])
		}
	}
}

func TestServerForKeyFollowsDistribution(t *testing.T) {
	r := ClientNew("server=127.0.0.1:1\nserver=127.0.0.1:2\nserver=127.0.0.1:3\ndistribution=consistent")
	if r[0] != StatusOK {
		t.Fatalf("ClientNew: %s", r[1:])
	}
	h := int64(binary.LittleEndian.Uint64(r[1:]))
	defer ClientClose(h)
	seen := map[int64]bool{}
	for i := 0; i < 200; i++ {
		a, n := pyMem(t, []byte(fmt.Sprintf("key-%d", i)))
		idx := ServerForKey(h, a, n)
		if idx < 0 || idx > 2 {
			t.Fatalf("ServerForKey = %d", idx)
		}
		seen[idx] = true
		if i == 0 && !strings.Contains(ExplainKey(h, a, n), "point") {
			t.Errorf("ExplainKey = %q", ExplainKey(h, a, n))
		}
	}
	if len(seen) != 3 {
		t.Errorf("keys landed on %d of 3 servers", len(seen))
	}
	if ServerForKey(987654, 0, 0) != -2 {
		t.Error("bad handle not reported")
	}
}

func TestRoundTripThroughBindAgainstMemcached(t *testing.T) {
	addr := mctest.Start(t, mctest.Options{}).Addr
	r := ClientNew("server=" + addr + "\nio_timeout_ms=2000")
	if r[0] != StatusOK {
		t.Fatalf("ClientNew: %s", r[1:])
	}
	h := int64(binary.LittleEndian.Uint64(r[1:]))
	defer ClientClose(h)
	ka, kn := pyMem(t, []byte("bind-key"))
	va, vn := pyMem(t, []byte("v\x00alue"))
	if st := Store(h, OpSet, ka, kn, va, vn, 42, 0, 0); st != 0 {
		t.Fatalf("Store: %d %s", st&0xff, ErrorDetail(st>>8))
	}
	g := Get(h, ka, kn)
	if g[0] != StatusOK || binary.LittleEndian.Uint32(g[1:]) != 42 || string(g[getHeaderLen:]) != "v\x00alue" {
		t.Fatalf("Get: %q", g)
	}
	if st := Delete(h, ka, kn); st != StatusOK {
		t.Fatalf("Delete: %d", st)
	}
	if st := Delete(h, ka, kn); st != StatusMiss {
		t.Fatalf("second Delete: %d", st)
	}
	if g := Get(h, ka, kn); len(g) != 1 || g[0] != StatusMiss {
		t.Fatalf("Get after delete: %q", g)
	}
	pa, pn := pyMem(t, packKeys("bind-key", "bad key"))
	m := getMultiTaken(t, h, pa, pn, -1)
	// no hits, one error: "bad key" (index 1); the miss is left out
	errPos := binary.LittleEndian.Uint32(m[13:])
	if m[0] != StatusOK || binary.LittleEndian.Uint32(m[1:]) != 0 || binary.LittleEndian.Uint32(m[5:]) != 1 ||
		string(m[17:errPos]) != "<" || binary.LittleEndian.Uint32(m[errPos:]) != 1 || m[errPos+4] != StatusBadKey {
		t.Fatalf("GetMulti: %q", m)
	}
}

func TestTrackSocketsRecordsInodes(t *testing.T) {
	table := make([]byte, 8*4096)
	addr, n := pyMem(t, table)
	if r := TrackSockets(addr, n/8); r != 0 {
		t.Fatalf("TrackSockets: %d", r)
	}
	defer TrackSockets(0, 0)
	if r := TrackSockets(addr+1, 10); r&0xff != StatusBadConfig {
		t.Fatalf("unaligned table accepted: %d", r)
	}
	srv := mctest.Start(t, mctest.Options{})
	r := ClientNew("server=" + srv.Addr)
	h := int64(binary.LittleEndian.Uint64(r[1:]))
	ka, kn := pyMem(t, []byte("track"))
	Get(h, ka, kn)
	mem := bytesAt(addr, n)
	count := func() int {
		c := 0
		for i := 0; i+8 <= len(mem); i += 8 {
			if binary.LittleEndian.Uint64(mem[i:]) != 0 {
				c++
			}
		}
		return c
	}
	if got := count(); got != 1 {
		t.Fatalf("%d sockets recorded after one Get, want 1", got)
	}
	ClientClose(h)
	if got := count(); got != 0 {
		t.Fatalf("%d sockets recorded after Close, want 0", got)
	}
}

func TestGetIntoFitsOrStashes(t *testing.T) {
	srv := mctest.Start(t, mctest.Options{})
	r := ClientNew("server=" + srv.Addr)
	h := int64(binary.LittleEndian.Uint64(r[1:]))
	defer ClientClose(h)
	ka, kn := pyMem(t, []byte("into-key"))
	value := []byte(strings.Repeat("x", 100))
	va, vn := pyMem(t, value)
	if st := Store(h, OpSet, ka, kn, va, vn, 7, 0, 0); st != 0 {
		t.Fatalf("Store: %d", st)
	}
	bufAddr, bufCap := pyMem(t, make([]byte, 4096))
	buf := bytesAt(bufAddr, bufCap)
	n := GetInto(h, ka, kn, bufAddr, bufCap, false, 0)
	if n != int64(getHeaderLen+100) || buf[0] != StatusOK || binary.LittleEndian.Uint32(buf[1:]) != 7 || string(buf[getHeaderLen:n]) != string(value) {
		t.Fatalf("GetInto = %d, %q", n, buf[:20])
	}
	// too small a buffer: the result waits for TakeResult
	n = GetInto(h, ka, kn, bufAddr, 20, false, 0)
	if n >= 0 || PendingResults() != 1 {
		t.Fatalf("GetInto with a small buffer = %d, pending %d", n, PendingResults())
	}
	got := TakeResult(-n)
	if got[0] != StatusOK || string(got[getHeaderLen:]) != string(value) || PendingResults() != 0 {
		t.Fatalf("TakeResult = %q", got[:20])
	}
	if TakeResult(-n)[0] != StatusInternal {
		t.Fatal("a result could be taken twice")
	}
	// a buffer with room for the header only: the value waits for TakeValueInto
	n = GetInto(h, ka, kn, bufAddr, 64, false, 0)
	if n >= 0 || buf[0] != StatusOK || binary.LittleEndian.Uint64(buf[getHeaderLen:]) != 100 {
		t.Fatalf("GetInto with a header-only buffer = %d, %q", n, buf[:21])
	}
	dst := make([]byte, 100)
	da, dn := pyMem(t, dst)
	if st := TakeValueInto(-n, da, dn); st != 0 || string(bytesAt(da, dn)) != string(value) || PendingResults() != 0 {
		t.Fatalf("TakeValueInto = %d", st)
	}
	if st := TakeValueInto(-n, da, dn); st&0xff != StatusInternal {
		t.Fatal("a value could be taken twice")
	}
	ma, mn := pyMem(t, []byte("into-missing"))
	if n := GetInto(h, ma, mn, bufAddr, bufCap, false, 0); n != 1 || buf[0] != StatusMiss {
		t.Fatalf("miss: %d %d", n, buf[0])
	}
	if n := GetInto(987654, ma, mn, bufAddr, bufCap, false, 0); n < 2 || buf[0] != StatusBadHandle {
		t.Fatalf("bad handle: %d %d", n, buf[0])
	}
}

func TestAppendKeyLines(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		n       int64
		want    []string
		wantErr bool
	}{
		{"no keys", "", 0, nil, false},
		{"one empty key", "", 1, []string{""}, false},
		{"one key", "abc", 1, []string{"abc"}, false},
		{"three keys", "a\nbc\nd", 3, []string{"a", "bc", "d"}, false},
		{"empty keys kept", "\n\n", 3, []string{"", "", ""}, false},
		{"fewer keys than said", "a\nb", 3, nil, true},
		{"more keys than said", "a\nb\nc", 2, nil, true},
		{"bytes but no keys", "a", 0, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A reused destination keeps its first entries.
			prefix := [][]byte{[]byte("kept")}
			got, err := appendKeyLines(prefix, []byte(tt.in), tt.n)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if len(got) != 1+len(tt.want) || string(got[0]) != "kept" {
				t.Fatalf("got %q, want kept + %q", got, tt.want)
			}
			for i, w := range tt.want {
				if string(got[1+i]) != w || cap(got[1+i]) != len(w) {
					t.Errorf("key %d = %q (cap %d), want %q", i, got[1+i], cap(got[1+i]), w)
				}
			}
		})
	}
}

func FuzzKeyLines(f *testing.F) {
	f.Add("a\nbb", int64(2))
	f.Add("", int64(0))
	f.Add("\n", int64(1))
	f.Fuzz(func(t *testing.T, s string, n int64) {
		keys, err := appendKeyLines(nil, []byte(s), n)
		if err != nil {
			return
		}
		// A decodable list has n keys and joins back to the same bytes.
		ss := make([]string, len(keys))
		for i, k := range keys {
			ss[i] = string(k)
		}
		if int64(len(keys)) != max(n, 0) || strings.Join(ss, "\n") != s {
			t.Fatalf("%q with n=%d decoded to %q", s, n, ss)
		}
	})
}

func TestGetMultiIntoFitsOrStashes(t *testing.T) {
	srv := mctest.Start(t, mctest.Options{})
	r := ClientNew("server=" + srv.Addr)
	h := int64(binary.LittleEndian.Uint64(r[1:]))
	defer ClientClose(h)
	for i, v := range []string{"one", "", "three"} {
		ka, kn := pyMem(t, []byte(fmt.Sprintf("gmi-%d", i)))
		va, vn := pyMem(t, []byte(v))
		if st := Store(h, OpSet, ka, kn, va, vn, int64(10+i), 0, 0); st != 0 {
			t.Fatalf("Store: %d", st)
		}
	}
	bufAddr, bufCap := pyMem(t, make([]byte, 4096))
	buf := bytesAt(bufAddr, bufCap)
	// The same call through both key encodings, twice each (the second
	// reuses a scratch), must give GetMulti's packed result.
	keys := []string{"gmi-0", "gmi-missing", "gmi-1", "bad key", "gmi-2"}
	pa, pn := pyMem(t, packKeys(keys...))
	want := getMultiTaken(t, h, pa, pn, -1)
	// 3 hits, 1 error, the struct format, indexes, flags, cas, values, then
	// the error of "bad key" (index 3).
	format := "<3s0s5s"
	errPos := binary.LittleEndian.Uint32(want[13:])
	if want[0] != StatusOK || binary.LittleEndian.Uint32(want[1:]) != 3 || binary.LittleEndian.Uint32(want[5:]) != 1 ||
		binary.LittleEndian.Uint32(want[9:]) != uint32(len(format)) || string(want[17:17+len(format)]) != format {
		t.Fatalf("GetMulti head: %q", want)
	}
	cols := want[17+len(format):]
	for i, w := range []uint32{0, 2, 4} {
		if binary.LittleEndian.Uint32(cols[4*i:]) != w || binary.LittleEndian.Uint32(cols[12+4*i:]) != uint32(10+i) {
			t.Fatalf("hit %d: index/flags columns %v", i, cols[:24])
		}
	}
	if string(cols[48:errPos-uint32(17+len(format))]) != "onethree" || binary.LittleEndian.Uint32(want[errPos:]) != 3 ||
		want[errPos+4] != StatusBadKey {
		t.Fatalf("GetMulti values/errors: %q", want)
	}
	la, ln := pyMem(t, []byte(strings.Join(keys, "\n")))
	for round := 0; round < 2; round++ {
		if n := GetMultiInto(h, pa, pn, -1, bufAddr, bufCap, false, 0); string(buf[:max(n, 0)]) != string(want) {
			t.Fatalf("round %d, packed keys: %d %q, want %q", round, n, buf[:max(n, 0)], want)
		}
		if n := GetMultiInto(h, la, ln, int64(len(keys)), bufAddr, bufCap, false, 0); string(buf[:max(n, 0)]) != string(want) {
			t.Fatalf("round %d, joined keys: %d %q, want %q", round, n, buf[:max(n, 0)], want)
		}
	}
	// Too small a buffer: the same result waits for TakeResult.
	n := GetMultiInto(h, la, ln, int64(len(keys)), bufAddr, 20, false, 0)
	if n >= 0 {
		t.Fatalf("GetMultiInto with a 20-byte buffer = %d", n)
	}
	if got := TakeResult(-n); string(got) != string(want) || PendingResults() != 0 {
		t.Fatalf("TakeResult = %q, want %q", got, want)
	}
	// A key count that does not match the joined list is refused.
	if n := GetMultiInto(h, la, ln, 2, bufAddr, bufCap, false, 0); n < 1 || buf[0] != StatusInternal {
		t.Fatalf("wrong key count: %d %q", n, buf[:max(n, 0)])
	}
	if n := GetMultiInto(h, la, ln, int64(len(keys)), bufAddr, bufCap, false, -1); n < 1 || buf[0] != StatusInvalidArgs {
		t.Fatalf("bad expiration: %d %q", n, buf[:max(n, 0)])
	}
	if n := GetMultiInto(987654, la, ln, int64(len(keys)), bufAddr, bufCap, false, 0); n < 1 || buf[0] != StatusBadHandle {
		t.Fatalf("bad handle: %d %q", n, buf[:max(n, 0)])
	}
}

// getMultiTaken runs GetMultiInto with no buffer, so that the result always
// goes through TakeResult, and returns it.
func getMultiTaken(t *testing.T, h, keysAddr, keysLen, nkeys int64) []byte {
	t.Helper()
	n := GetMultiInto(h, keysAddr, keysLen, nkeys, 0, 0, false, 0)
	if n >= 0 {
		t.Fatalf("GetMultiInto with no buffer = %d", n)
	}
	return TakeResult(-n)
}

func TestSetMultiAndDeleteMulti(t *testing.T) {
	srv := mctest.Start(t, mctest.Options{})
	r := ClientNew("server=" + srv.Addr)
	h := int64(binary.LittleEndian.Uint64(r[1:]))
	defer ClientClose(h)
	u32s := func(vs ...uint32) []byte {
		var out []byte
		for _, v := range vs {
			out = binary.LittleEndian.AppendUint32(out, v)
		}
		return out
	}
	get := func(key string) (string, uint32, bool) {
		ka, kn := pyMem(t, []byte(key))
		g := Get(h, ka, kn)
		if g[0] != StatusOK {
			return "", 0, false
		}
		return string(g[getHeaderLen:]), binary.LittleEndian.Uint32(g[1:]), true
	}
	ka, kn := pyMem(t, []byte("sm-a\nsm-b\nsm-c"))
	va, vn := pyMem(t, []byte("xyyzzz"))
	la, ln := pyMem(t, u32s(1, 2, 3))
	// Joined keys, one flags value for all.
	if st := SetMulti(h, ka, kn, 3, va, vn, la, ln, 0, 0, 9, 0); st != StatusOK {
		t.Fatalf("SetMulti: %d %q", st, TakeResult(-st))
	}
	for key, want := range map[string]string{"sm-a": "x", "sm-b": "yy", "sm-c": "zzz"} {
		if v, f, ok := get(key); !ok || v != want || f != 9 {
			t.Fatalf("%s = %q, %d, %v", key, v, f, ok)
		}
	}
	// Packed keys with a bad one, flags per item: the bad key is reported,
	// the others are stored.
	pa, pn := pyMem(t, packKeys("sm-a", "bad key", "sm-c"))
	fa, fn := pyMem(t, u32s(1, 2, 3))
	st := SetMulti(h, pa, pn, -1, va, vn, la, ln, fa, fn, 0, 0)
	if st >= 0 {
		t.Fatalf("SetMulti with a bad key = %d", st)
	}
	res := TakeResult(-st)
	if res[0] != StatusOK || binary.LittleEndian.Uint32(res[1:]) != 1 || res[5] != StatusBadKey {
		t.Fatalf("SetMulti errors: %q", res)
	}
	if v, f, _ := get("sm-c"); v != "zzz" || f != 3 {
		t.Fatalf("sm-c = %q, %d", v, f)
	}
	// Lengths that do not match the keys or the values are refused.
	sa, sn := pyMem(t, u32s(1, 2))
	k2a, k2n := pyMem(t, []byte("sm-a\nsm-b"))
	for name, st := range map[string]int64{
		"short lengths":  SetMulti(h, ka, kn, 3, va, vn, sa, sn, 0, 0, 0, 0),
		"short flags":    SetMulti(h, ka, kn, 3, va, vn, la, ln, sa, sn, 0, 0),
		"values too few": SetMulti(h, ka, kn, 3, va, vn-1, la, ln, 0, 0, 0, 0),
		"values left":    SetMulti(h, k2a, k2n, 2, va, vn, sa, sn, 0, 0, 0, 0),
		"flags too big":  SetMulti(h, ka, kn, 3, va, vn, la, ln, 0, 0, 1<<32, 0),
		"bad handle":     SetMulti(987654, ka, kn, 3, va, vn, la, ln, 0, 0, 0, 0),
	} {
		if st >= 0 {
			t.Fatalf("%s: SetMulti = %d", name, st)
		}
		if res := TakeResult(-st); res[0] == StatusOK {
			t.Fatalf("%s: result %q", name, res)
		}
	}
	// Delete: all present, then a miss is reported as StatusMiss.
	da, dn := pyMem(t, []byte("sm-a\nsm-b"))
	if st := DeleteMulti(h, da, dn, 2); st != StatusOK {
		t.Fatalf("DeleteMulti: %d %q", st, TakeResult(-st))
	}
	st = DeleteMulti(h, da, dn, 2)
	if st >= 0 {
		t.Fatalf("DeleteMulti of deleted keys = %d", st)
	}
	if res := TakeResult(-st); res[0] != StatusOK || res[5] != StatusMiss || PendingResults() != 0 {
		t.Fatalf("DeleteMulti misses: %q", res)
	}
	if _, _, ok := get("sm-c"); !ok {
		t.Fatal("sm-c was deleted")
	}
}
