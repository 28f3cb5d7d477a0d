package memcachedtest

// The server has no slab allocator, but "stats items", "stats slabs" and
// mg/me report slab classes, so items are filed under the class memcached
// 1.6 would pick with its defaults (-n 48, -f 1.25, 1 MiB pages, chunks up
// to half a page; larger items are chunked into the last class).
const (
	slabPageSize   = 1 << 20
	slabChunkMax   = slabPageSize / 2
	slabGrowth     = 1.25
	slabFirstChunk = 48 + 48
	slabChunkAlign = 8
	maxSlabClasses = 64
	slabFirstClass = 1
)

type slabClass struct {
	chunkSize int64
	perPage   int64

	items, requested int64
	pagesHigh        int64 // most pages the class ever needed; memcached never frees pages

	evicted, evictedNonzero, reclaimed, outOfMemory uint64
	expiredUnfetched, evictedUnfetched              uint64
	evictedTime                                     int64

	getHits, cmdSet, deleteHits, incrHits, decrHits uint64
	casHits, casBadval, touchHits                   uint64
}

// newSlabClasses returns the class table indexed by class id; index 0 is
// unused, as in memcached.
func newSlabClasses() []slabClass {
	classes := make([]slabClass, 1, maxSlabClasses)
	size := float64(slabFirstChunk)
	for len(classes) < maxSlabClasses-1 && size < slabChunkMax/slabGrowth {
		n := int64(size)
		if n%slabChunkAlign != 0 {
			n += slabChunkAlign - n%slabChunkAlign
		}
		classes = append(classes, slabClass{chunkSize: n, perPage: slabPageSize / n})
		size = float64(n) * slabGrowth
	}
	classes = append(classes, slabClass{chunkSize: slabChunkMax, perPage: slabPageSize / slabChunkMax})
	return classes
}

// classFor returns the smallest class whose chunks hold size bytes.
func classFor(classes []slabClass, size int64) int {
	for id := slabFirstClass; id < len(classes); id++ {
		if classes[id].chunkSize >= size {
			return id
		}
	}
	return len(classes) - 1
}

// usedChunks is how many chunks the class's items would occupy; items over
// the largest chunk size take several.
func (c *slabClass) usedChunks() int64 {
	if c.items <= 0 {
		return 0
	}
	if c.chunkSize == slabChunkMax {
		n := (c.requested + slabChunkMax - 1) / slabChunkMax
		if n < c.items {
			n = c.items
		}
		return n
	}
	return c.items
}

// noteGrowth records the pages the class needs now.
func (c *slabClass) noteGrowth() {
	pages := (c.usedChunks() + c.perPage - 1) / c.perPage
	if pages > c.pagesHigh {
		c.pagesHigh = pages
	}
}
