"""The measuring side of the benchmarks: numbers, tables, markdown sections, hermetic shims."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import harness
import measure
import pytest
from bench_check import server_stats
from raw_aiohttp import LoopbackResolver

BENCH = Path(__file__).resolve().parent.parent
NODE_MODULES = BENCH / "peers" / "node_modules"
LINKCHECKER_PYTHON = BENCH / ".venvs" / "linkchecker" / "bin" / "python"


def test_measure_reports_cpu_memory_exit_code_and_stdout():
    script = "x = bytearray(150 * 2**20); sum(range(3_000_000)); print('done'); raise SystemExit(3)"
    result = measure.measure([sys.executable, "-c", script], label="alloc")
    assert result["exit_code"] == 3 and not result["timed_out"]
    assert result["stdout"] == "done\n"
    assert result["peak_rss_mb"] >= 150
    assert 0 < result["cpu_s"] <= result["wall_s"] + 0.5


def test_measure_counts_the_largest_descendant():
    child = "bytearray(200 * 2**20)"
    parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {child!r}])"
    result = measure.measure([sys.executable, "-c", parent], label="tree")
    assert result["peak_rss_mb"] >= 200


def test_measure_kills_the_whole_tree_on_timeout():
    script = "import subprocess, time; subprocess.Popen(['sleep', '30']); time.sleep(30)"
    result = measure.measure([sys.executable, "-c", script], label="hang", timeout=0.5)
    assert result["timed_out"] and result["exit_code"] != 0
    assert result["wall_s"] < 5


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset not installed")
def test_measure_pins_to_the_given_cpu():
    script = "import os; print(sorted(os.sched_getaffinity(0)))"
    result = measure.measure([sys.executable, "-c", script], label="pin", cpus="0")
    assert result["stdout"].strip() == "[0]"


def test_record_appends_json_lines_with_context(tmp_path):
    path = tmp_path / "results.jsonl"
    row = {"label": "a", "wall_s": 1.0, "stdout": "big"}
    measure.record(row, path, benchmark="scan")
    measure.record(row | {"label": "b"}, path)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["label"] for line in lines] == ["a", "b"]
    assert "stdout" not in lines[0] and lines[0]["benchmark"] == "scan"
    assert lines[0]["machine"]["cpus"] >= 1 and lines[0]["at"]


def test_markdown_table_formats_and_escapes():
    table = measure.markdown_table(
        [{"label": "a|b", "wall_s": 1234.5, "cpu_s": 0.123}],
        [("label", "run"), ("wall_s", "wall"), ("cpu_s", "cpu"), ("missing", "x")],
    )
    assert table.splitlines() == [
        "| run | wall | cpu | x |",
        "|---|---|---|---|",
        "| a\\|b | 1,234 | 0.12 | – |",
    ]


def test_update_section_replaces_only_its_own_block(tmp_path):
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# B\n\nprose\n<!-- scan:begin -->\nold\n<!-- scan:end -->\ntail\n")
    harness.update_section("scan", "new table", doc)
    harness.update_section("check", "check table", doc)
    harness.update_section("scan", "newer table", doc)
    text = doc.read_text()
    assert "old" not in text and "new table" not in text
    assert text.startswith(
        "# B\n\nprose\n<!-- scan:begin -->\nnewer table\n<!-- scan:end -->\ntail"
    )
    assert text.rstrip().endswith("<!-- check:begin -->\ncheck table\n<!-- check:end -->")


def test_cached_site_is_reused_while_arguments_match(tmp_path, monkeypatch):
    monkeypatch.setattr(harness, "OUT_DIR", tmp_path)
    site, manifest = harness.cached_site("s", posts=12, seed=2)
    stamp = (site / "_benchmark" / "urls.txt").stat().st_mtime_ns
    again, _ = harness.cached_site("s", posts=12, seed=2)
    assert (again / "_benchmark" / "urls.txt").stat().st_mtime_ns == stamp
    _, other = harness.cached_site("s", posts=13, seed=2)
    assert other["posts"] == 13 and manifest["posts"] == 12


def _entry(host, connection, start, end, method="GET", status=200):
    return {
        "host": host,
        "connection": connection,
        "seq_start": start,
        "seq_end": end,
        "method": method,
        "status": status,
    }


def test_server_stats_from_the_log_and_from_exact_stats():
    log = [
        _entry("www.news0.example", 1, 1, 4),
        _entry("www.news0.example", 2, 2, 5),
        _entry("www.news0.example", 1, 6, 7, "HEAD", 404),
        _entry("www.news1.example", 3, 3, 8),
    ]
    estimated = server_stats(log)
    assert estimated["requests"] == 4
    assert estimated["main_max_requests"] == 2
    assert estimated["main_max_connections"] == 2
    assert estimated["main_connections_used"] == 2
    assert estimated["methods"] == {"GET": 3, "HEAD": 1}
    exact = {
        "hosts": {
            "www.news0.example": {
                "requests": 3,
                "connections": 5,
                "max_concurrent_connections": 4,
                "max_concurrent_requests": 2,
            }
        }
    }
    counted = server_stats(log, exact)
    assert counted["main_max_connections"] == 4 and counted["connections_exact"]
    assert counted["max_connections_host"] == "www.news0.example"


async def test_raw_loop_resolver_maps_bench_names_and_refuses_the_rest():
    resolver = LoopbackResolver(["*.example", "exact.test"])
    [answer] = await resolver.resolve("www.news3.example", 47080)
    assert (answer["host"], answer["port"]) == ("127.0.0.1", 47080)
    assert (await resolver.resolve("exact.test", 80))[0]["host"] == "127.0.0.1"
    for name in ("www.google.com", "example", "other.test"):
        with pytest.raises(OSError):
            await resolver.resolve(name, 80)


@pytest.fixture
def loopback_http_server():
    """A one-line HTTP server on loopback answering 200 to anything."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    port = server.getsockname()[1]
    stop = False

    def serve():
        while not stop:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    import threading

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port
    stop = True
    server.close()


