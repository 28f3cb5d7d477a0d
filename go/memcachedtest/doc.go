// Package memcachedtest is an embedded memcached-compatible server for
// tests and demos: start one on a free loopback port (or a unix socket),
// point a client at it, make it misbehave on purpose, close it.
//
//	srv, err := memcachedtest.Start(memcachedtest.Config{Addr: "127.0.0.1:0"})
//	if err != nil { ... }
//	defer srv.Close()
//	client := connect(srv.Addr())
//	srv.SetFaultString("delay=200ms")   // now every answer is late
//	srv.ClearFaults()
//
// # Protocols
//
// Each connection speaks the protocol its first byte announces, as in
// memcached: 0x80 starts the binary protocol, anything else the text
// protocol, which includes the meta commands. The behaviour is memcached
// 1.6.18's, down to its quirks, and is checked byte for byte against the
// real server (the differential tests in conformance_test.go) and with
// libmemcached's memccapable:
//
//   - text: get, gets, gat, gats, bget, set, add, replace, append, prepend,
//     cas, delete, incr, decr, touch, flush_all [delay], stats (general,
//     settings, items, slabs, sizes, conns, cachedump, detail, reset),
//     version, verbosity, cache_memlimit, quit; noreply everywhere
//     memcached has it.
//   - meta: mg, ms, md, ma, mn, me with flags b c C E f F h I J k l M N O q
//     R s t T u v x D P L and the W, X, Z reply flags (stale-while-
//     revalidate and recache wins). E, md x, ms s and ms N in append mode
//     come from later memcached releases; 1.6.18 refuses them.
//   - binary: get, getk, getq, getkq, set, add, replace, append, prepend
//     (and quiet forms), delete, increment and decrement (with initial
//     value and "do not create" expiration), quit, flush (with delay),
//     noop, version, stat (groups as in text), touch, gat, gatq, gatk,
//     gatkq.
//
// Items are charged memcached's per-item size (48-byte header, 8-byte cas,
// key plus NUL, 4 bytes of non-zero flags, value plus CRLF), so the item
// size limit (default 1 MiB: a 1048516-byte value under a one-byte key)
// and "stats bytes" match memcached. Over the limit a text store answers
// "SERVER_ERROR object too large for cache", a binary one E2BIG, the
// value is swallowed and the connection goes on. Expiry follows memcached:
// exptimes up to 30 days are relative seconds, larger ones absolute unix
// times, negative ones expire at once. incr wraps at 2^64, decr stops at 0
// and, like memcached, pads a shorter result with spaces in place.
//
// When MaxBytes is reached the least recently used items are evicted
// (expired ones count as reclaimed), or with NoEvict stores fail with
// "SERVER_ERROR out of memory storing object".
//
// # Time
//
// Config.Clock replaces the system clock; with a ManualClock, or with
// Server.AdvanceClock on any clock, expiry and delayed flushes can be
// tested without sleeping.
//
// # Faults
//
// SetFault (or SetFaultString with the one-line form, for bindings) makes
// the server delay, stall, cut answers short, send garbage, refuse or hang
// up on connections, swallow connections without reading, or read slowly;
// see Fault. ClearFaults restores normal service.
//
// # Not implemented
//
// UDP, TLS, SASL and ascii authentication (the SASL opcodes answer
// "Unknown command", as memcached without -S does), and the operational
// commands lru_crawler, watch, lru, slabs, extstore and shutdown (which
// answers as memcached does without -A). Statistics are a plausible subset:
// no per-thread or segmented-LRU counters, "threads" is 1, get_flushed
// stays 0, "stats detail" records nothing, "stats sizes" is disabled and
// the numbers in "stats conns" are not file descriptors.
//
// # Known differences from memcached 1.6.18
//
//   - The LRU is a strict one; memcached's is segmented and bumps an item
//     at most once a minute, so eviction order can differ. Memory is
//     counted per item, not in 1 MiB slab pages, so a tiny MaxBytes holds
//     more than memcached's -m would.
//   - flush_all drops items at once; memcached keeps counting them in
//     curr_items and bytes until its LRU crawler reaps them.
//   - Binary commands with an unknown opcode skip exactly their body;
//     memcached skips the body length again after extras and key and
//     loses sync with the client.
//   - A get with a key over 250 bytes answers CLIENT_ERROR; memcached also
//     drops the answers still queued for earlier pipelined commands.
//   - me reports exp as the remaining seconds (as later memcached does;
//     1.6.18 printed it negated). ma with an over-long opaque fails before
//     applying the delta; memcached applies it, then fails. ma T on a
//     number that outgrows its old length sets the TTL of the live item
//     (memcached 1.6.18 sets it on the replaced copy).
package memcachedtest
