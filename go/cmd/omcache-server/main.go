// Command omcache-server runs omcache's embedded memcached-compatible test
// server (package memcachedtest) until SIGINT or SIGTERM:
//
//	omcache-server -listen 127.0.0.1:11211 [-unix PATH] [-m MB] [-I SIZE]
//
// It prints the addresses it serves on, one per line ("tcp 127.0.0.1:11211",
// "unix /tmp/mc.sock"), so scripts can start it on port 0 and read the port.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/omcache/omcache/go/memcachedtest"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "omcache-server:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("omcache-server", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:11211", `TCP address to serve on ("" for none, port 0 for a free port)`)
	unixPath := fs.String("unix", "", "also serve on this unix socket")
	megabytes := fs.Int64("m", 64, "memory limit for items, in megabytes (memcached's -m)")
	itemSize := fs.String("I", "1m", "largest item, e.g. 512k, 1m, 2m (memcached's -I)")
	maxConns := fs.Int("c", memcachedtest.DefaultMaxConns, "maximum simultaneous connections")
	noEvict := fs.Bool("M", false, "return errors instead of evicting items when memory is full")
	fault := fs.String("fault", "", `start with these faults, e.g. "delay=200ms" (see memcachedtest.Fault)`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *megabytes <= 0 {
		return fmt.Errorf("-m %d: must be positive", *megabytes)
	}
	size, err := parseSize(*itemSize)
	if err != nil {
		return fmt.Errorf("-I: %w", err)
	}
	if *listen == "" && *unixPath == "" {
		return errors.New("nothing to listen on: give -listen or -unix")
	}
	// Catch the stop signals before announcing the address: a supervisor
	// may send SIGTERM as soon as it reads it.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	srv, err := memcachedtest.Start(memcachedtest.Config{
		Addr:        *listen,
		UnixPath:    *unixPath,
		MaxBytes:    *megabytes << 20,
		ItemSizeMax: size,
		MaxConns:    *maxConns,
		NoEvict:     *noEvict,
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	if *fault != "" {
		if err := srv.SetFaultString(*fault); err != nil {
			return err
		}
	}
	if srv.Addr() != "" {
		fmt.Println("tcp", srv.Addr())
	}
	if srv.UnixPath() != "" {
		fmt.Println("unix", srv.UnixPath())
	}
	<-sig
	return nil
}

// parseSize reads memcached's -I syntax: bytes, or a number with k or m.
func parseSize(s string) (int, error) {
	mult := 1
	switch {
	case strings.HasSuffix(strings.ToLower(s), "k"):
		mult, s = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(strings.ToLower(s), "m"):
		mult, s = 1<<20, s[:len(s)-1]
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}
