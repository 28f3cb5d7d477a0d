package memcachedtest

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"syscall"
)

// Stats is a snapshot of the server's counters, named after memcached's
// "stats" fields (CurrItems is curr_items and so on).
type Stats struct {
	PID                 int64
	Uptime              int64 // seconds since Start, by the server's clock
	Time                int64 // the server's clock, unix seconds
	CurrItems           int64
	TotalItems          int64
	Bytes               int64 // memory charged for items, memcached's way
	LimitMaxbytes       int64
	ItemSizeMax         int64
	CurrConnections     int64
	TotalConnections    int64
	RejectedConnections int64
	CmdGet              int64
	CmdSet              int64
	CmdFlush            int64
	CmdTouch            int64
	CmdMeta             int64
	GetHits             int64
	GetMisses           int64
	GetExpired          int64
	GetFlushed          int64
	DeleteHits          int64
	DeleteMisses        int64
	IncrHits            int64
	IncrMisses          int64
	DecrHits            int64
	DecrMisses          int64
	CasHits             int64
	CasMisses           int64
	CasBadval           int64
	TouchHits           int64
	TouchMisses         int64
	StoreTooLarge       int64
	StoreNoMemory       int64
	Evictions           int64
	Reclaimed           int64
	ExpiredUnfetched    int64
	EvictedUnfetched    int64
	BytesRead           int64
	BytesWritten        int64
}

type statLine struct{ name, value string }

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	st := s.store
	st.mu.Lock()
	now := s.now()
	st.prepare(now)
	k := st.st
	out := Stats{
		CurrItems:     int64(len(st.items)),
		TotalItems:    int64(k.totalItem),
		Bytes:         st.bytes,
		LimitMaxbytes: st.maxBytes,
		CmdGet:        int64(k.cmdGet), CmdSet: int64(k.cmdSet), CmdFlush: int64(k.cmdFlush),
		CmdTouch: int64(k.cmdTouch), CmdMeta: int64(k.cmdMeta),
		GetHits: int64(k.getHits), GetMisses: int64(k.getMisses),
		GetExpired: int64(k.getExpired), GetFlushed: int64(k.getFlushed),
		DeleteHits: int64(k.deleteHits), DeleteMisses: int64(k.deleteMisses),
		IncrHits: int64(k.incrHits), IncrMisses: int64(k.incrMisses),
		DecrHits: int64(k.decrHits), DecrMisses: int64(k.decrMisses),
		CasHits: int64(k.casHits), CasMisses: int64(k.casMisses), CasBadval: int64(k.casBadval),
		TouchHits: int64(k.touchHits), TouchMisses: int64(k.touchMisses),
		StoreTooLarge: int64(k.storeTooLarge), StoreNoMemory: int64(k.storeNoMemory),
		Evictions: int64(k.evictions), Reclaimed: int64(k.reclaimed),
		ExpiredUnfetched: int64(k.expiredUnfetched), EvictedUnfetched: int64(k.evictedUnfetched),
	}
	st.mu.Unlock()
	out.PID = int64(s.pid)
	out.Time = now
	out.Uptime = now - s.started
	out.ItemSizeMax = int64(s.cfg.ItemSizeMax)
	out.CurrConnections = s.currConns.Load()
	out.TotalConnections = s.totalConns.Load()
	out.RejectedConnections = s.rejectedConns.Load()
	out.BytesRead = s.bytesRead.Load()
	out.BytesWritten = s.bytesWritten.Load()
	return out
}

func (s *Server) resetStats() {
	st := s.store
	st.mu.Lock()
	st.st = counters{}
	for i := range st.classes {
		c := &st.classes[i]
		*c = slabClass{chunkSize: c.chunkSize, perPage: c.perPage, items: c.items,
			requested: c.requested, pagesHigh: c.pagesHigh}
	}
	st.mu.Unlock()
	s.totalConns.Store(0)
	s.rejectedConns.Store(0)
	s.bytesRead.Store(0)
	s.bytesWritten.Store(0)
}

func i64(v int64) string { return strconv.FormatInt(v, 10) }

func rusage() (user, system string) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return "0.000000", "0.000000"
	}
	f := func(tv syscall.Timeval) string { return fmt.Sprintf("%d.%06d", tv.Sec, tv.Usec) }
	return f(ru.Utime), f(ru.Stime)
}

