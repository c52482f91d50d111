"""The ceiling a polite checker can reach: a bare aiohttp GET loop over the benchmark URLs.

Same connection limits as linkkeeper (a global limit and a per-host limit, enforced both by
the scheduler and by aiohttp's TCPConnector), keep-alive, redirects followed, bodies read
in full; no classification, no retries, no database. Each host gets its own queue with
`--limit-per-host` workers (all hosts sharing `--limit` slots), so a busy host never
starves the others: the best schedule for these limits, hence the ceiling.

Hermetic: a resolver answers 127.0.0.1 for host names matching --hosts (default
"*.example"; the URL's port is kept) and fails every other name without asking DNS.

    python benchmarks/raw_aiohttp.py benchmarks/out/SITE/_benchmark/urls.txt \
        --limit 128 --limit-per-host 8

Prints one JSON object: urls, seconds, urls_per_s, statuses (by code or error class).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL


class LoopbackResolver(AbstractResolver):
    """Names matching the patterns resolve to 127.0.0.1; nothing else resolves."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns = [p.lower() for p in patterns]

    def matches(self, host: str) -> bool:
        name = host.lower().rstrip(".")
        return any(name.endswith(p[1:]) if p.startswith("*.") else name == p for p in self.patterns)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if not self.matches(host):
            raise OSError(socket.EAI_NONAME, f"{host}: not a benchmark host (no DNS asked)")
        return [
            ResolveResult(
                hostname=host,
                host="127.0.0.1",
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        return None


async def fetch_all(
    urls: list[str], limit: int, limit_per_host: int, timeout: float, patterns: list[str]
) -> Counter[str]:
    statuses: Counter[str] = Counter()
    by_host: dict[str, list[str]] = defaultdict(list)
    for url in urls:
        by_host[URL(url).host or ""].append(url)
    slots = asyncio.Semaphore(limit)
    connector = aiohttp.TCPConnector(
        limit=limit, limit_per_host=limit_per_host, resolver=LoopbackResolver(patterns)
    )
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:

        async def worker(queue: list[str]) -> None:
            while queue:
                url = queue.pop()
                async with slots:
                    try:
                        async with session.get(url) as response:
                            await response.read()
                            statuses[str(response.status)] += 1
                    except (aiohttp.ClientError, TimeoutError, OSError) as error:
                        statuses[type(error).__name__] += 1

        workers = [
            worker(queue)
            for queue in by_host.values()
            for _ in range(min(limit_per_host, len(queue)))
        ]
        await asyncio.gather(*workers)
    return statuses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("urls_file", type=Path, help="one URL a line")
    parser.add_argument("--limit", type=int, default=128, help="requests in flight, all hosts")
    parser.add_argument("--limit-per-host", type=int, default=8, help="connections per host")
    parser.add_argument("--timeout", type=float, default=45.0, help="total seconds per request")
    parser.add_argument(
        "--hosts", default="*.example", help="comma-separated names or *.suffix mapped to loopback"
    )
    args = parser.parse_args(argv)
    urls = [line.strip() for line in args.urls_file.read_text().splitlines() if line.strip()]
    patterns = [p.strip() for p in args.hosts.split(",") if p.strip()]
    started = time.perf_counter()
    statuses = asyncio.run(fetch_all(urls, args.limit, args.limit_per_host, args.timeout, patterns))
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "urls": len(urls),
                "seconds": round(seconds, 3),
                "urls_per_s": round(len(urls) / seconds, 1),
                "statuses": dict(statuses.most_common()),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
