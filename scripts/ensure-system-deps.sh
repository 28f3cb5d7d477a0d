#!/bin/sh
# Install the system packages omcache's demo and tests need, if any is missing.
# Debian/Ubuntu (apt-get); needs root or sudo. Idempotent and quiet when all is there.
set -e
missing=""
command -v memcached >/dev/null 2>&1 || [ -x /usr/bin/memcached ] || missing="$missing memcached"
command -v memccapable >/dev/null 2>&1 || missing="$missing libmemcached-tools"
[ -e /usr/include/libmemcached/memcached.h ] || missing="$missing libmemcached-dev"
[ -e /usr/include/zlib.h ] || missing="$missing zlib1g-dev"
command -v nutcracker >/dev/null 2>&1 || [ -x /usr/sbin/nutcracker ] || missing="$missing nutcracker"
[ -z "$missing" ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "omcache: please install:$missing (no apt-get found)" >&2
    exit 1
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
echo "omcache: installing$missing with apt-get" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
