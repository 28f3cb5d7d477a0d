package memcachedtest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// The differential tests send the same bytes to a real memcached and to the
// embedded server and require byte-identical answers. Both servers see one
// identical sequence of commands, so even cas values line up. The scripts
// pin memcached 1.6.18 (Debian bookworm) behaviour, quirks included: the
// space-padded decr, exptime and flags truncation, noreply swallowing
// errors, and so on.

type conformanceScript struct {
	name   string
	binary bool
	text   string   // text and meta scripts
	bin    []binReq // binary scripts
	raw    []byte   // appended after bin, for malformed packets
}

func (cs conformanceScript) payload() []byte {
	if !cs.binary {
		return []byte(cs.text + "quit\r\n")
	}
	var b []byte
	for _, q := range cs.bin {
		b = append(b, q.bytes()...)
	}
	b = append(b, cs.raw...)
	return append(b, binReq{opcode: opQuit, opaque: 0xfeedface}.bytes()...)
}

// converse sends the whole script at once and reads until the server hangs
// up (every script ends with quit).
func converse(t *testing.T, network, addr string, payload []byte) []byte {
	t.Helper()
	c, err := net.DialTimeout(network, addr, ioTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(ioTimeout))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(payload)
		werr <- err
	}()
	out, err := io.ReadAll(c)
	if err != nil && !isReset(err) {
		t.Fatalf("read from %s: %v (got %q)", addr, err, out)
	}
	<-werr // a server that hung up early makes the write fail; fine
	return out
}

func describe(b []byte, binary bool) string {
	if !binary {
		return strings.ReplaceAll(string(b), "\r\n", "\\r\\n\n")
	}
	var sb strings.Builder
	r := bytes.NewReader(b)
	for r.Len() > 0 {
		p, err := readBinResp(r)
		if err != nil {
			fmt.Fprintf(&sb, "undecodable rest (%v)\n", err)
			break
		}
		fmt.Fprintln(&sb, p)
	}
	return sb.String()
}

func firstDiffLine(a, b string) int {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return i + 1
		}
	}
	return min(len(al), len(bl)) + 1
}

func queryVersion(t *testing.T, addr string) string {
	out := converse(t, "tcp", addr, []byte("version\r\nquit\r\n"))
	v, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "VERSION ")
	if !ok {
		t.Fatalf("version answer %q", out)
	}
	return v
}

// countersCompared are the "stats" fields whose values must match
// memcached's after the same scripts ran on both. curr_items and bytes are
// left out: memcached keeps flushed items counted until its LRU crawler
// gets to them (TestConformanceItemBytes checks them without flushes).
var countersCompared = []string{
	"total_items", "cmd_get", "cmd_set", "cmd_flush", "cmd_touch",
	"get_hits", "get_misses", "get_expired", "delete_hits", "delete_misses",
	"incr_hits", "incr_misses", "decr_hits", "decr_misses", "cas_hits", "cas_misses",
	"cas_badval", "touch_hits", "touch_misses", "store_too_large", "evictions",
}

func statsMap(t *testing.T, addr string) map[string]string {
	out := converse(t, "tcp", addr, []byte("stats\r\nquit\r\n"))
	m := map[string]string{}
	for _, l := range strings.Split(string(out), "\r\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "STAT" {
			m[f[1]] = f[2]
		}
	}
	return m
}

// referenceArgs run the reference memcached without its LRU maintainer and
// crawler threads. Those threads work on items while a script runs, at times
// the scheduler picks, and changed the counters compared afterwards:
//
//   - they reap expired items in the background, after which a get of such
//     an item is a plain miss instead of counting in get_expired;
//   - with the segmented LRU they drive, an item's second fetch while it sits
//     in COLD queues an asynchronous bump that holds a reference until the
//     maintainer gets to it; an incr or decr in that window finds the item
//     shared, so it links an unpadded copy (one more total_items) instead of
//     rewriting the number in place.
//
// Under load that failed about one run in eight ("stat total_items:
// memcached 35, memcachedtest 34", now and then get_expired). The embedded
// server has no background threads: its counters are memcached's
// per-command accounting, which is what memcached keeps with these threads
// off. No script evicts, so the answers do not depend on the LRU flavour.
var referenceArgs = []string{"-o", "no_lru_maintainer,no_lru_crawler"}

