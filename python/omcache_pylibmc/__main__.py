"""Interactive shell: ``python -m omcache_pylibmc [--binary] [SERVER ...]``
(pylibmc's ``python -m pylibmc``; ``--help`` prints the usage)."""

from __future__ import annotations

import argparse
import code
import sys
from typing import Iterator, List

import omcache_pylibmc


def collect_servers() -> Iterator[str]:
    """Ask for server addresses until an empty line; 127.0.0.1 if none."""
    addr = input("Address [127.0.0.1]: ")
    if not addr:
        yield "127.0.0.1"
        return
    while addr:
        yield addr
        addr = input("Address [<stop>]: ")


def interact(servers: List[str], binary: bool = False) -> None:
    """Open an interactive console with ``mc`` bound to a client for servers."""
    mc = omcache_pylibmc.Client(servers, binary=binary)
    code.interact(banner="\nmc client available as `mc`\n", local={"pylibmc": omcache_pylibmc, "mc": mc})


def build_parser() -> argparse.ArgumentParser:
    """The shell's command line: ``[--binary] [SERVER ...]``, and ``--help``."""
    p = argparse.ArgumentParser(
        prog="python -m omcache_pylibmc",
        description="An interactive Python console with `mc`, an omcache_pylibmc client, and `pylibmc` "
        "(omcache_pylibmc) bound, as pylibmc's `python -m pylibmc`. Without SERVER arguments it asks "
        "for server addresses, one per line, until an empty line (127.0.0.1 if none).",
        epilog="examples:\n"
        "  python -m omcache_pylibmc                      asks for the servers\n"
        "  python -m omcache_pylibmc 127.0.0.1:11211      no questions\n"
        "  python -m omcache_pylibmc --binary a:11211 b:11211\n"
        "then, in the console: mc.set('k', 'v'); mc.get('k')",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--binary", action="store_true", help="a client with binary=True (pylibmc's binary protocol semantics)")
    p.add_argument("servers", nargs="*", metavar="SERVER", help="host[:port[:weight]] or a unix socket path")
    return p


def main(argv: List[str]) -> int:
    """Run the shell; ``--binary`` selects binary-protocol semantics; ``--help`` prints the usage."""
    args = build_parser().parse_args(argv)
    servers: List[str] = list(args.servers)
    if not servers:
        sys.stdout.write("omcache_pylibmc interactive shell\n\nInput list of servers, terminating by a blank line.\n")
        servers = list(collect_servers())
    interact(servers, binary=args.binary)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
