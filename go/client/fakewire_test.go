package client

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/omcache/omcache/go/proto/binprot"
)

// A scripted memcached for the fake-server tests: it reads requests in the
// protocol it is told, answers them correctly by default (every key but
// those starting with "miss" holds "value-of-<key>"), and lets a test
// replace the answers of a connection to misbehave in a precise way.

// wireReq is one request as the fake server read it.
type wireReq struct {
	cmd    string // meta and text: the command word; binary: the opcode's name
	keys   [][]byte
	seq    uint32 // meta O token, binary opaque
	hasSeq bool
	quiet  bool
	withK  bool // meta k, binary GETK
	op     binprot.Opcode
	binary bool // the request was a binary packet
}

// wire is one accepted connection of the fake server.
type wire struct {
	c        net.Conn
	r        *bufio.Reader
	protocol string
}

// read reads one request. A request the server cannot parse ends the
// connection (io.EOF).
func (w *wire) read() (wireReq, error) {
	first, err := w.r.Peek(1)
	if err != nil {
		return wireReq{}, err
	}
	if first[0] == binprot.MagicRequest {
		var h [binprot.HeaderLen]byte
		if _, err := io.ReadFull(w.r, h[:]); err != nil {
			return wireReq{}, err
		}
		hdr, _ := binprot.DecodeHeader(h[:])
		body := make([]byte, hdr.BodyLen)
		if _, err := io.ReadFull(w.r, body); err != nil {
			return wireReq{}, err
		}
		q := wireReq{cmd: hdr.Opcode.String(), op: hdr.Opcode, seq: hdr.Opaque, hasSeq: true, binary: true}
		if int(hdr.ExtrasLen)+int(hdr.KeyLen) <= len(body) && hdr.KeyLen > 0 {
			q.keys = [][]byte{body[hdr.ExtrasLen : int(hdr.ExtrasLen)+int(hdr.KeyLen)]}
		}
		switch hdr.Opcode {
		case binprot.OpGetQ, binprot.OpGetKQ, binprot.OpSetQ, binprot.OpDeleteQ, binprot.OpGATQ, binprot.OpGATKQ,
			binprot.OpAddQ, binprot.OpReplaceQ, binprot.OpAppendQ, binprot.OpPrependQ, binprot.OpIncrementQ, binprot.OpDecrementQ:
			q.quiet = true
		}
		q.withK = hdr.Opcode == binprot.OpGetK || hdr.Opcode == binprot.OpGetKQ || hdr.Opcode == binprot.OpGATK || hdr.Opcode == binprot.OpGATKQ
		return q, nil
	}
	line, err := w.r.ReadSlice('\n')
	if err != nil {
		return wireReq{}, err
	}
	tok := bytes.Fields(line)
	if len(tok) == 0 {
		return wireReq{}, io.EOF
	}
	q := wireReq{cmd: string(tok[0])}
	dataLen := -1
	switch q.cmd {
	case "mg", "ms", "md", "ma":
		if len(tok) < 2 {
			return wireReq{}, io.EOF
		}
		q.keys = [][]byte{append([]byte(nil), tok[1]...)}
		for _, f := range tok[2:] {
			switch f[0] {
			case 'O':
				n, _ := strconv.ParseUint(string(f[1:]), 10, 32)
				q.seq, q.hasSeq = uint32(n), true
			case 'q':
				q.quiet = true
			case 'k':
				q.withK = true
			}
		}
		if q.cmd == "ms" {
			dataLen, _ = strconv.Atoi(string(tok[2]))
		}
	case "get", "gets":
		for _, k := range tok[1:] {
			q.keys = append(q.keys, append([]byte(nil), k...))
		}
	case "gat", "gats":
		for _, k := range tok[2:] {
			q.keys = append(q.keys, append([]byte(nil), k...))
		}
	case "set", "add", "replace", "append", "prepend", "cas":
		if len(tok) < 5 {
			return wireReq{}, io.EOF
		}
		q.keys = [][]byte{append([]byte(nil), tok[1]...)}
		dataLen, _ = strconv.Atoi(string(tok[4]))
	case "delete", "touch", "incr", "decr":
		if len(tok) >= 2 {
			q.keys = [][]byte{append([]byte(nil), tok[1]...)}
		}
	}
	if dataLen >= 0 {
		if _, err := io.CopyN(io.Discard, w.r, int64(dataLen)+2); err != nil {
			return wireReq{}, err
		}
	}
	return q, nil
}

