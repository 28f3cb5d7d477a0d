package memcachedtest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseFault(t *testing.T) {
	tests := []struct {
		spec    string
		want    Fault
		wantErr bool
	}{
		{spec: "", want: Fault{}},
		{spec: "none", want: Fault{}},
		{spec: "delay=200ms", want: Fault{Delay: 200 * time.Millisecond}},
		{spec: "stall", want: Fault{Stall: true}},
		{spec: "close-mid-response", want: Fault{CloseMidResponse: true}},
		{spec: "close-mid-response=10", want: Fault{CloseMidResponse: true, CloseAfterBytes: 10}},
		{spec: "corrupt", want: Fault{Corrupt: true}},
		{spec: "refuse", want: Fault{Refuse: true}},
		{spec: "hangup", want: Fault{Hangup: true}},
		{spec: "blackhole", want: Fault{Blackhole: true}},
		{spec: "slow-read=5ms", want: Fault{SlowRead: 5 * time.Millisecond}},
		{spec: "delay=1s, corrupt;stall", want: Fault{Delay: time.Second, Corrupt: true, Stall: true}},
		{spec: "delay", wantErr: true},
		{spec: "delay=soon", wantErr: true},
		{spec: "delay=-1s", wantErr: true},
		{spec: "stall=1", wantErr: true},
		{spec: "close-mid-response=0", wantErr: true},
		{spec: "close-mid-response=x", wantErr: true},
		{spec: "explode", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseFault(tt.spec)
		if tt.wantErr {
			if err == nil {
				t.Errorf("ParseFault(%q) = %+v, want an error", tt.spec, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseFault(%q) = %+v, %v; want %+v", tt.spec, got, err, tt.want)
			continue
		}
		back, err := ParseFault(got.String())
		if err != nil || back != got {
			t.Errorf("ParseFault(%q.String() = %q) = %+v, %v", tt.spec, got.String(), back, err)
		}
	}
	if s := (Fault{}).String(); s != "none" {
		t.Errorf("zero Fault prints %q, want none", s)
	}
}

func setFault(t *testing.T, s *Server, spec string) {
	t.Helper()
	if err := s.SetFaultString(spec); err != nil {
		t.Fatalf("SetFaultString(%q): %v", spec, err)
	}
}

func clearFaults(t *testing.T, s *Server) {
	t.Helper()
	if err := s.ClearFaults(); err != nil {
		t.Fatalf("ClearFaults: %v", err)
	}
}

func TestFaultDelay(t *testing.T) {
	s := startServer(t, Config{})
	w := dialServer(t, s)
	w.do("set k 0 0 1\r\nx\r\n", "STORED")
	// A delay of a second, so that an answer without it can be told apart
	// with room: the lower bound is exact under any load, the upper one
	// leaves 500 ms for a loaded machine under -race.
	setFault(t, s, "delay=1s")
	start := time.Now()
	w.do("get k\r\n", "VALUE k 0 1", "x", "END")
	if d := time.Since(start); d < time.Second {
		t.Fatalf("answer came after %v, want at least 1s", d)
	}
	clearFaults(t, s)
	start = time.Now()
	w.do("get k\r\n", "VALUE k 0 1", "x", "END")
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("answer without fault took %v", d)
	}
}

func TestFaultStallDropsRequests(t *testing.T) {
	s := startServer(t, Config{})
	w, b := dialServer(t, s), dialServer(t, s)
	w.do("set k 0 0 1\r\nx\r\n", "STORED")
	setFault(t, s, "stall")
	w.send("set z 0 0 1\r\ny\r\nget k\r\n")
	b.sendBin(binReq{opcode: opGet, key: "k"})
	w.expectSilence(300 * time.Millisecond)
	b.expectSilence(50 * time.Millisecond)
	clearFaults(t, s)
	// The stalled set never ran, and both connections are still in step.
	w.do("get z k\r\n", "VALUE k 0 1", "x", "END")
	b.binDo(binReq{opcode: opNoop, opaque: 1}, statusOK)
}

func TestFaultCloseMidResponse(t *testing.T) {
	value := strings.Repeat("v", 100)
	full := "VALUE k 0 100\r\n" + value + "\r\nEND\r\n"
	tests := []struct {
		spec string
		want int
	}{
		{"close-mid-response", len(full) / 2},
		{"close-mid-response=10", 10},
		{"close-mid-response=100000", len(full) - 1},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			s := startServer(t, Config{})
			w := dialServer(t, s)
			w.do("set k 0 0 100\r\n"+value+"\r\n", "STORED")
			setFault(t, s, tt.spec)
			w.send("get k\r\n")
			got, err := io.ReadAll(w.r)
			if err != nil && !isReset(err) {
				t.Fatalf("read: %v", err)
			}
			if string(got) != full[:tt.want] {
				t.Fatalf("got %d bytes %q, want the first %d of the response", len(got), got, tt.want)
			}
		})
	}
	t.Run("binary", func(t *testing.T) {
		s := startServer(t, Config{})
		w := dialServer(t, s)
		w.binDo(binReq{opcode: opSet, key: "k", value: []byte(value), extras: setExtras(0, 0)}, statusOK)
		setFault(t, s, "close-mid-response")
		w.sendBin(binReq{opcode: opGet, key: "k"})
		got, _ := io.ReadAll(w.r)
		if len(got) != (24+4+100)/2 || got[0] != binaryResponseMagic {
			t.Fatalf("got %d bytes starting %x", len(got), got[:min(len(got), 4)])
		}
	})
}

