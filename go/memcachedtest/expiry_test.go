package memcachedtest

import (
	"strconv"
	"testing"
	"time"
)

// testEpoch is where manual clocks start: a whole second, well past 30
// days after 1970 so absolute exptimes can be told from relative ones.
var testEpoch = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// clockServer starts a server on a manual clock.
func clockServer(t *testing.T) (*Server, *ManualClock, *wire) {
	t.Helper()
	clock := NewManualClock(testEpoch)
	s := startServer(t, Config{Clock: clock})
	return s, clock, dialServer(t, s)
}

func TestExpiryRelativeSeconds(t *testing.T) {
	s, clock, w := clockServer(t)
	w.do("set k 0 10 1\r\nx\r\n", "STORED")
	clock.Advance(9 * time.Second)
	w.do("get k\r\n", "VALUE k 0 1", "x", "END")
	clock.Advance(time.Second)
	w.do("get k\r\n", "END")
	if st := s.Stats(); st.GetExpired != 1 || st.CurrItems != 0 {
		t.Errorf("after expiry: get_expired %d curr_items %d, want 1 and 0", st.GetExpired, st.CurrItems)
	}
}

func TestExpiryThirtyDaysIsTheLastRelativeValue(t *testing.T) {
	_, clock, w := clockServer(t)
	w.do("set k 0 2592000 1\r\nx\r\n", "STORED")
	clock.Advance(2591999 * time.Second)
	w.do("mg k t\r\n", "HD t1")
	clock.Advance(time.Second)
	w.do("mg k\r\n", "EN")
}

func TestExpiryAbsoluteUnixTime(t *testing.T) {
	_, clock, w := clockServer(t)
	at := testEpoch.Unix() + 20
	w.do("set k 0 "+itoa(at)+" 1\r\nx\r\n", "STORED")
	w.do("mg k t\r\n", "HD t20")
	clock.Advance(19 * time.Second)
	w.do("get k\r\n", "VALUE k 0 1", "x", "END")
	clock.Advance(time.Second)
	w.do("get k\r\n", "END")

	// An absolute time in the past, or a negative exptime, expires at once.
	w.do("set p 0 "+itoa(testEpoch.Unix()-1)+" 1\r\nx\r\nget p\r\n", "STORED", "END")
	w.do("set n 0 -1 1\r\nx\r\nget n\r\n", "STORED", "END")
}

func TestExpiryTouchAndGatReplaceTheTTL(t *testing.T) {
	_, clock, w := clockServer(t)
	w.do("set a 0 5 1\r\nx\r\nset b 0 5 1\r\ny\r\nset c 0 5 1\r\nz\r\n", "STORED", "STORED", "STORED")
	w.do("touch a 100\r\n", "TOUCHED")
	w.do("gat 100 b\r\n", "VALUE b 0 1", "y", "END")
	w.do("touch c 0\r\n", "TOUCHED")
	clock.Advance(50 * time.Second)
	w.do("get a b c\r\n", "VALUE a 0 1", "x", "VALUE b 0 1", "y", "VALUE c 0 1", "z", "END")
	clock.Advance(50 * time.Second)
	w.do("get a b c\r\n", "VALUE c 0 1", "z", "END")
}

func TestExpiryMetaTTLFlags(t *testing.T) {
	_, clock, w := clockServer(t)
	w.do("ms k 1 T60\r\nx\r\n", "HD")
	clock.Advance(10 * time.Second)
	w.do("mg k t\r\n", "HD t50")
	w.do("mg k T5 t\r\n", "HD t5")
	w.do("ma n N30 J1 t\r\n", "HD t30")
	clock.Advance(5 * time.Second)
	w.do("mg k\r\n", "EN")
	w.do("ma n t\r\n", "HD t25")
	w.do("md n I T3\r\n", "HD")
	clock.Advance(3 * time.Second)
	w.do("mg n\r\n", "EN")
}

func TestExpiryBinary(t *testing.T) {
	_, clock, w := clockServer(t)
	w.binDo(binReq{opcode: opSet, key: "k", value: []byte("v"), extras: setExtras(0, 10)}, statusOK)
	w.binDo(binReq{opcode: opTouch, key: "k", extras: u32(30)}, statusOK)
	clock.Advance(29 * time.Second)
	w.binDo(binReq{opcode: opGet, key: "k"}, statusOK)
	clock.Advance(time.Second)
	w.binDo(binReq{opcode: opGet, key: "k"}, statusKeyENOENT)
	// incr creating a counter honours the expiration too.
	w.binDo(binReq{opcode: opIncrement, key: "n", extras: deltaExtras(1, 5, 2)}, statusOK)
	clock.Advance(2 * time.Second)
	w.binDo(binReq{opcode: opGet, key: "n"}, statusKeyENOENT)
}

func TestFlushAllWithDelay(t *testing.T) {
	_, clock, w := clockServer(t)
	w.do("set old 0 0 1\r\nx\r\n", "STORED")
	w.do("flush_all 10\r\n", "OK")
	w.do("set mid 0 0 1\r\ny\r\n", "STORED")
	// memcached's oldest_live is realtime(10) - 1: the flush takes effect
	// in the ninth second, and drops what is stored during that second too.
	clock.Advance(8 * time.Second)
	w.do("get old mid\r\n", "VALUE old 0 1", "x", "VALUE mid 0 1", "y", "END")
	clock.Advance(time.Second)
	w.do("get old mid\r\n", "END")
	w.do("set same 0 0 1\r\nz\r\n", "STORED")
	w.do("get same\r\n", "END")
	clock.Advance(time.Second)
	w.do("set new 0 0 1\r\nz\r\n", "STORED")
	clock.Advance(time.Hour)
	w.do("get new\r\n", "VALUE new 0 1", "z", "END")

	// "flush_all 1" is due at once (memcached: oldest_live is now).
	w.do("set one 0 0 1\r\nx\r\n", "STORED")
	w.do("flush_all 1\r\n", "OK")
	w.do("get one\r\n", "END")
	clock.Advance(time.Second)

	// An absolute time works too, and an immediate flush overrides a
	// pending one.
	w.do("flush_all "+itoa(testEpoch.Add(2*time.Hour).Unix())+"\r\n", "OK")
	w.do("flush_all 0\r\n", "OK")
	w.do("set later 0 0 1\r\nz\r\n", "STORED")
	clock.Advance(2 * time.Hour)
	w.do("get later\r\n", "VALUE later 0 1", "z", "END")
}

func TestFlushWithDelayBinary(t *testing.T) {
	_, clock, w := clockServer(t)
	w.binDo(binReq{opcode: opSet, key: "k", value: []byte("v"), extras: setExtras(0, 0)}, statusOK)
	w.binDo(binReq{opcode: opFlush, extras: u32(5)}, statusOK)
	w.binDo(binReq{opcode: opGet, key: "k"}, statusOK)
	clock.Advance(3 * time.Second)
	w.binDo(binReq{opcode: opGet, key: "k"}, statusOK)
	clock.Advance(time.Second) // due a second early, as in memcached
	w.binDo(binReq{opcode: opGet, key: "k"}, statusKeyENOENT)
}

func TestAdvanceClockWorksOnTheSystemClock(t *testing.T) {
	s := startServer(t, Config{})
	w := dialServer(t, s)
	w.do("set k 0 100 1\r\nx\r\n", "STORED")
	s.AdvanceClock(101 * time.Second)
	w.do("get k\r\n", "END")
	if up := s.Stats().Uptime; up < 101 {
		t.Errorf("uptime %d after advancing 101s", up)
	}
}
