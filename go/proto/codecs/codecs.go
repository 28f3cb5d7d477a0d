// Package codecs names the protocols omcache speaks, so that a caller can
// choose one by name without importing each codec package.
package codecs

import (
	"fmt"

	"github.com/omcache/omcache/go/proto"
	"github.com/omcache/omcache/go/proto/binprot"
	"github.com/omcache/omcache/go/proto/meta"
	"github.com/omcache/omcache/go/proto/text"
)

// Default is the protocol a client speaks when none is chosen: meta, what
// memcached >= 1.6 recommends.
const Default = "meta"

var byName = map[string]proto.Codec{
	"meta":   meta.Codec{},
	"text":   text.Codec{},
	"binary": binprot.Codec{},
}

// Names lists the protocol names ByName knows.
func Names() []string { return []string{"meta", "text", "binary"} }

// ByName returns the codec of the protocol called name ("" is Default).
func ByName(name string) (proto.Codec, error) {
	if name == "" {
		name = Default
	}
	if c, ok := byName[name]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("unknown protocol %q (choose meta, text or binary)", name)
}

// Text returns the classic text protocol's codec, which binary clients
// may use for multi-key gets (one "gets" instead of a pipeline).
func Text() proto.Codec { return text.Codec{} }
