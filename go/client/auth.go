package client

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/omcache/omcache/go/conn"
)

// ErrAuth means the server refused the credentials (Options.Username and
// Password), or did not take them. It is a configuration error: failover
// does not count it against the server, and nothing retries it.
var ErrAuth = errors.New("omcache: authentication failed")

// ErrTLS means a TLS handshake failed in a way a retry cannot mend: the
// server's certificate is not trusted (unknown authority, wrong name,
// expired), the server does not speak TLS, or no version or cipher is
// common. It is a configuration error, not a failure of the server.
var ErrTLS = errors.New("omcache: TLS configuration error")

// asciiAuthKey is the key of the text "set" that carries the credentials
// of memcached's ASCII authentication (-Y): memcached ignores it while the
// connection is not authenticated, and it is one byte over the 250-byte
// key limit so that a server without -Y refuses the set instead of storing
// the credentials as a value.
var asciiAuthKey = strings.Repeat("a", 251)

// checkCredentials validates Options.Username and Password.
func checkCredentials(user, pass string) error {
	if user == "" && pass == "" {
		return nil
	}
	if user == "" {
		return fmt.Errorf("%w: a password without a username", ErrInvalidArguments)
	}
	if strings.ContainsAny(user, " \r\n\x00") {
		return fmt.Errorf("%w: the username holds a space, a line break or NUL", ErrInvalidArguments)
	}
	if strings.ContainsAny(pass, "\r\n\x00") {
		// The message never shows the password.
		return fmt.Errorf("%w: the password holds a line break or NUL", ErrInvalidArguments)
	}
	return nil
}

// authenticate sends the credentials on cn, a new connection, before any
// request: SASL PLAIN in the binary protocol (memcached -S), memcached's
// ASCII authentication in text and meta (-Y). No message holds the
// password.
func (c *Client) authenticate(cn *conn.Conn) error {
	if cn.Codec().Name() == "binary" {
		return c.saslPlain(cn)
	}
	return c.asciiAuth(cn)
}

const (
	binSASLAuth        = 0x21
	binStatusAuthError = 0x20
	binStatusAuthCont  = 0x21
	binStatusUnknown   = 0x81
)

func (c *Client) saslPlain(cn *conn.Conn) error {
	mech := "PLAIN"
	body := len(mech) + 2 + len(c.username) + len(c.password)
	buf := cn.Buffer()
	var hdr [24]byte
	hdr[0] = 0x80
	hdr[1] = binSASLAuth
	binary.BigEndian.PutUint16(hdr[2:], uint16(len(mech)))
	binary.BigEndian.PutUint32(hdr[8:], uint32(body))
	binary.BigEndian.PutUint32(hdr[12:], cn.NextSeq())
	buf = append(buf, hdr[:]...)
	buf = append(buf, mech...)
	buf = append(buf, 0)
	buf = append(buf, c.username...)
	buf = append(buf, 0)
	buf = append(buf, c.password...)
	err := cn.Send(buf)
	clear(buf) // the password leaves no copy in the pooled buffer
	if err != nil {
		return transportError(err)
	}
	pkt, err := cn.RecvFrame(func(b []byte) (int, error) {
		if len(b) < 24 {
			return 0, nil
		}
		if b[0] != 0x81 {
			return 0, fmt.Errorf("%w: not a binary-protocol response to SASL authentication", ErrProtocol)
		}
		n := 24 + int(binary.BigEndian.Uint32(b[8:]))
		if n > 4096 {
			return 0, fmt.Errorf("%w: a %d-byte answer to SASL authentication", ErrProtocol, n)
		}
		if len(b) < n {
			return 0, nil
		}
		return n, nil
	})
	if err != nil {
		return transportError(err)
	}
	switch status := binary.BigEndian.Uint16(pkt[6:]); status {
	case 0:
		return nil
	case binStatusAuthError:
		cn.Close()
		return fmt.Errorf("%w: %s refused user %q (SASL PLAIN)", ErrAuth, cn.Addr(), c.username)
	case binStatusUnknown:
		cn.Close()
		return fmt.Errorf("%w: %s does not support SASL authentication (memcached without -S?)", ErrAuth, cn.Addr())
	default:
		cn.Close()
		return fmt.Errorf("%w: %s answered SASL PLAIN authentication with status 0x%02x", ErrAuth, cn.Addr(), status)
	}
}

func (c *Client) asciiAuth(cn *conn.Conn) error {
	buf := cn.Buffer()
	buf = fmt.Appendf(buf, "set %s 0 0 %d\r\n", asciiAuthKey, len(c.username)+1+len(c.password))
	buf = append(buf, c.username...)
	buf = append(buf, ' ')
	buf = append(buf, c.password...)
	buf = append(buf, "\r\n"...)
	err := cn.Send(buf)
	clear(buf)
	if err != nil {
		return transportError(err)
	}
	line, err := cn.RecvFrame(func(b []byte) (int, error) {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			return i + 1, nil
		}
		if len(b) > 1024 {
			return 0, fmt.Errorf("%w: a line over 1 KiB in answer to authentication", ErrProtocol)
		}
		return 0, nil
	})
	if err != nil {
		return transportError(err)
	}
	reply := string(bytes.TrimRight(line, "\r\n"))
	switch {
	case reply == "STORED":
		return nil
	case strings.HasPrefix(reply, "CLIENT_ERROR authentication failure"):
		cn.Close()
		return fmt.Errorf("%w: %s refused user %q (ASCII authentication)", ErrAuth, cn.Addr(), c.username)
	case strings.HasPrefix(reply, "CLIENT_ERROR bad command line format"):
		cn.Close()
		return fmt.Errorf("%w: %s does not take ASCII authentication (memcached without -Y?); "+
			"the credentials were not stored", ErrAuth, cn.Addr())
	default:
		cn.Close()
		if len(reply) > 80 {
			reply = reply[:80]
		}
		return fmt.Errorf("%w: %s answered %q to ASCII authentication", ErrAuth, cn.Addr(), reply)
	}
}

// speaksTLS reports whether s completes a TLS handshake (any certificate
// accepted: it only diagnoses a plaintext client talking to a TLS-only
// server, after such a server closed a new connection).
func (c *Client) speaksTLS(s *server) bool {
	opts := c.connOpts
	opts.Codec = c.codec
	opts.TLS = &conn.TLSConfig{Config: &tls.Config{InsecureSkipVerify: true}}
	cn, err := conn.Dial(s.addr, opts)
	if err != nil {
		return false
	}
	cn.Close()
	return true
}
