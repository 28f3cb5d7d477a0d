package client

import "github.com/omcache/omcache/go/conn"

// LargeValue is the size from which a value read from a server arrives in
// a buffer of its own, which ReleaseValue can take back.
const LargeValue = conn.LargeValue

// ReleaseValue gives back the memory of v, a value of LargeValue bytes or
// more that a Get-family call returned, once the caller has copied it
// elsewhere: a later large value is then read into it instead of a new
// allocation. The caller must not use v, nor anything sliced from it,
// afterwards. Smaller values are ignored.
func ReleaseValue(v []byte) { conn.ReleaseValue(v) }

// SocketObserver is told about every socket the client opens and closes.
type SocketObserver = conn.SocketObserver

// SetSocketObserver installs o (nil removes it) for every connection opened
// from now on and for the closing of those already open: a binding that
// must close the client's sockets in a forked child, without running any
// Go code there, keeps its table of them with it.
func SetSocketObserver(o SocketObserver) { conn.SetSocketObserver(o) }
