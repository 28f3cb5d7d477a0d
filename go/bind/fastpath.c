#include "_cgo_export.h"
#include "fastpath.h"

static const struct omcache_fastpath table = {
	OMCACHE_FASTPATH_VERSION,
	omcacheFastGet,
	omcacheFastStore,
	omcacheFastDelta,
	omcacheFastAsyncStart,
	omcacheFastAsyncCollect,
};

const struct omcache_fastpath *omcache_fastpath_table(void) { return &table; }