func runConformance(t *testing.T, scripts []conformanceScript) {
	realAddr := startMemcached(t, referenceArgs...)
	version := queryVersion(t, realAddr)
	srv := startServer(t, Config{Version: version})
	defer func() {
		if t.Failed() {
			return
		}
		want, got := statsMap(t, realAddr), statsMap(t, srv.Addr())
		for _, name := range countersCompared {
			if want[name] != got[name] {
				t.Errorf("stat %s: memcached %q, memcachedtest %q", name, want[name], got[name])
			}
		}
	}()
	for _, cs := range scripts {
		t.Run(cs.name, func(t *testing.T) {
			want := converse(t, "tcp", realAddr, cs.payload())
			got := converse(t, "tcp", srv.Addr(), cs.payload())
			if !bytes.Equal(got, want) {
				w, g := describe(want, cs.binary), describe(got, cs.binary)
				t.Errorf("memcached %s and memcachedtest differ from line %d\n--- memcached:\n%s\n--- memcachedtest:\n%s",
					version, firstDiffLine(w, g), w, g)
			}
		})
	}
}

func TestConformanceText(t *testing.T) {
	long := strings.Repeat("k", 251)
	runConformance(t, []conformanceScript{
		// Counters are compared at the end, so the reset goes first.
		{name: "stats reset", text: "stats reset\r\nstats reset noreply\r\n"},
		{name: "storage", text: "flush_all\r\n" +
			"set a 0 0 1\r\n1\r\nset b 4294967295 0 3\r\nabc\r\nset c 4294967296 0 1\r\nx\r\n" +
			"get a b c d\r\ngets a b\r\n" +
			"add a 0 0 1\r\nz\r\nadd n 5 0 2\r\nnn\r\nreplace zz 0 0 1\r\nz\r\nreplace a 7 0 2\r\naa\r\n" +
			"append a 9 0 3\r\n+++\r\nprepend a 9 0 3\r\n---\r\nappend nope 0 0 1\r\nx\r\nprepend nope 0 0 1\r\nx\r\n" +
			"gets a\r\ncas a 0 0 1 999\r\nQ\r\ncas a 0 0 1 0\r\nQ\r\ncas nope 0 0 1 1\r\nQ\r\ngets a\r\n" +
			"set e 0 0 0\r\n\r\nget e\r\n" +
			"set neg 0 -1 1\r\nx\r\nset rel 0 100 1\r\nx\r\nset past 0 2592001 1\r\nx\r\nset far 0 4000000000 1\r\nx\r\nget neg rel past far\r\n" +
			// Exptimes are truncated to 32 bits. Each wrapped value here has
			// an outcome that cannot depend on when the one-second clocks of
			// the two servers tick (a wrap to 1 would expire or not depending
			// on a tick between the set and the get): -1 expires at once,
			// 2592001 is an absolute time long past, 100 stays live; read
			// without truncation all three would be live.
			"set wrap 0 4294967295 1\r\nx\r\nset wrap2 0 4297559297 1\r\nx\r\nset wrap3 0 4294967396 1\r\nx\r\n" +
			"get wrap wrap2 wrap3\r\n" +
			"delete a\r\ndelete a\r\ndelete b 0\r\ndelete b 1\r\ndelete n noreply\r\ndelete c 0 noreply\r\ndelete x y z\r\nget n c\r\n" +
			"set nr 0 0 1 noreply\r\nx\r\nget nr\r\nadd nr 0 0 1 noreply\r\ny\r\nget nr\r\n" +
			"touch nr 100\r\ntouch nope 100\r\ntouch nr abc\r\ntouch nr 10 noreply\r\ntouch nr\r\n" +
			"gat 100 nr nope\r\ngats 0 nr\r\ngat abc nr\r\ngat 100\r\nbget nr\r\n" +
			"get nr nr nr\r\n"},
		// The noreply incr and decr of n both show in the get that follows
		// them: no delta is applied to an item after its second fetch (see
		// referenceArgs for why that matters to memcached's total_items).
		{name: "arithmetic", text: "flush_all\r\n" +
			"set n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 100\r\nget n\r\nincr n 18446744073709551615\r\nincr n 1\r\ngets n\r\n" +
			"set big 0 0 20\r\n18446744073709551615\r\nincr big 1\r\nget big\r\n" +
			"set d 0 0 3\r\n100\r\ndecr d 1\r\ngets d\r\ndecr d 95\r\ngets d\r\nincr d 1000\r\ngets d\r\n" +
			"incr nokey 1\r\ndecr nokey 1\r\n" +
			"set s 0 0 3\r\nabc\r\nincr s 1\r\nset s2 0 0 3\r\n 12\r\nincr s2 1\r\nget s2\r\n" +
			"set s3 0 0 4\r\n12 a\r\nincr s3 1\r\nget s3\r\nset s4 0 0 2\r\n-5\r\nincr s4 1\r\n" +
			"set s5 0 0 2\r\n-0\r\nincr s5 1\r\nset s6 0 0 21\r\n184467440737095516150\r\nincr s6 1\r\n" +
			"set s7 0 0 3\r\n+12\r\nincr s7 1\r\nset s8 0 0 3\r\n12x\r\nincr s8 1\r\n" +
			"incr n -1\r\nincr n abc\r\nincr n 5 noreply\r\ndecr n 2 noreply\r\nget n\r\nincr n\r\nincr n 1 2 3\r\n" +
			"set e 0 0 0\r\n\r\nincr e 1\r\n" +
			"incr s 1 noreply\r\nincr nokey 1 noreply\r\n"},
		{name: "errors", text: "\r\nx\r\nfoo bar\r\nGET a\r\nget\r\nset a 0 0\r\n" +
			"set a 0 0 1 noreply extra\r\nx\r\n" +
			"set a abc 0 1\r\nx\r\nset a 0 abc 1\r\nx\r\nset a 0 0 abc\r\nset a 0 0 -1\r\n" +
			"set a 0 0 1\r\nxyz\r\nset a 0 0 1 noreply\r\nxyz\r\n" +
			"set " + long + " 0 0 1\r\nx\r\n" +
			"delete " + long + "\r\nincr " + long + " 1\r\ntouch " + long + " 1\r\n" +
			"verbosity\r\nverbosity 1\r\nverbosity abc\r\nverbosity 1 noreply\r\nverbosity 5\r\n" +
			"flush_all abc\r\nflush_all 0\r\nflush_all noreply\r\nflush_all 0 noreply\r\nflush_all -1\r\nflush_all 1 2 3\r\n" +
			"stats foo\r\nstats detail\r\nstats detail on\r\nstats detail off\r\nstats detail dump\r\n" +
			"cache_memlimit 1\r\ncache_memlimit abc\r\ncache_memlimit 2000000000\r\ncache_memlimit 64\r\n" +
			"shutdown\r\na\tb\r\nget a\x00b\r\nset lf 0 0 1\nx\r\nget lf\n" +
			"set tab 0\t0 0 1\r\nx\r\n"},
		// A get with a key over 250 bytes makes memcached drop the answers
		// still queued for earlier commands of the same read (it releases
		// all pending responses), so each comes first in its own script.
		{name: "get long key", text: "get " + long + "\r\n"},
		{name: "multi-get long key", text: "get a " + long + " b\r\n"},
		{name: "gat long key", text: "gat 1 " + long + "\r\n"},
		{name: "too large", text: "flush_all\r\n" +
			"set k 0 0 1048516\r\n" + strings.Repeat("v", 1048516) + "\r\n" +
			"set k 0 0 1048517\r\n" + strings.Repeat("v", 1048517) + "\r\nget k\r\n" +
			"set k 0 0 1\r\nv\r\nset k 0 0 1048517 noreply\r\n" + strings.Repeat("v", 1048517) + "\r\nget k\r\n" +
			"set f 1 0 1048513\r\n" + strings.Repeat("v", 1048513) + "\r\n" +
			"set k 0 0 1\r\nv\r\nadd k 0 0 2000000\r\n" + strings.Repeat("v", 2000000) + "\r\nget k\r\n" +
			"set k 0 0 1048000\r\n" + strings.Repeat("v", 1048000) + "\r\nappend k 0 0 1000\r\n" + strings.Repeat("w", 1000) + "\r\n" +
			"gets k f\r\n"},
		// memcached's delayed flush is due one second early (oldest_live
		// is realtime(delay) - 1): "flush_all 1" drops the items at once
		// and, being due, takes a cas id (seen in the later gets). Nothing
		// here depends on when either clock ticks.
		{name: "delayed flush due at once", text: "flush_all\r\n" +
			"set a 0 0 1\r\nx\r\nflush_all 1\r\nget a\r\nflush_all 0\r\n" +
			"set c 0 0 1\r\nz\r\ngets c\r\n" +
			"set d 0 0 1\r\nz\r\nflush_all 1 noreply\r\nget d\r\nflush_all 0\r\n"},
	})
}