// valueFor is what the fake server stores under key.
func valueFor(key []byte) []byte { return append([]byte("value-of-"), key...) }

func missing(key []byte) bool { return bytes.HasPrefix(key, []byte("miss")) }

// binResponse builds a binary response packet.
func binResponse(op binprot.Opcode, status binprot.Status, opaque uint32, extras, key, value []byte) []byte {
	return response(op, status, opaque, extras, key, value)
}

// good is the correct answer to q.
func (w *wire) good(q wireReq) []byte {
	var out []byte
	if q.binary {
		switch q.op {
		case binprot.OpGet, binprot.OpGetK, binprot.OpGetQ, binprot.OpGetKQ, binprot.OpGAT, binprot.OpGATK, binprot.OpGATQ, binprot.OpGATKQ:
			k := q.keys[0]
			if missing(k) {
				if q.quiet {
					return nil
				}
				return binResponse(q.op, binprot.StatusKeyNotFound, q.seq, nil, nil, []byte("Not found"))
			}
			var rk []byte
			if q.withK {
				rk = k
			}
			return binResponse(q.op, 0, q.seq, []byte{0, 0, 0, 0}, rk, valueFor(k))
		case binprot.OpVersion:
			return binResponse(q.op, 0, q.seq, nil, nil, []byte("1.6.18"))
		}
		if q.quiet {
			return nil
		}
		return binResponse(q.op, 0, q.seq, nil, nil, nil)
	}
	switch q.cmd {
	case "mg":
		k := q.keys[0]
		if missing(k) {
			if q.quiet {
				return nil
			}
			return fmt.Appendf(nil, "EN O%d\r\n", q.seq)
		}
		v := valueFor(k)
		kf := ""
		if q.withK {
			kf = " k" + string(k)
		}
		return fmt.Appendf(nil, "VA %d f0 c1%s O%d\r\n%s\r\n", len(v), kf, q.seq, v)
	case "ms", "md":
		if q.quiet {
			return nil
		}
		return fmt.Appendf(nil, "HD O%d\r\n", q.seq)
	case "mn":
		return []byte("MN\r\n")
	case "get", "gets", "gat", "gats":
		for _, k := range q.keys {
			if !missing(k) {
				v := valueFor(k)
				out = fmt.Appendf(out, "VALUE %s 0 %d 1\r\n%s\r\n", k, len(v), v)
			}
		}
		return append(out, "END\r\n"...)
	case "set", "add", "replace", "append", "prepend", "cas":
		return []byte("STORED\r\n")
	case "delete":
		return []byte("DELETED\r\n")
	case "version":
		return []byte("VERSION 1.6.18\r\n")
	}
	return []byte("ERROR\r\n")
}

// verdict is what a misbehaving handler does with a request.
type verdict int

const (
	answer  verdict = iota // write the bytes returned
	hangUp                 // close the connection without writing
	stallUp                // write the bytes, then never answer again
)

// misbehave answers the requests of one connection; nil means good.
type misbehave func(w *wire, q wireReq) ([]byte, verdict)

// scriptServer is a fake server speaking protocol whose connection number
// n (from 1) is answered by script(n), or correctly when that is nil. It
// returns its address and the number of connections accepted so far.
func scriptServer(t *testing.T, protocol string, script func(n int) misbehave) (string, *atomic.Int32) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int32
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n := int(accepted.Add(1))
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				defer func() {
					// A broken script must fail the test, not kill it.
					if p := recover(); p != nil {
						t.Errorf("fake server: %v", p)
					}
				}()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				w := &wire{c: c, r: bufio.NewReader(c), protocol: protocol}
				bad := script(n)
				for {
					q, err := w.read()
					if err != nil {
						return
					}
					out, v := w.good(q), answer
					if bad != nil {
						out, v = bad(w, q)
					}
					switch v {
					case hangUp:
						return
					case stallUp:
						c.Write(out)
						io.Copy(io.Discard, c)
						return
					}
					if len(out) > 0 {
						if _, err := c.Write(out); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String(), &accepted
}

// firstOnly misbehaves with m on the first connection only.
func firstOnly(m misbehave) func(n int) misbehave {
	return func(n int) misbehave {
		if n == 1 {
			return m
		}
		return nil
	}
}

// binaryHit is a binary GETK hit for key with opaque.
func binaryHit(opaque uint32, key, value []byte) []byte {
	return binResponse(binprot.OpGetK, 0, opaque, []byte{0, 0, 0, 0}, key, value)
}
