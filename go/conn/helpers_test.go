package conn

import (
	"testing"

	"github.com/omcache/omcache/go/proto"
	"github.com/omcache/omcache/go/proto/binprot"
	"github.com/omcache/omcache/go/proto/meta"
	"github.com/omcache/omcache/go/proto/text"
)

// allCodecs are the protocols a connection can speak.
var allCodecs = []proto.Codec{meta.Codec{}, text.Codec{}, binprot.Codec{}}

// pipelinedCodecs are the protocols with quiet requests and sequence
// numbers.
var pipelinedCodecs = []proto.Codec{meta.Codec{}, binprot.Codec{}}

// eachCodec runs f as a subtest per codec.
func eachCodec(t *testing.T, codecs []proto.Codec, f func(t *testing.T, cd proto.Codec)) {
	t.Helper()
	for _, cd := range codecs {
		t.Run(cd.Name(), func(t *testing.T) { f(t, cd) })
	}
}

// withCodec returns opts speaking cd.
func withCodec(opts Options, cd proto.Codec) Options {
	opts.Codec = cd
	return opts
}

// appendReq appends req (and value, for a store) to buf in c's protocol.
func appendReq(t testing.TB, c *Conn, buf []byte, req proto.Request, value []byte) []byte {
	t.Helper()
	out, err := c.AppendRequest(buf, &req, value)
	if err != nil {
		t.Fatalf("AppendRequest(%+v): %v", req, err)
	}
	return out
}

// appendNoop ends a pipelined batch; in the text protocol it is a version,
// answered by a status reply with a Value.
func appendNoop(t testing.TB, c *Conn, buf []byte, seq uint32) []byte {
	return appendReq(t, c, buf, proto.Request{Op: proto.OpNoop, Seq: seq}, nil)
}

// isNoopReply reports whether r answers appendNoop in c's protocol.
func isNoopReply(c *Conn, r proto.Reply) bool {
	if c.Codec().Name() == "text" {
		return r.Kind == proto.KindStatus && r.Status == proto.StatusOK && len(r.Value) > 0
	}
	return r.Kind == proto.KindEnd
}

// recvOK reads one reply and fails the test on an error.
func recvOK(t testing.TB, c *Conn) proto.Reply {
	t.Helper()
	r, err := c.Recv()
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	return r
}

// getValue sends a get of key and returns its value as the caller's
// memory, reading the END that closes a text answer.
func getValue(t testing.TB, c *Conn, key string) (proto.Reply, []byte) {
	t.Helper()
	if err := c.Send(appendReq(t, c, c.Buffer(), proto.Request{Op: proto.OpGet, Key: []byte(key), WithKey: true, Seq: c.NextSeq()}, nil)); err != nil {
		t.Fatal(err)
	}
	r := recvOK(t, c)
	if r.Kind != proto.KindValue {
		t.Fatalf("get %q: reply %+v", key, r)
	}
	v := c.OwnValue(r.Value)
	r.Key = append([]byte(nil), r.Key...)
	if r.More {
		if end := recvOK(t, c); end.Kind != proto.KindEnd {
			t.Fatalf("get %q: %+v instead of END", key, end)
		}
	}
	return r, v
}
