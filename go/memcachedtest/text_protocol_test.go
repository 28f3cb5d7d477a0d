package memcachedtest

import (
	"strconv"
	"strings"
	"testing"
)

// exchange is one request and the lines it must produce.
type exchange struct {
	send string
	want []string
}

func ex(send string, want ...string) exchange { return exchange{send, want} }

func runExchanges(t *testing.T, w *wire, steps []exchange) {
	t.Helper()
	for _, st := range steps {
		w.do(st.send, st.want...)
	}
}

func TestTextCommands(t *testing.T) {
	long := strings.Repeat("k", 251)
	tests := []struct {
		name  string
		steps []exchange
	}{
		{"set then get returns value and flags", []exchange{
			ex("set k 42 0 5\r\nhello\r\n", "STORED"),
			ex("get k\r\n", "VALUE k 42 5", "hello", "END"),
		}},
		{"get miss returns only END", []exchange{ex("get nope\r\n", "END")}},
		{"multi-get returns hits in request order", []exchange{
			ex("set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\n", "STORED", "STORED"),
			ex("get b nope a b\r\n", "VALUE b 0 1", "2", "VALUE a 0 1", "1", "VALUE b 0 1", "2", "END"),
		}},
		{"gets returns the cas unique", []exchange{
			ex("set k 0 0 1\r\nx\r\n", "STORED"),
			ex("gets k\r\n", "VALUE k 0 1 1", "x", "END"),
		}},
		{"empty value", []exchange{
			ex("set k 0 0 0\r\n\r\n", "STORED"),
			ex("get k\r\n", "VALUE k 0 0", "", "END"),
		}},
		{"binary-safe value", []exchange{
			ex("set k 0 0 6\r\na\r\nb\x00c\r\n", "STORED"),
			ex("get k\r\n", "VALUE k 0 6", "a", "b\x00c", "END"),
		}},
		{"add stores only missing keys", []exchange{
			ex("add k 0 0 1\r\na\r\n", "STORED"),
			ex("add k 0 0 1\r\nb\r\n", "NOT_STORED"),
			ex("get k\r\n", "VALUE k 0 1", "a", "END"),
		}},
		{"replace stores only existing keys", []exchange{
			ex("replace k 0 0 1\r\na\r\n", "NOT_STORED"),
			ex("set k 0 0 1\r\na\r\nreplace k 3 0 1\r\nb\r\n", "STORED", "STORED"),
			ex("get k\r\n", "VALUE k 3 1", "b", "END"),
		}},
		{"append and prepend keep flags", []exchange{
			ex("append k 0 0 1\r\nx\r\nprepend k 0 0 1\r\nx\r\n", "NOT_STORED", "NOT_STORED"),
			ex("set k 7 0 2\r\nmm\r\nappend k 1 0 2\r\n>>\r\nprepend k 2 0 2\r\n<<\r\n", "STORED", "STORED", "STORED"),
			ex("get k\r\n", "VALUE k 7 6", "<<mm>>", "END"),
		}},
		{"cas succeeds once with the current unique", []exchange{
			ex("set k 0 0 1\r\na\r\n", "STORED"),
			ex("cas k 0 0 1 1\r\nb\r\n", "STORED"),
			ex("cas k 0 0 1 1\r\nc\r\n", "EXISTS"),
			ex("cas nope 0 0 1 1\r\nc\r\n", "NOT_FOUND"),
			ex("gets k\r\n", "VALUE k 0 1 2", "b", "END"),
		}},
		{"delete", []exchange{
			ex("set k 0 0 1\r\na\r\n", "STORED"),
			ex("delete k\r\n", "DELETED"),
			ex("delete k\r\n", "NOT_FOUND"),
			ex("delete k 0\r\n", "NOT_FOUND"),
			ex("delete k 5\r\n", msgDeleteUsage),
		}},
		{"incr and decr", []exchange{
			ex("incr k 1\r\ndecr k 1\r\n", "NOT_FOUND", "NOT_FOUND"),
			ex("set k 0 0 2\r\n10\r\n", "STORED"),
			ex("incr k 5\r\n", "15"),
			ex("decr k 20\r\n", "0"),
			ex("get k\r\n", "VALUE k 0 2", "0 ", "END"),
			ex("incr k 18446744073709551615\r\n", "18446744073709551615"),
			ex("incr k 2\r\n", "1"),
		}},
		{"incr on a non-number and a bad delta", []exchange{
			ex("set k 0 0 3\r\nabc\r\n", "STORED"),
			ex("incr k 1\r\n", msgNonNumeric),
			ex("incr k x\r\n", msgBadDelta),
			ex("incr k -1\r\n", msgBadDelta),
		}},
		{"touch", []exchange{
			ex("touch k 10\r\n", "NOT_FOUND"),
			ex("set k 0 0 1\r\na\r\n", "STORED"),
			ex("touch k 10\r\n", "TOUCHED"),
			ex("touch k x\r\n", msgBadExptime),
		}},
		{"gat and gats", []exchange{
			ex("set k 3 0 1\r\na\r\n", "STORED"),
			ex("gat 100 k nope\r\n", "VALUE k 3 1", "a", "END"),
			ex("gats 100 k\r\n", "VALUE k 3 1 1", "a", "END"),
			ex("gat x k\r\n", msgBadExptime),
		}},
		{"noreply suppresses answers but not values", []exchange{
			ex("set k 0 0 1 noreply\r\na\r\nadd k 0 0 1 noreply\r\nb\r\nincr n 1 noreply\r\n"+
				"delete nope noreply\r\ntouch k 1 noreply\r\nflush_all noreply\r\nverbosity 1 noreply\r\nget k\r\n", "END"),
		}},
		{"flush_all empties the cache", []exchange{
			ex("set k 0 0 1\r\na\r\n", "STORED"),
			ex("flush_all\r\n", "OK"),
			ex("get k\r\n", "END"),
			ex("flush_all x\r\n", msgBadExptime),
		}},
		{"version, verbosity and unknown commands", []exchange{
			ex("version\r\n", "VERSION "+DefaultVersion),
			ex("verbosity 1\r\n", "OK"),
			ex("verbosity\r\n", "ERROR"),
			ex("bogus\r\n", "ERROR"),
			ex("\r\n", "ERROR"),
			ex("shutdown\r\n", "ERROR: shutdown not enabled"),
		}},
		{"malformed storage commands", []exchange{
			ex("set k 0 0\r\n", "ERROR"),
			ex("set k x 0 1\r\n", msgBadFormat),
			ex("set k 0 0 -1\r\n", msgBadFormat),
			// Exactly 1+2 bytes are read as the data block; the CRLF left over
			// is then an (empty, so unknown) command.
			ex("set k 0 0 1\r\nabc\r\n", msgBadChunk, "ERROR"),
			ex("set "+long+" 0 0 1\r\n", msgBadFormat),
		}},
		{"key longer than 250 bytes", []exchange{
			ex("get "+long+"\r\n", msgBadFormat),
			ex("get a "+long+"\r\n", msgBadFormat),
			ex("delete "+long+"\r\n", msgBadFormat),
			ex("incr "+long+" 1\r\n", msgBadFormat),
			ex("touch "+long+" 1\r\n", msgBadFormat),
			ex("get "+long[:250]+"\r\n", "END"),
		}},
		{"cache_memlimit", []exchange{
			ex("cache_memlimit 4\r\n", "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m"),
			ex("cache_memlimit 16\r\n", "OK"),
			ex("stats settings\r\n", "STAT maxbytes 16777216"),
		}},
		{"stats reset and detail", []exchange{
			ex("stats reset\r\n", "RESET"),
			ex("stats detail on\r\n", "OK"),
			ex("stats detail dump\r\n", "END"),
			ex("stats nosuch\r\n", "ERROR"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startServer(t, Config{})
			runExchanges(t, dialServer(t, s), tt.steps)
		})
	}
}

func TestTextQuitClosesConnection(t *testing.T) {
	s := startServer(t, Config{})
	w := dialServer(t, s)
	w.send("set k 0 0 1\r\na\r\nquit\r\nget k\r\n")
	w.expect("STORED")
	w.expectClosed()
}

func TestTextHTTPRequestClosesConnection(t *testing.T) {
	s := startServer(t, Config{})
	w := dialServer(t, s)
	w.send("GET / HTTP/1.1\r\n")
	w.expectClosed()
}

func TestTextOverlongLineClosesConnection(t *testing.T) {
	s := startServer(t, Config{})
	w := dialServer(t, s)
	w.send("set " + strings.Repeat("x", maxCommandLine+10))
	w.expectClosed()

	// A long multi-get line is fine.
	w = dialServer(t, s)
	var sb strings.Builder
	sb.WriteString("get")
	for i := 0; sb.Len() < 3*maxCommandLine; i++ {
		sb.WriteString(" key" + strconv.Itoa(i))
	}
	w.do(sb.String()+"\r\n", "END")
}

func TestTextStatsGroups(t *testing.T) {
	s := startServer(t, Config{MaxBytes: 32 << 20, ItemSizeMax: 2 << 20})
	w := dialServer(t, s)
	w.do("set k 0 0 5\r\nhello\r\nget k nope\r\n", "STORED", "VALUE k 0 5", "hello", "END")

	read := func(cmd string) map[string]string {
		w.send(cmd + "\r\n")
		m := map[string]string{}
		for {
			l := w.line()
			if l == "END" {
				return m
			}
			f := strings.SplitN(l, " ", 3)
			if len(f) != 3 || f[0] != "STAT" {
				t.Fatalf("%s: bad line %q", cmd, l)
			}
			m[f[1]] = f[2]
		}
	}
	general := read("stats")
	for name, want := range map[string]string{
		"curr_items": "1", "total_items": "1", "cmd_get": "2", "get_hits": "1", "get_misses": "1",
		"cmd_set": "1", "curr_connections": "1", "limit_maxbytes": strconv.Itoa(32 << 20),
		"bytes": strconv.FormatInt(itemTotalSize(1, 0, 5), 10), "evictions": "0",
		"version": DefaultVersion, "pid": strconv.Itoa(s.pid),
	} {
		if general[name] != want {
			t.Errorf("stats %s = %q, want %q", name, general[name], want)
		}
	}
	for _, name := range []string{"uptime", "time", "rusage_user", "bytes_read", "bytes_written", "total_connections"} {
		if _, ok := general[name]; !ok {
			t.Errorf("stats lacks %s", name)
		}
	}
	settings := read("stats settings")
	if settings["item_size_max"] != strconv.Itoa(2<<20) || settings["maxbytes"] != strconv.Itoa(32<<20) ||
		settings["tcpport"] != strconv.Itoa(s.Port()) || settings["cas_enabled"] != "yes" {
		t.Errorf("stats settings: %v", settings)
	}
	items := read("stats items")
	if items["items:1:number"] != "1" || items["items:1:evicted"] != "0" {
		t.Errorf("stats items: %v", items)
	}
	slabs := read("stats slabs")
	if slabs["1:chunk_size"] != "96" || slabs["1:used_chunks"] != "1" || slabs["1:get_hits"] != "1" ||
		slabs["active_slabs"] != "1" || slabs["total_malloced"] != strconv.Itoa(slabPageSize) {
		t.Errorf("stats slabs: %v", slabs)
	}
	if sizes := read("stats sizes"); sizes["sizes_status"] != "disabled" {
		t.Errorf("stats sizes: %v", sizes)
	}
	conns := read("stats conns")
	if conns["0:state"] != "conn_listening" || conns["0:addr"] != "tcp:"+s.Addr() {
		t.Errorf("stats conns: %v", conns)
	}
	w.do("stats cachedump 1 0\r\n", "ITEM k [5 b; 0 s]", "END")
}