// generalStats is the plain "stats" answer, in memcached's order.
func (s *Server) generalStats() []statLine {
	v := s.Stats()
	user, system := rusage()
	accepting := "1"
	s.mu.Lock()
	if s.refusing {
		accepting = "0"
	}
	s.mu.Unlock()
	return []statLine{
		{"pid", i64(v.PID)},
		{"uptime", i64(v.Uptime)},
		{"time", i64(v.Time)},
		{"version", s.cfg.Version},
		{"pointer_size", "64"},
		{"rusage_user", user},
		{"rusage_system", system},
		{"max_connections", strconv.Itoa(s.cfg.MaxConns)},
		{"curr_connections", i64(v.CurrConnections)},
		{"total_connections", i64(v.TotalConnections)},
		{"rejected_connections", i64(v.RejectedConnections)},
		{"connection_structures", i64(v.CurrConnections)},
		{"cmd_get", i64(v.CmdGet)},
		{"cmd_set", i64(v.CmdSet)},
		{"cmd_flush", i64(v.CmdFlush)},
		{"cmd_touch", i64(v.CmdTouch)},
		{"cmd_meta", i64(v.CmdMeta)},
		{"get_hits", i64(v.GetHits)},
		{"get_misses", i64(v.GetMisses)},
		{"get_expired", i64(v.GetExpired)},
		{"get_flushed", i64(v.GetFlushed)},
		{"delete_misses", i64(v.DeleteMisses)},
		{"delete_hits", i64(v.DeleteHits)},
		{"incr_misses", i64(v.IncrMisses)},
		{"incr_hits", i64(v.IncrHits)},
		{"decr_misses", i64(v.DecrMisses)},
		{"decr_hits", i64(v.DecrHits)},
		{"cas_misses", i64(v.CasMisses)},
		{"cas_hits", i64(v.CasHits)},
		{"cas_badval", i64(v.CasBadval)},
		{"touch_hits", i64(v.TouchHits)},
		{"touch_misses", i64(v.TouchMisses)},
		{"store_too_large", i64(v.StoreTooLarge)},
		{"store_no_memory", i64(v.StoreNoMemory)},
		{"auth_cmds", "0"},
		{"auth_errors", "0"},
		{"bytes_read", i64(v.BytesRead)},
		{"bytes_written", i64(v.BytesWritten)},
		{"limit_maxbytes", i64(v.LimitMaxbytes)},
		{"accepting_conns", accepting},
		{"listen_disabled_num", "0"},
		{"threads", "1"},
		{"conn_yields", "0"},
		{"bytes", i64(v.Bytes)},
		{"curr_items", i64(v.CurrItems)},
		{"total_items", i64(v.TotalItems)},
		{"expired_unfetched", i64(v.ExpiredUnfetched)},
		{"evicted_unfetched", i64(v.EvictedUnfetched)},
		{"evicted_active", "0"},
		{"evictions", i64(v.Evictions)},
		{"reclaimed", i64(v.Reclaimed)},
	}
}

func onOff(b bool, on, off string) string {
	if b {
		return on
	}
	return off
}

// settingsStats is "stats settings".
func (s *Server) settingsStats() []statLine {
	s.store.mu.Lock()
	maxBytes, verbosity := s.store.maxBytes, s.store.verbosity
	s.store.mu.Unlock()
	host, port := "NULL", "0"
	if h, p, err := net.SplitHostPort(s.tcpAddr); err == nil {
		host, port = h, p
	}
	socket := "NULL"
	if s.cfg.UnixPath != "" {
		socket = s.cfg.UnixPath
	}
	return []statLine{
		{"maxbytes", i64(maxBytes)},
		{"maxconns", strconv.Itoa(s.cfg.MaxConns)},
		{"tcpport", port},
		{"udpport", "0"},
		{"inter", host},
		{"verbosity", strconv.Itoa(verbosity)},
		{"oldest", "0"},
		{"evictions", onOff(!s.cfg.NoEvict, "on", "off")},
		{"domain_socket", socket},
		{"umask", strconv.FormatUint(uint64(s.cfg.UnixPerm), 8)},
		{"shutdown_command", "no"},
		{"growth_factor", "1.25"},
		{"chunk_size", "48"},
		{"num_threads", "1"},
		{"stat_key_prefix", ":"},
		{"detail_enabled", "no"},
		{"reqs_per_event", "20"},
		{"cas_enabled", "yes"},
		{"tcp_backlog", "1024"},
		{"binding_protocol", "auto-negotiate"},
		{"auth_enabled_sasl", "no"},
		{"auth_enabled_ascii", "no"},
		{"item_size_max", strconv.Itoa(s.cfg.ItemSizeMax)},
		{"maxconns_fast", "yes"},
		{"hashpower_init", "0"},
		{"slab_reassign", "no"},
		{"slab_automove", "0"},
		{"slab_chunk_max", strconv.Itoa(slabChunkMax)},
		{"lru_crawler", "no"},
		{"flush_enabled", "yes"},
		{"dump_enabled", "yes"},
		{"lru_maintainer_thread", "no"},
		{"lru_segmented", "no"},
		{"temp_lru", "no"},
		{"idle_timeout", "0"},
		{"track_sizes", "no"},
		{"inline_ascii_response", "no"},
	}
}

// activeClasses lists class ids that ever held items, as memcached lists
// classes that have pages.
func (st *store) activeClasses() []int {
	var ids []int
	for id := slabFirstClass; id < len(st.classes); id++ {
		if st.classes[id].pagesHigh > 0 {
			ids = append(ids, id)
		}
	}
	return ids
}

