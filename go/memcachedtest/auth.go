package memcachedtest

import (
	"bytes"
	"crypto/subtle"
	"encoding/binary"
	"strconv"
	"strings"
)

// Authentication, as memcached does it: with Config.Users set, a new
// connection must authenticate before anything else, with SASL PLAIN in
// the binary protocol (memcached -S) or with memcached's ASCII
// authentication in text and meta (-Y): a "set" whose value is
// "<user> <password>", its key ignored.

const (
	binOpSASLList     = 0x20
	binOpSASLAuth     = 0x21
	binStatusAuthFail = 0x20
)

// checkUser reports whether user and pass match Config.Users.
func (s *Server) checkUser(user, pass string) bool {
	want, ok := s.cfg.Users[user]
	return ok && subtle.ConstantTimeCompare([]byte(want), []byte(pass)) == 1
}

// handleAuth reads one authentication request of a connection that has
// not authenticated yet and answers it.
func (c *conn) handleAuth() error {
	if c.binary {
		return c.handleBinaryAuth()
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return errDropConn
	}
	f := strings.Fields(string(line))
	n, nerr := 0, error(nil)
	if len(f) >= 5 {
		n, nerr = strconv.Atoi(f[4])
	}
	if len(f) < 5 || f[0] != "set" || nerr != nil || n < 0 || n > 4096 {
		c.out = append(c.out, "CLIENT_ERROR unauthenticated\r\n"...)
		return nil
	}
	data, err := c.readFull(n + 2)
	if err != nil {
		return err
	}
	if !bytes.HasSuffix(data, []byte("\r\n")) {
		c.out = append(c.out, "CLIENT_ERROR bad data chunk\r\n"...)
		return nil
	}
	user, pass, _ := strings.Cut(string(data[:n]), " ")
	if c.srv.checkUser(user, pass) {
		c.authed = true
		c.out = append(c.out, "STORED\r\n"...)
	} else {
		c.out = append(c.out, "CLIENT_ERROR authentication failure\r\n"...)
	}
	return nil
}

func (c *conn) handleBinaryAuth() error {
	hdr, err := c.readFull(24)
	if err != nil {
		return err
	}
	body := binary.BigEndian.Uint32(hdr[8:])
	if body > 4096 {
		return errCloseConn
	}
	data, err := c.readFull(int(body))
	if err != nil {
		return err
	}
	op, keyLen, extLen := hdr[1], int(binary.BigEndian.Uint16(hdr[2:])), int(hdr[4])
	if extLen+keyLen > len(data) {
		return errCloseConn
	}
	key, value := string(data[extLen:extLen+keyLen]), data[extLen+keyLen:]
	status, msg := uint16(binStatusAuthFail), "Auth failure"
	switch {
	case op == binOpSASLList:
		status, msg = 0, "PLAIN"
	case op == binOpSASLAuth && key == "PLAIN":
		// authzid NUL authcid NUL password
		if parts := bytes.SplitN(value, []byte{0}, 3); len(parts) == 3 && c.srv.checkUser(string(parts[1]), string(parts[2])) {
			c.authed = true
			status, msg = 0, "Authenticated"
		}
	}
	var out [24]byte
	out[0] = binaryResponseMagic
	out[1] = op
	binary.BigEndian.PutUint16(out[6:], status)
	binary.BigEndian.PutUint32(out[8:], uint32(len(msg)))
	copy(out[12:16], hdr[12:16]) // opaque
	c.out = append(c.out, out[:]...)
	c.out = append(c.out, msg...)
	return nil
}
