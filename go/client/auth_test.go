package client

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/omcache/omcache/go/internal/mctest"
)

// readableDir is a temporary directory memcached, running as nobody when
// the tests run as root, can read.
func readableDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "omcache-auth")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestASCIIAuth authenticates text and meta clients against memcached -Y,
// and checks that a wrong password is ErrAuth, never shown, and that a
// server without -Y refuses the credentials instead of storing them.
func TestASCIIAuth(t *testing.T) {
	dir := readableDir(t)
	authFile := filepath.Join(dir, "auth")
	if err := os.WriteFile(authFile, []byte("alice:s3cret-pw\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := mctest.Start(t, mctest.Options{Args: []string{"-Y", authFile}})
	plain := mctest.Start(t, mctest.Options{})
	for _, proto := range []string{"text", "meta"} {
		t.Run(proto, func(t *testing.T) {
			c := newClientFor(t, []string{srv.Addr}, Options{Protocol: proto, Username: "alice", Password: "s3cret-pw", TextMultiGet: true})
			mustSet(t, c, "k1", "v1")
			if it, err := c.Get([]byte("k1")); err != nil || string(it.Value) != "v1" {
				t.Fatalf("Get: %v %v", it, err)
			}
			checkMulti(t, c)
			bad := newClientFor(t, []string{srv.Addr}, Options{Protocol: proto, Username: "alice", Password: "wrong-pw"})
			_, err := bad.Get([]byte("k1"))
			if !errors.Is(err, ErrAuth) || strings.Contains(err.Error(), "wrong-pw") {
				t.Fatalf("wrong password: %v", err)
			}
			none := newClientFor(t, []string{srv.Addr}, Options{Protocol: proto})
			if _, err := none.Get([]byte("k1")); err == nil {
				t.Fatal("a client without credentials was served")
			}
			off := newClientFor(t, []string{plain.Addr}, Options{Protocol: proto, Username: "alice", Password: "s3cret-pw"})
			_, err = off.Get([]byte("k1"))
			if !errors.Is(err, ErrAuth) {
				t.Fatalf("server without -Y: %v", err)
			}
			check := newClientFor(t, []string{plain.Addr}, Options{Protocol: proto})
			if _, err := check.Get([]byte(asciiAuthKey[:250])); !errors.Is(err, ErrCacheMiss) {
				t.Fatalf("credentials stored on a server without -Y? %v", err)
			}
		})
	}
}

// TestSASLPlain authenticates a binary client against memcached -S with a
// sasldb made by saslpasswd2.
func TestSASLPlain(t *testing.T) {
	sp, err := exec.LookPath("saslpasswd2")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("saslpasswd2 not installed and CI is set")
		}
		t.Skip("saslpasswd2 (sasl2-bin) not installed")
	}
	dir := readableDir(t)
	db := filepath.Join(dir, "sasldb2")
	cmd := exec.Command(sp, "-a", "memcached", "-c", "-p", "-f", db, "bob")
	cmd.Stdin = strings.NewReader("hunter2-pw")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("saslpasswd2: %v %s", err, out)
	}
	if err := os.Chmod(db, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := "mech_list: plain\nsasldb_path: " + db + "\n"
	if err := os.WriteFile(filepath.Join(dir, "memcached.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SASL_CONF_PATH", dir)
	srv := mctest.Start(t, mctest.Options{Args: []string{"-S"}})
	c := newClientFor(t, []string{srv.Addr}, Options{Protocol: "binary", Username: "bob", Password: "hunter2-pw", TextMultiGet: true})
	mustSet(t, c, "k1", "v1")
	checkMulti(t, c)
	bad := newClientFor(t, []string{srv.Addr}, Options{Protocol: "binary", Username: "bob", Password: "wrong-pw"})
	_, err = bad.Get([]byte("k1"))
	if !errors.Is(err, ErrAuth) || strings.Contains(err.Error(), "wrong-pw") {
		t.Fatalf("wrong password: %v", err)
	}
	if failure(err) != nil {
		t.Fatal("an authentication failure counts against the server")
	}
}

// checkMulti gets k1 (holding v1) and a missing key in one call.
func checkMulti(t *testing.T, c *Client) {
	t.Helper()
	items, errs := c.GetMulti([][]byte{[]byte("k1"), []byte("nope")})
	if items[0] == nil || string(items[0].Value) != "v1" || errs[0] != nil || !errors.Is(errs[1], ErrCacheMiss) {
		t.Fatalf("GetMulti: %v %v", items, errs)
	}
}