// itemsStats is "stats items": per-class LRU statistics.
func (s *Server) itemsStats() []statLine {
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	now := s.now()
	st.prepare(now)
	oldest := map[int]int64{}
	for it := st.tail; it != nil; it = it.prev {
		if _, ok := oldest[it.class]; !ok {
			oldest[it.class] = now - it.atime
		}
	}
	var lines []statLine
	for _, id := range st.activeClasses() {
		c := &st.classes[id]
		if c.items == 0 {
			continue
		}
		p := "items:" + strconv.Itoa(id) + ":"
		lines = append(lines,
			statLine{p + "number", i64(c.items)},
			statLine{p + "age", i64(oldest[id])},
			statLine{p + "mem_requested", i64(c.requested)},
			statLine{p + "evicted", strconv.FormatUint(c.evicted, 10)},
			statLine{p + "evicted_nonzero", strconv.FormatUint(c.evictedNonzero, 10)},
			statLine{p + "evicted_time", i64(c.evictedTime)},
			statLine{p + "outofmemory", strconv.FormatUint(c.outOfMemory, 10)},
			statLine{p + "tailrepairs", "0"},
			statLine{p + "reclaimed", strconv.FormatUint(c.reclaimed, 10)},
			statLine{p + "expired_unfetched", strconv.FormatUint(c.expiredUnfetched, 10)},
			statLine{p + "evicted_unfetched", strconv.FormatUint(c.evictedUnfetched, 10)},
			statLine{p + "evicted_active", "0"},
		)
	}
	return lines
}

// slabsStats is "stats slabs": per-class chunk usage and hit counters.
func (s *Server) slabsStats() []statLine {
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	st.prepare(s.now())
	var lines []statLine
	var malloced int64
	ids := st.activeClasses()
	for _, id := range ids {
		c := &st.classes[id]
		used := c.usedChunks()
		total := c.pagesHigh * c.perPage
		malloced += c.pagesHigh * slabPageSize
		p := strconv.Itoa(id) + ":"
		u := func(v uint64) string { return strconv.FormatUint(v, 10) }
		lines = append(lines,
			statLine{p + "chunk_size", i64(c.chunkSize)},
			statLine{p + "chunks_per_page", i64(c.perPage)},
			statLine{p + "total_pages", i64(c.pagesHigh)},
			statLine{p + "total_chunks", i64(total)},
			statLine{p + "used_chunks", i64(used)},
			statLine{p + "free_chunks", i64(total - used)},
			statLine{p + "free_chunks_end", "0"},
			statLine{p + "get_hits", u(c.getHits)},
			statLine{p + "cmd_set", u(c.cmdSet)},
			statLine{p + "delete_hits", u(c.deleteHits)},
			statLine{p + "incr_hits", u(c.incrHits)},
			statLine{p + "decr_hits", u(c.decrHits)},
			statLine{p + "cas_hits", u(c.casHits)},
			statLine{p + "cas_badval", u(c.casBadval)},
			statLine{p + "touch_hits", u(c.touchHits)},
		)
	}
	lines = append(lines,
		statLine{"active_slabs", strconv.Itoa(len(ids))},
		statLine{"total_malloced", i64(malloced)},
	)
	return lines
}

// connsStats is "stats conns". The numbers before the colon identify
// connections but are not file descriptors.
func (s *Server) connsStats(self *conn) []statLine {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var lines []statLine
	listenAddr := ""
	if s.tcp != nil {
		listenAddr = "tcp:" + s.tcpAddr
		lines = append(lines,
			statLine{"0:addr", listenAddr},
			statLine{"0:state", "conn_listening"},
			statLine{"0:secs_since_last_cmd", "0"})
	}
	if s.unix != nil {
		lines = append(lines,
			statLine{"1:addr", "unix:" + s.cfg.UnixPath},
			statLine{"1:state", "conn_listening"},
			statLine{"1:secs_since_last_cmd", "0"})
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	sort.Slice(conns, func(i, j int) bool { return conns[i].id < conns[j].id })
	for _, c := range conns {
		p := strconv.FormatUint(c.id+1, 10) + ":"
		addr, listen := "unix:"+s.cfg.UnixPath, "unix:"+s.cfg.UnixPath
		if ra := c.nc.RemoteAddr(); ra != nil && ra.Network() == "tcp" {
			addr, listen = "tcp:"+ra.String(), listenAddr
		}
		state := "conn_waiting"
		if c == self {
			state = "conn_parse_cmd"
		}
		lines = append(lines,
			statLine{p + "addr", addr},
			statLine{p + "listen_addr", listen},
			statLine{p + "state", state},
			statLine{p + "secs_since_last_cmd", i64(now - c.lastCmd.Load())})
	}
	return lines
}