// TestConformanceDelayedFlushWithinASecond: "flush_all 2" empties both
// servers at their next clock tick, which is less than a second away. The
// bound is real time on purpose (memcached's own clock is what is
// compared): 1 s until the tick plus 0.5 s of room for a loaded machine;
// a server due a second later (the embedded server's old behaviour) needs
// 1 to 2 s and fails this at least half of the time, the
// "delayed flush due at once" script every time.
func TestConformanceDelayedFlushWithinASecond(t *testing.T) {
	realAddr := startMemcached(t, referenceArgs...)
	srv := startServer(t, Config{})
	for _, addr := range []string{realAddr, srv.Addr()} {
		converse(t, "tcp", addr, []byte("set k 0 0 1\r\nx\r\nflush_all 2\r\nquit\r\n"))
		start := time.Now()
		for strings.Contains(string(converse(t, "tcp", addr, []byte("get k\r\nquit\r\n"))), "VALUE") {
			if time.Since(start) > 1500*time.Millisecond {
				t.Fatalf("%s: k still there %v after flush_all 2", addr, time.Since(start))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestConformanceMeta(t *testing.T) {
	long := strings.Repeat("k", 251)
	opaque33 := "O" + strings.Repeat("o", 33)
	runConformance(t, []conformanceScript{
		{name: "mg ms", text: "flush_all\r\n" +
			"mg nope\r\nmg nope v k O1 q\r\nmg nope v k O2\r\nmn\r\n" +
			"ms m1 3\r\nabc\r\nms m1 3 c k O99 F5 T0\r\nabc\r\nms m1 3 q\r\nabc\r\n" +
			"mg m1\r\nmg m1 v\r\nmg m1 s v f k O5 c h l t\r\nmg m1 u h\r\nmg m1 q v\r\n" +
			"ms m2 S3\r\nabc\r\nms m2 3 MX\r\nabc\r\nms m2 3 MEE\r\nabc\r\n" +
			"ms m2 3 ME\r\nabc\r\nms m2 3 ME\r\nxyz\r\nms m2 3 MR\r\nxyz\r\nms m3 3 MR\r\nxyz\r\n" +
			"ms m2 1 MA\r\n+\r\nms m2 1 MP\r\n-\r\nmg m2 v\r\nms m3 1 MA\r\n+\r\nms m3 1 MP q\r\n+\r\n" +
			"ms m2 1 C1 MA\r\nx\r\nms m2 1 C1\r\nx\r\nms m3 1 C1\r\nx\r\nms m2 1 I\r\nx\r\n" +
			"ms m2 1 q q\r\nx\r\nms m2 1 zz\r\nx\r\nms m2 1 " + opaque33 + "\r\nx\r\n" +
			"ms m2 1 Tabc\r\nx\r\nms m2 1 Fabc\r\nx\r\nms m2 1 Cabc\r\nx\r\n" +
			"ms m2 1\r\nxyz\r\nms m2 -1\r\nms m2\r\nms\r\nmg\r\nmz a\r\nm\r\n" +
			"ms " + long + " 1\r\nx\r\nmg " + long + " v\r\n" +
			"mg m2 v v\r\nmg m2 zz\r\nmg m2 " + opaque33 + "\r\nmg m2 Tx\r\nmg m2 Nx\r\nmg m2 Rx\r\n" +
			"mg m2 a b c d e f g h i j k l m n o p q r s t\r\n" +
			"mg m2 k s v f c h l t u O1 P2 L3 q\r\n" +
			"mg m1 T100\r\nmg m1 v T0\r\n"},
		{name: "md ma me", text: "flush_all\r\n" +
			"md\r\nma\r\nms m1 1\r\nx\r\nms m2 1\r\nx\r\n" +
			"md m2\r\nmd m2\r\nmd m2 q\r\nmd m1 q\r\nmd m1 k O1\r\n" +
			"ms mc 1\r\nx\r\nmd mc C1 k\r\nmd mc zz\r\nmd mc q q\r\n" +
			"ma mn\r\nma mn q\r\nma mn N0 J10\r\nma mn v\r\nma mn v MD D5\r\nma mn v M-\r\n" +
			"ma mn v M+ D18446744073709551615\r\nma mn v MI D2\r\nma mn MX\r\nma mn Dabc\r\nma mn Jabc\r\n" +
			"ma mn q\r\nma mn v q\r\nma mn k O5 c\r\nma mc\r\nma mn C1 v\r\nma new N0 J5 q v\r\nma new2 N0 q\r\n" +
			"ma " + long + "\r\nmd " + long + "\r\n" +
			"me mn\r\nme nope\r\nme\r\nme " + long + "\r\n"},
		{name: "stale and win", text: "flush_all\r\n" +
			"ms mc 1 T0\r\nx\r\nmd mc I T30\r\nmg mc\r\nmg mc\r\nmg mc v c\r\n" +
			"ms mc 1 C1 I\r\ny\r\nmg mc v\r\nms mc 1\r\nz\r\nmg mc v\r\n" +
			"mg viv N30 s v\r\nmg viv N30 s\r\nmg viv s v c\r\nms viv 2\r\nok\r\nmg viv v\r\n" +
			"ms r 1 T100\r\nx\r\nmg r R200 v\r\nmg r R200\r\nmg r R50\r\n"},
		// What omcache's leases (GetLease, ReleaseLease, Invalidate) rely
		// on: the full lease get, the placeholder seen by plain and text
		// gets, a delete of the placeholder ending the lease, CAS-checked
		// deletes and invalidations, a second md I re-arming the win, R
		// on an item that never expires, and on a placeholder.
		{name: "leases", text: "flush_all\r\n" +
			"mg L v f c t l h s N30 R5 O1\r\nmg L v f c t l h s N30 R5 O2\r\nmg L v f c\r\nget L\r\n" +
			"mg L v f c t N30 R40 O3\r\nmd L C1 O4\r\nmg L v t N30 O5\r\nmd L O6\r\nmg L v f c t N30 O7\r\n" +
			"ms L 3 F5 T100 O8\r\nabc\r\nmg L v f t N30 R5 O9\r\n" +
			"md L I T30 O10\r\nmg L v f t N30 O11\r\nmg L v f t N30 O12\r\nmg L v f\r\nmd L I T20 C1 O13\r\n" +
			"md L I T20 O14\r\nmg L v f t N30 O15\r\nmg L v f t N30 O16\r\nmd L I O17\r\nmg L v t\r\n" +
			"ms L 3 T100\r\nnew\r\nmg L v t N30 R5\r\nmg L v t N30 R200\r\nmg L v t N30 R200\r\n" +
			"md nope I T30 O18\r\nmd nope I O19 q\r\nmn\r\n" +
			"ms forever 1 T0\r\nf\r\nmg forever v t N30 R200\r\n" +
			"mg q1 v k N30 O20 q\r\nmg q1 v k N30 O21 q\r\nmn\r\n"},
		{name: "base64 keys", text: "flush_all\r\n" +
			"ms Zm9v 3 b k\r\nbar\r\nmg Zm9v b v k\r\nget foo\r\nmg Zm9v= b\r\nmg !!!! b v\r\n" +
			"me Zm9v b\r\nme foo\r\nmd Zm9v b k q\r\nget foo\r\nma Zm9v b N0 J3 v k\r\nmg Zm9v b k v\r\n" +
			"set bar 0 0 1\r\nx\r\nmg YmFy b k v\r\n"},
	})
}

func TestConformanceBinary(t *testing.T) {
	k := func(op byte, key string) binReq { return binReq{opcode: op, key: key, opaque: uint32(op) + 100} }
	set := func(op byte, key, value string, flags, exptime uint32, cas uint64) binReq {
		return binReq{opcode: op, key: key, value: []byte(value), extras: setExtras(flags, exptime), cas: cas, opaque: 7}
	}
	delta := func(op byte, key string, d, initial uint64, exptime uint32) binReq {
		return binReq{opcode: op, key: key, extras: deltaExtras(d, initial, exptime), opaque: 9}
	}
	runConformance(t, []conformanceScript{
		{name: "stats errors", binary: true, bin: []binReq{
			{opcode: opStat, key: "nosuchgroup"}, {opcode: opStat, key: "detail"}, {opcode: opStat, key: "detail on"},
			{opcode: opStat, key: "reset"}, {opcode: opNoop},
		}},
		{name: "storage", binary: true, bin: []binReq{
			{opcode: opFlush}, {opcode: opNoop, opaque: 1}, {opcode: opVersion},
			k(opGet, "a"), k(opGetK, "a"), k(opGetQ, "a"), k(opGetKQ, "a"),
			set(opSet, "a", "va", 3, 0, 0), k(opGet, "a"), k(opGetK, "a"), k(opGetQ, "a"), k(opGetKQ, "a"),
			set(opAdd, "a", "x", 0, 0, 0), set(opAddQ, "a", "x", 0, 0, 0), set(opAdd, "b", "vb", 0, 0, 0),
			set(opReplace, "z", "x", 0, 0, 0), set(opReplaceQ, "z", "x", 0, 0, 0), set(opReplace, "b", "vb2", 1, 0, 0),
			{opcode: opAppend, key: "a", value: []byte("++")}, {opcode: opPrepend, key: "a", value: []byte("--")},
			{opcode: opAppendQ, key: "a", value: []byte("+")}, {opcode: opAppend, key: "z", value: []byte("+")},
			k(opGet, "a"), set(opSet, "a", "x", 0, 0, 999), set(opSet, "z", "x", 0, 0, 5), set(opSetQ, "q", "quiet", 0, 0, 0),
			set(opSet, "c", "x", 0, 0, 0), set(opSet, "c", "y", 0, 0, 0), k(opGet, "c"),
			{opcode: opAppend, key: "c", value: []byte("+"), cas: 1},
			{opcode: opDelete, key: "c", cas: 1}, k(opDelete, "c"), k(opDelete, "c"), k(opDeleteQ, "c"), k(opDeleteQ, "q"),
			set(opSet, "neg", "x", 0, 0xffffffff, 0), k(opGet, "neg"), set(opSet, "past", "x", 0, 2592001, 0), k(opGet, "past"),
			{opcode: opTouch, key: "b", extras: u32(100)}, {opcode: opTouch, key: "z", extras: u32(100)},
			{opcode: opGat, key: "b", extras: u32(0)}, {opcode: opGatQ, key: "z", extras: u32(0)},
			{opcode: opGatK, key: "b", extras: u32(0)}, {opcode: opGatKQ, key: "b", extras: u32(0)},
			{opcode: opGatK, key: "z", extras: u32(0)},
			{opcode: opFlushQ}, k(opGet, "b"), {opcode: opFlush, extras: u32(0)},
			// Unknown opcodes carry no body here: memcached swallows the body
			// length again after reading extras and key, losing sync.
			{opcode: 0x1b}, {opcode: 0x20}, {opcode: 0x55},
			{opcode: opNoop, opaque: 2},
		}},
		{name: "arithmetic", binary: true, bin: []binReq{
			{opcode: opFlush},
			delta(opIncrement, "n", 1, 10, 0xffffffff), delta(opIncrement, "n", 1, 10, 0), delta(opIncrement, "n", 5, 10, 0),
			delta(opDecrement, "n", 100, 0, 0), delta(opIncrementQ, "n", 7, 0, 0), k(opGet, "n"),
			delta(opDecrement, "m", 1, 42, 0), delta(opDecrementQ, "m2", 1, 42, 0), k(opGet, "m2"),
			delta(opIncrementQ, "nope", 1, 0, 0xffffffff), delta(opDecrementQ, "nope", 1, 0, 0xffffffff),
			delta(opIncrement, "n", 18446744073709551615, 0, 0),
			set(opSet, "s", "abc", 0, 0, 0), delta(opIncrement, "s", 1, 0, 0),
			set(opSet, "e", "", 0, 0, 0), delta(opIncrement, "e", 1, 0, 0),
			{opcode: opIncrement, key: "n", extras: deltaExtras(1, 0, 0), cas: 1},
			{opcode: opNoop},
		}},
		{name: "too large", binary: true, bin: []binReq{
			{opcode: opFlush},
			set(opSet, "k", strings.Repeat("v", 1048516), 0, 0, 0),
			set(opSet, "k", strings.Repeat("v", 1048517), 0, 0, 0), k(opGet, "k"),
			set(opSet, "k", "small", 0, 0, 0), set(opAdd, "k", strings.Repeat("v", 1048517), 0, 0, 0), k(opGet, "k"),
			{opcode: opAppend, key: "k", value: bytes.Repeat([]byte("v"), 1048517)}, k(opGet, "k"),
			set(opSetQ, "k", strings.Repeat("v", 1048517), 0, 0, 0), k(opGet, "k"),
			{opcode: opNoop},
		}},
		{name: "key too long closes", binary: true, bin: []binReq{
			k(opGet, strings.Repeat("k", 251)), {opcode: opNoop},
		}},
		{name: "bad extras close", binary: true, bin: []binReq{
			{opcode: opGet, key: "a", extras: u32(1)}, {opcode: opNoop},
		}},
		{name: "delete with extras closes", binary: true, bin: []binReq{
			{opcode: opDelete, key: "a", extras: u32(0)}, {opcode: opNoop},
		}},
		{name: "noop with body closes", binary: true, bin: []binReq{
			{opcode: opNoop, value: []byte("x")},
		}},
		{name: "bad magic closes", binary: true, bin: []binReq{{opcode: opNoop}},
			raw: append([]byte{0x81}, make([]byte, 23)...)},
	})
}

// TestConformanceItemBytes checks memcached's per-item memory charge, which
// the item size limit and eviction depend on, through "stats" bytes.
func TestConformanceItemBytes(t *testing.T) {
	script := "set a 0 0 1\r\nx\r\nset bb 1 0 10\r\n0123456789\r\nset ccc 4294967295 0 0\r\n\r\n" +
		"set " + strings.Repeat("k", 250) + " 0 0 5\r\nvalue\r\n" +
		"set big 0 0 5000\r\n" + strings.Repeat("b", 5000) + "\r\n" +
		"incr nope 1\r\nset n 0 0 1\r\n9\r\nincr n 1\r\nappend a 0 0 3\r\nyyy\r\ndelete bb\r\n"
	realAddr := startMemcached(t, referenceArgs...)
	srv := startServer(t, Config{})
	converse(t, "tcp", realAddr, []byte(script+"quit\r\n"))
	converse(t, "tcp", srv.Addr(), []byte(script+"quit\r\n"))
	want, got := statsMap(t, realAddr), statsMap(t, srv.Addr())
	for _, name := range []string{"curr_items", "bytes", "total_items"} {
		if want[name] != got[name] {
			t.Errorf("stat %s: memcached %q, memcachedtest %q", name, want[name], got[name])
		}
	}
	if got["bytes"] == "" || got["bytes"] == "0" {
		t.Fatalf("bytes stat missing or zero: %q", got["bytes"])
	}
}
