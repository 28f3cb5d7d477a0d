package bind

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/omcache/omcache/go/client"
)

// Status codes returned across the boundary. Python maps them to exception
// classes in python/omcache/_engine.py: keep the two lists in sync.
const (
	StatusOK            = 0
	StatusMiss          = 1
	StatusExists        = 2
	StatusNotStored     = 3
	StatusTooLarge      = 4
	StatusInvalidArgs   = 5
	StatusDeltaBadValue = 6
	StatusBadKey        = 7
	StatusServerError   = 8
	StatusConnection    = 9
	StatusTimeout       = 10
	StatusProtocol      = 11
	StatusNoServers     = 12
	StatusClosed        = 13
	StatusBadHandle     = 14
	StatusBadConfig     = 15
	StatusInternal      = 16
	StatusNotSupported  = 17
	StatusServerDown    = 18
	StatusServerDead    = 19
	StatusWrongProtocol = 20
	StatusAuth          = 21
	StatusTLS           = 22
)

// statusTable maps the core's sentinel errors to boundary status codes, in
// the order errors.Is is tried (more specific first).
var statusTable = []struct {
	err  error
	code int
}{
	{client.ErrCacheMiss, StatusMiss},
	{client.ErrKeyExists, StatusExists},
	{client.ErrNotStored, StatusNotStored},
	{client.ErrTooLarge, StatusTooLarge},
	{client.ErrInvalidArguments, StatusInvalidArgs},
	{client.ErrDeltaBadValue, StatusDeltaBadValue},
	{client.ErrMalformedKey, StatusBadKey},
	// Before the transport errors: these may wrap the failure they explain.
	{client.ErrWrongProtocol, StatusWrongProtocol},
	{client.ErrAuth, StatusAuth},
	{client.ErrTLS, StatusTLS},
	{client.ErrNotSupported, StatusNotSupported},
	{client.ErrServerError, StatusServerError},
	{client.ErrTimeout, StatusTimeout},
	{client.ErrServerDown, StatusServerDown},
	{client.ErrServerDead, StatusServerDead},
	{client.ErrConnection, StatusConnection},
	{client.ErrProtocol, StatusProtocol},
	{client.ErrNoServers, StatusNoServers},
	{client.ErrClosed, StatusClosed},
	{errBadConfig, StatusBadConfig},
	{errBadHandle, StatusBadHandle},
	{errInternal, StatusInternal},
	{errNotSupported, StatusNotSupported},
}

var (
	errBadConfig    = errors.New("invalid configuration")
	errBadHandle    = errors.New("invalid or closed client handle")
	errInternal     = errors.New("internal engine error")
	errNotSupported = errors.New("not supported")
)

// statusOf returns the boundary status code for err (StatusOK for nil).
func statusOf(err error) int {
	if err == nil {
		return StatusOK
	}
	for _, e := range statusTable {
		if errors.Is(err, e.err) {
			return e.code
		}
	}
	return StatusInternal
}

// details keeps the messages of recent errors so that Python can fetch the
// text only when it raises; a bounded ring, so unfetched details cannot pile up.
var details struct {
	sync.Mutex
	next int64
	ring [1024]struct {
		token int64
		msg   string
	}
}

func saveDetail(msg string) int64 {
	details.Lock()
	defer details.Unlock()
	details.next++
	if details.next >= 1<<40 {
		details.next = 1
	}
	slot := &details.ring[details.next%int64(len(details.ring))]
	slot.token = details.next
	slot.msg = msg
	return details.next
}

// result encodes err as an int result: the status code in the low 8 bits and,
// for errors, a token for ErrorDetail in the bits above.
func result(err error) int64 {
	code := statusOf(err)
	if code == StatusOK {
		return 0
	}
	return int64(code) | saveDetail(cleanMessage(err.Error()))<<8
}

// cleanMessage makes an error text safe to cross as a C string: valid UTF-8, no NULs.
func cleanMessage(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ReplaceAll(s, "\x00", "\\x00")
}

// ErrorDetail returns the message saved for token by a failed call, or a
// generic text if it was already overwritten by newer errors.
func ErrorDetail(token int64) (msg string) {
	defer func() {
		if r := recover(); r != nil {
			msg = "internal engine error while fetching error detail"
		}
	}()
	if token > 0 {
		details.Lock()
		defer details.Unlock()
		if slot := &details.ring[token%int64(len(details.ring))]; slot.token == token {
			return slot.msg
		}
	}
	return fmt.Sprintf("error detail %d no longer available", token)
}

// packedError returns a packed result for err: the status code byte followed
// by the message.
func packedError(err error) []byte {
	msg := cleanMessage(err.Error())
	out := make([]byte, 1, 1+len(msg))
	out[0] = byte(statusOf(err))
	return append(out, msg...)
}

// recoverInt turns a panic into a StatusInternal result; use as
// `defer recoverInt(&ret)` in every exported function returning int64.
func recoverInt(ret *int64) {
	if r := recover(); r != nil {
		*ret = result(fmt.Errorf("%w: panic: %v", errInternal, r))
	}
}

// recoverPacked is recoverInt for functions returning a packed []byte.
func recoverPacked(ret *[]byte) {
	if r := recover(); r != nil {
		*ret = packedError(fmt.Errorf("%w: panic: %v", errInternal, r))
	}
}