func TestFaultCorrupt(t *testing.T) {
	s := startServer(t, Config{})
	w, b := dialServer(t, s), dialServer(t, s)
	w.do("set k 0 0 3\r\nabc\r\n", "STORED")
	setFault(t, s, "corrupt")

	full := "VALUE k 0 3\r\nabc\r\nEND\r\n"
	w.send("get k\r\n")
	got := make([]byte, len(full))
	if _, err := io.ReadFull(w.r, got); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(got[:len(got)-2], []byte("\r\n")) || !bytes.HasSuffix(got, []byte("\r\n")) ||
		bytes.Contains(got, []byte("VALUE")) || bytes.Contains(got, []byte("END")) {
		t.Fatalf("text garbage %q should be one CRLF line with no status words", got)
	}
	b.sendBin(binReq{opcode: opGet, key: "k"})
	hdr := make([]byte, 24+4+3)
	if _, err := io.ReadFull(b.r, hdr); err != nil {
		t.Fatal(err)
	}
	if hdr[0] == binaryResponseMagic {
		t.Fatalf("binary garbage kept the response magic: %x", hdr)
	}
	clearFaults(t, s)
	w.do("get k\r\n", "VALUE k 0 3", "abc", "END")
}

func TestFaultRefuse(t *testing.T) {
	sock := tempSocketPath(t)
	s := startServer(t, Config{Addr: "127.0.0.1:0", UnixPath: sock})
	w := dialServer(t, s)
	w.do("set k 0 0 1\r\nx\r\n", "STORED")
	setFault(t, s, "refuse")
	for _, target := range []struct{ network, addr string }{{"tcp", s.Addr()}, {"unix", sock}} {
		c, err := net.DialTimeout(target.network, target.addr, ioTimeout)
		if err == nil {
			c.Close()
			t.Fatalf("%s dial succeeded while refusing", target.network)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("%s dial: %v, want ECONNREFUSED", target.network, err)
		}
	}
	// Established connections are not affected.
	w.do("stats\r\n", "STAT pid "+itoa(int64(s.pid)))
	clearFaults(t, s)
	dial(t, "tcp", s.Addr()).do("get k\r\n", "VALUE k 0 1", "x", "END")
	dial(t, "unix", sock).do("get k\r\n", "VALUE k 0 1", "x", "END")

	// Closing while refusing still cleans up the socket file.
	setFault(t, s, "refuse")
	s.Close()
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file after Close: %v", err)
	}
}

func TestFaultHangup(t *testing.T) {
	s := startServer(t, Config{})
	setFault(t, s, "hangup")
	w := dialServer(t, s)
	w.send("version\r\n")
	w.expectClosed()
	clearFaults(t, s)
	dialServer(t, s).do("version\r\n", "VERSION "+DefaultVersion)
}

func TestFaultBlackhole(t *testing.T) {
	s := startServer(t, Config{})
	old := dialServer(t, s)
	old.do("version\r\n", "VERSION "+DefaultVersion)
	setFault(t, s, "blackhole")

	w := dialServer(t, s)
	w.send("version\r\n")
	old.send("version\r\n")
	w.expectSilence(300 * time.Millisecond)
	old.expectSilence(50 * time.Millisecond)

	// Nothing is read, so a client's writes back up and time out.
	flood := dialServer(t, s)
	flood.c.SetWriteDeadline(time.Now().Add(time.Second))
	n, err := flood.c.Write(make([]byte, 64<<20))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("writing 64 MiB to a blackholed connection: %d bytes, %v; want a timeout", n, err)
	}
	flood.c.Close()

	clearFaults(t, s)
	w.expect("VERSION " + DefaultVersion)
	old.expect("VERSION " + DefaultVersion)
}

func TestFaultSlowRead(t *testing.T) {
	s := startServer(t, Config{})
	w := dialServer(t, s)
	setFault(t, s, "slow-read=50ms")
	// The read already waiting for this request began before the fault.
	w.do("version\r\n", "VERSION "+DefaultVersion)
	value := strings.Repeat("s", 4*slowReadChunk)
	start := time.Now()
	w.do("set k 0 0 "+itoa(int64(len(value)))+"\r\n"+value+"\r\n", "STORED")
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("a %d-byte request was read in %v, want at least 4 reads of 50ms", len(value)+20, d)
	}
}

func TestFaultFollowsTheCurrentSetting(t *testing.T) {
	s := startServer(t, Config{})
	setFault(t, s, "delay=1s,corrupt")
	if f := s.Fault(); f.Delay != time.Second || !f.Corrupt {
		t.Fatalf("Fault() = %+v", f)
	}
	if err := s.SetFault(Fault{Stall: true}); err != nil {
		t.Fatal(err)
	}
	if f := s.Fault(); f != (Fault{Stall: true}) {
		t.Fatalf("SetFault replaces, got %+v", f)
	}
	if err := s.SetFaultString("bogus"); err == nil {
		t.Fatal("SetFaultString accepted bogus")
	}
	s.Close()
	if err := s.ClearFaults(); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("ClearFaults after Close: %v", err)
	}
}
