/*
 * The engine's hot-path entry points as a C table: a caller in C (omcache's
 * Python accelerator, python/omcache/_fastpath.c) calls them without a
 * generated wrapper between, with whatever lock of its own released.
 * Every entry is an exported Go function of package bind that recovers its
 * own panics; none calls back into the caller. Pointers are passed as
 * integers (addresses of memory the caller keeps alive and unchanged for
 * the call), as in the rest of bind's API.
 *
 * Change OMCACHE_FASTPATH_VERSION whenever this struct changes: callers
 * refuse a table of another version.
 */
#ifndef OMCACHE_FASTPATH_H
#define OMCACHE_FASTPATH_H

#define OMCACHE_FASTPATH_VERSION 2

struct omcache_fastpath {
	long long version;
	/* bind.GetInto: h, keyAddr, keyLen, bufAddr, bufCap, gat (0/1), exptime */
	long long (*get)(long long, long long, long long, long long, long long, long long, long long);
	/* bind.Store: h, op, keyAddr, keyLen, valueAddr, valueLen, flags, exptime, cas */
	long long (*store)(long long, long long, long long, long long, long long, long long, long long, long long, long long);
	/* bind.DeltaInto: h, keyAddr, keyLen, decr (0/1), delta, initial, create (0/1), exptime, bufAddr, bufCap */
	long long (*delta)(long long, long long, long long, long long, long long, long long, long long, long long, long long, long long);
	/* bind.AsyncStart: q, h, op, aAddr, aLen, bAddr, bLen, cAddr, cLen, i1, i2, i3, i4 */
	long long (*async_start)(long long, long long, long long, long long, long long, long long, long long,
	                         long long, long long, long long, long long, long long, long long);
	/* bind.AsyncCollectInto: q, bufAddr, bufCap */
	long long (*async_collect)(long long, long long, long long);
};

const struct omcache_fastpath *omcache_fastpath_table(void);

#endif
