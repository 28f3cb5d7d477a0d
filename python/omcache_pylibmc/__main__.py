"""Interactive shell: ``python -m omcache_pylibmc [--binary]`` (pylibmc's
``python -m pylibmc``)."""

from __future__ import annotations

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


def main(argv: List[str]) -> int:
    """Run the shell; ``--binary`` selects binary-protocol semantics."""
    binary = argv == ["--binary"]
    sys.stdout.write("omcache_pylibmc interactive shell\n\nInput list of servers, terminating by a blank line.\n")
    interact(list(collect_servers()), binary=binary)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