@pytest.mark.skipif(
    shutil.which("node") is None or not (NODE_MODULES / "undici").exists(),
    reason="peers not installed (benchmarks/peers/setup.sh)",
)
def test_node_shim_resolves_bench_names_to_loopback_only(loopback_http_server, tmp_path):
    script = tmp_path / "probe.cjs"
    script.write_text(
        textwrap.dedent(
            f"""
            const net = require('node:net');
            const {{ fetch }} = require({json.dumps(str(NODE_MODULES / "undici"))});
            (async () => {{
              const out = {{}};
              out.bench = await (await fetch('http://www.news0.example:{loopback_http_server}/x')).text();
              try {{ await fetch('http://www.google.com/'); out.other = 'fetched'; }}
              catch (e) {{ out.other = e.cause && e.cause.code; }}
              try {{ net.connect({{ host: '192.0.2.1', port: 9 }}); out.ip = 'connected'; }}
              catch (e) {{ out.ip = 'refused'; }}
              console.log(JSON.stringify(out));
            }})();
            """
        )
    )
    done = subprocess.run(
        ["node", "--require", str(BENCH / "peers" / "loopback-dns.cjs"), str(script)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert json.loads(done.stdout) == {"bench": "ok", "other": "ENOTFOUND", "ip": "refused"}


@pytest.mark.skipif(not LINKCHECKER_PYTHON.exists(), reason="peers not installed")
def test_linkchecker_shim_resolves_bench_names_to_loopback_only(loopback_http_server):
    probe = textwrap.dedent(
        f"""
        import json, socket, sys, urllib.request
        sys.path.insert(0, {json.dumps(str(BENCH / "peers"))})
        import linkchecker_loopback
        linkchecker_loopback.install()
        out = {{}}
        out["bench"] = urllib.request.urlopen("http://www.news0.example:{loopback_http_server}/").read().decode()
        try:
            socket.getaddrinfo("www.google.com", 80)
        except socket.gaierror:
            out["other"] = "refused"
        try:  # the guard refuses before any packet: connect() is never reached
            socket.socket().connect(("192.0.2.1", 9))
        except ConnectionRefusedError:
            out["ip"] = "refused"
        print(json.dumps(out))
        """
    )
    done = subprocess.run(
        [str(LINKCHECKER_PYTHON), "-c", probe], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"bench": "ok", "other": "refused", "ip": "refused"}


def test_bench_scan_runs_end_to_end_with_a_stand_in_scanner(tmp_path, monkeypatch):
    """The harness itself, with a tiny fake `linkkeeper` that prints a scan summary."""
    import bench_scan

    fake = tmp_path / "fake-linkkeeper"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import json, pathlib, sys\n"
        "site = pathlib.Path(sys.argv[2])\n"
        "posts = len(list((site / '_posts').glob('*.md')))\n"
        "print(json.dumps({'posts': posts, 'parsed': posts, 'unchanged': 0,"
        " 'occurrences': 1, 'distinct_urls': 1}))\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(bench_scan, "OUT_DIR", tmp_path)
    monkeypatch.setattr(harness, "OUT_DIR", tmp_path)
    monkeypatch.setattr(measure, "RESULTS", tmp_path / "results.jsonl")
    monkeypatch.setattr(bench_scan, "record", lambda *a, **k: None)
    rows = bench_scan.run(str(fake), posts=25, seed=1, cpus=None, timeout=30)
    assert [r["label"] for r in rows] == [
        "first scan",
        "no-change rescan",
        "first scan, all cores",
    ]
    assert all(r["posts"] == 25 and r["posts_per_s"] > 0 for r in rows)
    assert "speed" in rows[0]["verdict"] and "memory" in rows[0]["verdict"]


def test_asyncio_mode_is_configured():
    # The resolver test above is a bare `async def`: it needs asyncio_mode=auto (pyproject).
    assert asyncio.iscoroutinefunction(test_raw_loop_resolver_maps_bench_names_and_refuses_the_rest)


def test_strace_parsing_finds_only_connects_outside_loopback(tmp_path):
    from bench_check import outside_connects

    trace = tmp_path / "connect.strace"
    trace.write_text(
        '8442  connect(19, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("127.0.0.1")}, 16) = 0\n'
        '8442  connect(20, {sa_family=AF_INET, sin_port=htons(80), sin_addr=inet_addr("10.1.2.3")}, 16) = -1\n'
        "8443  connect(21, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), "
        'inet_pton(AF_INET6, "2001:db8::1", &sin6_addr), sin6_scope_id=0}, 28) = -1\n'
        '8443  connect(22, {sa_family=AF_INET6, sin6_port=htons(80), inet_pton(AF_INET6, "::1", &sin6_addr)}, 28) = 0\n'
        '8444  connect(5, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1\n'
    )
    assert outside_connects(trace) == ["10.1.2.3", "2001:db8::1"]
    assert outside_connects(tmp_path / "missing") == ["(no strace output)"]
