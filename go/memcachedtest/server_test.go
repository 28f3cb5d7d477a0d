package memcachedtest

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
)

func TestUnixSocketOnly(t *testing.T) {
	sock := tempSocketPath(t)
	s := startServer(t, Config{UnixPath: sock})
	if s.Addr() != "" || s.Port() != 0 || s.UnixPath() != sock {
		t.Fatalf("Addr %q Port %d UnixPath %q", s.Addr(), s.Port(), s.UnixPath())
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != DefaultUnixPerm {
		t.Fatalf("socket file: %v %v", fi, err)
	}
	w := dial(t, "unix", sock)
	w.do("set k 0 0 1\r\nx\r\nget k\r\n", "STORED", "VALUE k 0 1", "x", "END")
	s.Close()
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file left behind after Close: %v", err)
	}
}

func TestUnixAndTCPShareTheCache(t *testing.T) {
	sock := tempSocketPath(t)
	s := startServer(t, Config{Addr: "127.0.0.1:0", UnixPath: sock, UnixPerm: 0o777})
	dial(t, "unix", sock).do("set k 0 0 1\r\nu\r\n", "STORED")
	dialServer(t, s).do("get k\r\n", "VALUE k 0 1", "u", "END")
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o777 {
		t.Fatalf("socket mode: %v %v", fi, err)
	}
}

func TestStaleSocketFileIsReplaced(t *testing.T) {
	sock := tempSocketPath(t)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	s := startServer(t, Config{UnixPath: sock})
	dial(t, "unix", s.UnixPath()).do("version\r\n", "VERSION "+DefaultVersion)
}

func TestStartRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{MaxBytes: -1},
		{ItemSizeMax: 10},
		{MaxConns: -1},
		{Addr: "127.0.0.1:notaport"},
		{UnixPath: "/nonexistent-dir/x/mc.sock"},
	} {
		if s, err := Start(cfg); err == nil {
			s.Close()
			t.Errorf("Start(%+v) succeeded", cfg)
		}
	}
}

func TestCloseDisconnectsClients(t *testing.T) {
	s, err := Start(Config{})
	if err != nil {
		t.Fatal(err)
	}
	w := dialServer(t, s)
	w.do("version\r\n", "VERSION "+DefaultVersion)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.r.ReadByte(); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("read after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if c, err := net.Dial("tcp", s.Addr()); err == nil {
		c.Close()
		t.Fatal("server still accepts after Close")
	}
}

func TestMaxConns(t *testing.T) {
	s := startServer(t, Config{MaxConns: 2})
	a, b := dialServer(t, s), dialServer(t, s)
	a.do("version\r\n", "VERSION "+DefaultVersion)
	b.do("version\r\n", "VERSION "+DefaultVersion)
	c := dialServer(t, s)
	c.expect(msgTooManyConns)
	c.expectClosed()
	if st := s.Stats(); st.RejectedConnections != 1 || st.CurrConnections != 2 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestStatsCountTraffic(t *testing.T) {
	s := startServer(t, Config{})
	w := dialServer(t, s)
	w.do("set a 0 0 1\r\n1\r\nget a b\r\nincr a 1\r\ndecr x 1\r\ndelete b\r\ntouch a 1\r\n",
		"STORED", "VALUE a 0 1", "1", "END", "2", "NOT_FOUND", "NOT_FOUND", "TOUCHED")
	st := s.Stats()
	want := Stats{CmdSet: 1, CmdGet: 2, GetHits: 1, GetMisses: 1, IncrHits: 1, DecrMisses: 1,
		DeleteMisses: 1, TouchHits: 1, CmdTouch: 1, CurrItems: 1, TotalItems: 1, CurrConnections: 1,
		TotalConnections: 1}
	got := Stats{CmdSet: st.CmdSet, CmdGet: st.CmdGet, GetHits: st.GetHits, GetMisses: st.GetMisses,
		IncrHits: st.IncrHits, DecrMisses: st.DecrMisses, DeleteMisses: st.DeleteMisses,
		TouchHits: st.TouchHits, CmdTouch: st.CmdTouch, CurrItems: st.CurrItems, TotalItems: st.TotalItems,
		CurrConnections: st.CurrConnections, TotalConnections: st.TotalConnections}
	if got != want {
		t.Fatalf("Stats() = %+v\nwant %+v", got, want)
	}
	if st.BytesRead == 0 || st.BytesWritten == 0 || st.PID != int64(os.Getpid()) || st.LimitMaxbytes != DefaultMaxBytes {
		t.Fatalf("Stats() = %+v", st)
	}
	s.FlushAll()
	if s.Len() != 0 || s.Stats().CmdFlush != 1 {
		t.Fatalf("after FlushAll: %d items, %+v", s.Len(), s.Stats())
	}
}
