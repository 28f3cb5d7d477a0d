package binprot

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecodeResponse feeds arbitrary bytes to ParseResponse as a stream of
// pipelined responses. It checks the decoder never panics, never claims more
// bytes than it was given, only returns slices inside the input, and that
// whatever it accepts re-encodes to the same bytes.
func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte{})
	f.Add(AppendStore(nil, OpSet, []byte("k"), []byte("v"), 1, 2, 3, 4))
	seed := []byte{0x81, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
		0xde, 0xad, 0xbe, 0xef, 'W', 'o', 'r', 'l', 'd'}
	f.Add(seed)
	f.Add(append(append([]byte{}, seed...), seed[:30]...))
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxBody = 4096
		rest := data
		for len(rest) > 0 {
			r, n, err := ParseResponse(rest, maxBody)
			if err != nil {
				if !errors.Is(err, ErrMalformed) || n != 0 {
					t.Fatalf("error %v with n=%d", err, n)
				}
				return
			}
			if n == 0 {
				if len(rest) >= HeaderLen && HeaderLen+int(r.BodyLen) <= len(rest) {
					t.Fatalf("incomplete reported for a complete packet of %d bytes in %d", HeaderLen+r.BodyLen, len(rest))
				}
				return
			}
			if n > len(rest) || n != HeaderLen+int(r.BodyLen) || r.BodyLen > maxBody {
				t.Fatalf("n=%d for input %d, body %d", n, len(rest), r.BodyLen)
			}
			// Rebuild the packet from its parts: it must be the input.
			re := appendHeader(nil, r.Opcode, len(r.Key), uint8(len(r.Extras)), len(r.Extras)+len(r.Key)+len(r.Value), r.Opaque, r.CAS)
			re[0] = MagicResponse
			re[6], re[7] = byte(r.Status>>8), byte(r.Status)
			re = append(re, r.Extras...)
			re = append(re, r.Key...)
			re = append(re, r.Value...)
			if !bytes.Equal(re, rest[:n]) {
				t.Fatalf("re-encoded %x, input %x", re, rest[:n])
			}
			rest = rest[n:]
		}
	})
}
