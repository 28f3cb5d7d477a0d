#!/usr/bin/env bash
# Runs every Go fuzz function of every package for FUZZTIME each (go test
# -fuzz takes one function at a time), and fails if any of them finds a
# crash.  Fuzzers are discovered with `go test -list`, so new ones are picked
# up without editing this file.  A crash leaves its input under the
# package's testdata/fuzz/<FuzzName>/ (commit it: it becomes a regression
# test of the normal `go test` run).
#
#   FUZZTIME   per fuzzer, any -fuzztime value (default 3m; e.g. 30s, 10000x)
#   FUZZFLAGS  extra go test flags (e.g. -parallel=2 on a shared machine)
#
# Go 1.26's fuzz coordinator can end a duration-bounded run with a bare
# "context deadline exceeded" and no failing input (go.dev/issue/75804, fixed
# in Go 1.27), mostly on a loaded machine.  Such a run is reported as a flake,
# not a failure; a run that wrote a failing input, or failed otherwise, fails.
set -uo pipefail
cd "$(dirname "$0")/../go"
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-3m}
FUZZFLAGS=${FUZZFLAGS:-}

failed=()
flaked=()
ran=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for pkg in $($GO list ./...); do
    names=$($GO test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)
    [ -n "$names" ] || continue
    dir=$($GO list -f '{{.Dir}}' "$pkg")
    for name in $names; do
        ran=$((ran + 1))
        corpus="$dir/testdata/fuzz/$name"
        before=$(ls "$corpus" 2>/dev/null | sort)
        echo "== fuzz $pkg $name for $FUZZTIME"
        # shellcheck disable=SC2086  # FUZZFLAGS is a list of flags
        $GO test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" $FUZZFLAGS "$pkg" 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
        [ "$rc" -eq 0 ] && continue
        after=$(ls "$corpus" 2>/dev/null | sort)
        if [ "$before" = "$after" ] && grep -q '^    context deadline exceeded$' "$log" \
            && ! grep -q 'Failing input written' "$log"; then
            echo "fuzz: $name: 'context deadline exceeded' without a failing input (go.dev/issue/75804): a flake, not a crash" >&2
            flaked+=("$pkg $name")
        else
            failed+=("$pkg $name")
        fi
    done
done
if [ "$ran" -eq 0 ]; then
    echo "fuzz: no fuzz functions found" >&2
    exit 1
fi
if [ "${#flaked[@]}" -ne 0 ]; then
    echo "fuzz: ${#flaked[@]} of $ran fuzzers hit Go's fuzztime deadline flake (no failing input):" >&2
    printf '  %s\n' "${flaked[@]}" >&2
fi
if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz: ${#failed[@]} of $ran fuzzers failed:" >&2
    printf '  %s\n' "${failed[@]}" >&2
    exit 1
fi
echo "fuzz: all $ran fuzzers ran for $FUZZTIME each without a crash"
