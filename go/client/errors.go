package client

import (
	"errors"
	"fmt"
	"io"
	"syscall"

	"github.com/omcache/omcache/go/conn"
	"github.com/omcache/omcache/go/proto"
)

// Errors returned by the client. Compare with errors.Is: transport errors
// wrap both one of these and their cause (a *ServerError, a syscall.Errno,
// io.ErrUnexpectedEOF...).
var (
	// ErrCacheMiss means the key was not on the server: Get, Gat, Touch,
	// Delete, Incr/Decr without create, and a CAS store on a missing key.
	ErrCacheMiss = errors.New("omcache: cache miss")

	// ErrKeyExists means a CAS store or delete lost: the item changed since
	// its CAS was read.
	ErrKeyExists = errors.New("omcache: key exists (cas mismatch)")

	// ErrNotStored means a conditional store's condition failed: Add on an
	// existing key, Replace/Append/Prepend on a missing one.
	ErrNotStored = errors.New("omcache: item not stored")

	// ErrTooLarge means the value is over the server's item size limit
	// (memcached -I). The connection stays usable.
	ErrTooLarge = errors.New("omcache: value too large")

	// ErrInvalidArguments means the server rejected the request's arguments,
	// or a nil item was passed.
	ErrInvalidArguments = errors.New("omcache: invalid arguments")

	// ErrDeltaBadValue means Incr/Decr found a value that is not a decimal
	// number of at most 20 digits.
	ErrDeltaBadValue = errors.New("omcache: incr/decr on a non-numeric value")

	// ErrMalformedKey means a key is empty, longer than 250 bytes, or holds
	// a byte <= 0x20 (space, control) or 0x7f. Nothing was sent.
	ErrMalformedKey = errors.New("omcache: malformed key")

	// ErrServerError means the server answered a status without a more
	// specific error; the error is a *ServerError carrying the status.
	ErrServerError = errors.New("omcache: server error")

	// ErrTimeout means a connect or an exchange ran past its timeout. The
	// connection was closed.
	ErrTimeout = errors.New("omcache: timeout")

	// ErrConnection means the server could not be reached or the connection
	// failed (refused, reset, closed mid-response). The cause is wrapped.
	ErrConnection = errors.New("omcache: connection error")

	// ErrProtocol means the server sent bytes that are not a valid answer to
	// the request. The connection was closed.
	ErrProtocol = errors.New("omcache: protocol error")

	// ErrNoServers means the client has no server for the key: the server
	// list is empty or the Selector picked none.
	ErrNoServers = errors.New("omcache: no servers")

	// ErrClosed means the Client was closed.
	ErrClosed = errors.New("omcache: client closed")

	// ErrServerDown means nothing was sent because the key's server failed
	// recently and is left alone until its RetryTimeout has passed. The
	// error is a *ServerDownError; it also matches ErrConnection.
	ErrServerDown = errors.New("omcache: server down after a failure")

	// ErrWrongProtocol means the server does not speak the client's
	// protocol: it answered in another one, refused the protocol's
	// commands (memcached before 1.6 answers ERROR to meta commands), or
	// closed a new connection at its first request without a word (what
	// twemproxy does with meta and binary requests). It also matches
	// ErrProtocol. Choose another Options.Protocol.
	ErrWrongProtocol = errors.New("omcache: the server does not speak this protocol")

	// ErrNotSupported means the client's protocol cannot express the
	// request (a CAS append in the text protocol); nothing was sent.
	ErrNotSupported = errors.New("omcache: not supported by the protocol")

	// ErrServerDead means nothing was sent because the key's server is
	// marked dead and failover is off (or no server is live). The error is
	// a *ServerDownError; it also matches ErrConnection.
	ErrServerDead = errors.New("omcache: server marked dead")
)

// ServerError is a status the server answered that has no sentinel of its
// own (out of memory, unknown command, busy...). It matches ErrServerError
// with errors.Is.
type ServerError struct {
	Status  proto.Status
	Message string // the text the server sent with the status
}

func (e *ServerError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("omcache: server error: %v", e.Status)
	}
	return fmt.Sprintf("omcache: server error: %v: %s", e.Status, e.Message)
}

// Unwrap makes errors.Is(err, ErrServerError) true.
func (e *ServerError) Unwrap() error { return ErrServerError }

// statusErrors is the one place reply statuses map to sentinels. Commands
// may then reinterpret a sentinel (Add turns ErrKeyExists into ErrNotStored).
var statusErrors = [...]error{
	proto.StatusMiss:          ErrCacheMiss,
	proto.StatusExists:        ErrKeyExists,
	proto.StatusTooLarge:      ErrTooLarge,
	proto.StatusInvalid:       ErrInvalidArguments,
	proto.StatusNotStored:     ErrNotStored,
	proto.StatusDeltaBadValue: ErrDeltaBadValue,
}

// statusError returns the error for r, a reply with a status other than
// OK, to a request for op on cn. A server that does not know a command of
// the meta protocol does not speak it.
func statusError(cn *conn.Conn, op proto.Op, r *proto.Reply) error {
	if r.Status == proto.StatusUnknownCommand && cn.Codec().Name() == "meta" && echoesSeq(op) {
		return fmt.Errorf("%w (%w): %s answered ERROR to a meta command: it does not speak the meta protocol "+
			"(memcached before 1.6, or a proxy): use the text protocol", ErrProtocol, ErrWrongProtocol, cn.Addr())
	}
	if op != proto.OpStats && int(r.Status) < len(statusErrors) && statusErrors[r.Status] != nil {
		return statusErrors[r.Status]
	}
	return &ServerError{Status: r.Status, Message: string(r.Message)}
}

// wrongProtocol explains err, the failure of a new connection that closed
// at its first request, for op, without answering: a server that does not
// speak the protocol, or (text, which every memcached speaks) does not
// support the command: twemproxy routes only commands on keys.
func wrongProtocol(cn *conn.Conn, op proto.Op, err error) error {
	if !cn.Codec().Pipelined() {
		return fmt.Errorf("%w: %s closed the connection at a %v request without answering: it does not support "+
			"this command (a proxy such as twemproxy routes only commands on keys): %w", ErrServerError, cn.Addr(), op, err)
	}
	return fmt.Errorf("%w (%w): %s closed a new connection at its first %s-protocol request without answering: "+
		"it does not speak that protocol (a proxy such as twemproxy speaks only text): %w",
		ErrProtocol, ErrWrongProtocol, cn.Addr(), cn.Codec().Name(), err)
}

// transportError classifies an error from package conn or a failed dial.
func transportError(err error) error {
	switch {
	case errors.Is(err, conn.ErrTimeout):
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	case errors.Is(err, conn.ErrTLSConfig):
		return fmt.Errorf("%w: %w", ErrTLS, err)
	case errors.Is(err, proto.ErrWrongProtocol):
		return fmt.Errorf("%w (%w): %w", ErrProtocol, ErrWrongProtocol, err)
	case errors.Is(err, proto.ErrMalformed):
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	default:
		return fmt.Errorf("%w: %w", ErrConnection, err)
	}
}

// protocolError reports a well-formed packet that is not a valid answer.
func protocolError(addr, format string, args ...any) error {
	return fmt.Errorf("%w: from %s: %s", ErrProtocol, addr, fmt.Sprintf(format, args...))
}

// staleConnError reports whether err is what a pooled connection that the
// server closed while idle gives on first use.
func staleConnError(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
