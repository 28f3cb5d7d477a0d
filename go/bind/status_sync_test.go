package bind

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// The status codes cross the Go/Python boundary as plain integers: the
// constants of status.go and those of python/omcache/_engine.py must be
// the same names (StatusWrongProtocol <-> WRONG_PROTOCOL) with the same
// values, or Python raises the wrong exception.

// pythonEngine is _engine.py, relative to this package's directory (where
// go test runs).
var pythonEngine = filepath.Join("..", "..", "python", "omcache", "_engine.py")

// goStatuses reads the Status* constants of status.go, by UPPER_SNAKE name.
func goStatuses(t *testing.T) map[string]int {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "status.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Status") || name.Name == "Status" {
					continue
				}
				if i >= len(vs.Values) {
					t.Fatalf("%s has no value of its own: write each status as a literal", name.Name)
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.INT {
					t.Fatalf("%s is not an integer literal", name.Name)
				}
				v, err := strconv.Atoi(lit.Value)
				if err != nil {
					t.Fatalf("%s = %s: %v", name.Name, lit.Value, err)
				}
				out[upperSnake(strings.TrimPrefix(name.Name, "Status"))] = v
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no Status constants found in status.go")
	}
	return out
}

// upperSnake turns CamelCase into UPPER_SNAKE: DeltaBadValue ->
// DELTA_BAD_VALUE, OK -> OK, NoServers -> NO_SERVERS.
func upperSnake(s string) string {
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if i > 0 && unicode.IsUpper(c) &&
			(unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1]) || i+1 < len(r) && unicode.IsLower(r[i+1])) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(c))
	}
	return b.String()
}

var pyConst = regexp.MustCompile(`^([A-Z][A-Z0-9_]*) = ([0-9]+)\s*$`)

// pythonStatuses reads the block of status constants of _engine.py: the
// NAME = number lines that follow the comment naming go/bind/status.go.
func pythonStatuses(src string) (map[string]int, error) {
	lines := strings.Split(src, "\n")
	start := -1
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "#") && strings.Contains(l, "go/bind/status.go") {
			start = i + 1
			break
		}
	}
	if start < 0 {
		return nil, fmt.Errorf("no comment naming go/bind/status.go before the status constants")
	}
	out := map[string]int{}
	for _, l := range lines[start:] {
		m := pyConst.FindStringSubmatch(l)
		if m == nil {
			break
		}
		v, _ := strconv.Atoi(m[2])
		if _, dup := out[m[1]]; dup {
			return nil, fmt.Errorf("%s defined twice", m[1])
		}
		out[m[1]] = v
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no NAME = number lines after the comment naming go/bind/status.go")
	}
	return out, nil
}

// statusDrift lists the differences between the Go and Python constants.
func statusDrift(goc, py map[string]int) []string {
	var diffs []string
	for name, v := range goc {
		pv, ok := py[name]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("Go status %s = %d has no Python constant", name, v))
		case pv != v:
			diffs = append(diffs, fmt.Sprintf("%s is %d in Go, %d in Python", name, v, pv))
		}
	}
	for name, v := range py {
		if _, ok := goc[name]; !ok {
			diffs = append(diffs, fmt.Sprintf("Python constant %s = %d has no Go status", name, v))
		}
	}
	// Two names for one code would make one of them unreachable.
	byValue := map[int][]string{}
	for name, v := range goc {
		byValue[v] = append(byValue[v], name)
	}
	for v, names := range byValue {
		if len(names) > 1 {
			sort.Strings(names)
			diffs = append(diffs, fmt.Sprintf("code %d has several Go names: %v", v, names))
		}
	}
	sort.Strings(diffs)
	return diffs
}

func TestStatusCodesMatchPython(t *testing.T) {
	src, err := os.ReadFile(pythonEngine)
	if err != nil {
		t.Fatalf("reading the Python side: %v", err)
	}
	py, err := pythonStatuses(string(src))
	if err != nil {
		t.Fatalf("%s: %v", pythonEngine, err)
	}
	goc := goStatuses(t)
	for _, d := range statusDrift(goc, py) {
		t.Error(d)
	}
	// The names the two sides are known to share, as a check of the
	// parsing itself.
	for name, v := range map[string]int{"OK": 0, "MISS": 1, "DELTA_BAD_VALUE": 6, "NO_SERVERS": 12, "WRONG_PROTOCOL": 20} {
		if goc[name] != v || py[name] != v {
			t.Errorf("%s: Go %d, Python %d, want %d", name, goc[name], py[name], v)
		}
	}
	if goc["WRONG_PROTOCOL"] != StatusWrongProtocol || goc["DELTA_BAD_VALUE"] != StatusDeltaBadValue {
		t.Error("status.go parsed differently from the compiled constants")
	}
}

// The comparison fails when the two sides drift: a renumbered constant, a
// missing one and an extra one are each reported.
func TestStatusDriftIsDetected(t *testing.T) {
	src, err := os.ReadFile(pythonEngine)
	if err != nil {
		t.Fatal(err)
	}
	goc := goStatuses(t)
	for _, tt := range []struct {
		name, old, new, want string
	}{
		{"renumbered", "WRONG_PROTOCOL = 20\n", "WRONG_PROTOCOL = 21\n", "WRONG_PROTOCOL is 20 in Go, 21 in Python"},
		{"missing", "SERVER_DEAD = 19\n", "", "Go status SERVER_DEAD = 19 has no Python constant"},
		{"renamed", "BAD_KEY = 7\n", "INVALID_KEY = 7\n", "Python constant INVALID_KEY = 7 has no Go status"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(string(src), tt.old) {
				t.Fatalf("%q not in %s", tt.old, pythonEngine)
			}
			py, err := pythonStatuses(strings.Replace(string(src), tt.old, tt.new, 1))
			if err != nil {
				t.Fatal(err)
			}
			diffs := statusDrift(goc, py)
			found := false
			for _, d := range diffs {
				found = found || d == tt.want
			}
			if !found {
				t.Fatalf("drift %q not reported: %v", tt.want, diffs)
			}
		})
	}
	if _, err := pythonStatuses("OK = 0\n"); err == nil {
		t.Fatal("a file without the marked block parsed")
	}
	for in, want := range map[string]string{"OK": "OK", "DeltaBadValue": "DELTA_BAD_VALUE", "NoServers": "NO_SERVERS", "HTTPError": "HTTP_ERROR", "Io2Error": "IO2_ERROR"} {
		if got := upperSnake(in); got != want {
			t.Errorf("upperSnake(%q) = %q, want %q", in, got, want)
		}
	}
}
