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
set -uo pipefail
cd "$(dirname "$0")/../go"
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-3m}
FUZZFLAGS=${FUZZFLAGS:-}

failed=()
ran=0
for pkg in $($GO list ./...); do
    names=$($GO test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)
    for name in $names; do
        ran=$((ran + 1))
        echo "== fuzz $pkg $name for $FUZZTIME"
        # shellcheck disable=SC2086  # FUZZFLAGS is a list of flags
        if ! $GO test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" $FUZZFLAGS "$pkg"; then
            failed+=("$pkg $name")
        fi
    done
done
if [ "$ran" -eq 0 ]; then
    echo "fuzz: no fuzz functions found" >&2
    exit 1
fi
if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz: ${#failed[@]} of $ran fuzzers failed:" >&2
    printf '  %s\n' "${failed[@]}" >&2
    exit 1
fi
echo "fuzz: all $ran fuzzers ran for $FUZZTIME each without a crash"
