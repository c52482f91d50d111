"""Front matter in the three formats static sites use: Jekyll's YAML (the fast path), and
TOML (``+++``) and JSON (``{`` … ``}``) through python-frontmatter (the general path)."""

from __future__ import annotations

import json
import pathlib
import textwrap

import pytest
import yaml
from frontmatter import YAMLHandler
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from linkkeeper.extract.front_matter import (
    DEFAULT_SOURCE_KEYS,
    general_front_matter,
    read_front_matter,
)
from linkkeeper.extract.post import ParsedPost, parse_post
from linkkeeper.urls import normalize_url


def post(text: str) -> ParsedPost:
    return parse_post(textwrap.dedent(text).lstrip("\n").encode("utf-8"))


def links(parsed: ParsedPost) -> list[tuple[str, str, int, str]]:
    return [(o.url, o.kind, o.line, o.element) for o in parsed.occurrences]


def test_toml_front_matter_keys_lines_and_body() -> None:
    parsed = post(
        """
        +++
        title = "A title"
        date = 2020-07-21T07:54:06Z
        tags = ["a", "b"]
        from = "https://example.com/story"
        +++

        See [more](https://example.org/more) and <a href="https://example.net/x">x</a>.
        """
    )
    assert parsed.ok and not parsed.problems
    assert parsed.title == "A title"
    assert parsed.date == "2020-07-21T07:54:06+00:00"
    assert parsed.front_matter["tags"] == ["a", "b"]
    assert parsed.source_url == "https://example.com/story"
    assert links(parsed) == [
        ("https://example.com/story", "source", 5, "front-matter:from"),
        ("https://example.org/more", "inline", 8, "md-link"),
        ("https://example.net/x", "inline", 8, "a"),
    ]


def test_json_front_matter_keys_lines_and_body() -> None:
    parsed = post(
        """
        {
          "title": "A title",
          "source": "https://example.com/story"
        }
        [A title](https://example.com/story)
        ------

        ![pic](https://img.example/p.png)
        """
    )
    assert parsed.ok and not parsed.problems
    assert parsed.source_url == "https://example.com/story"
    assert links(parsed) == [
        ("https://example.com/story", "source", 3, "front-matter:source"),
        ("https://example.com/story", "source", 5, "md-link"),
        ("https://img.example/p.png", "image", 8, "md-image"),
    ]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('+++\ntitle = "x"\nbad = \n+++\nbody\n', 3, "TOML error"),
        ('+++\ntitle = "x"\n', 1, "no closing '+++' line"),
        ('{\n  "title": "x",\n  "from": ,\n}\nbody\n', 3, "JSON error"),
        ('{\n"a": 1\n', 1, "no closing '}' line"),
        ("+++\n+++\n", 0, ""),  # empty TOML: no keys, no problem
    ],
)
def test_general_front_matter_problems(text: str, line: int, words: str) -> None:
    parsed = parse_post(text.encode())
    if not words:
        assert parsed.ok and not parsed.problems and parsed.front_matter == {}
        return
    assert not parsed.ok
    assert [(p.line, words in p.message) for p in parsed.problems] == [(line, True)]


def test_a_body_starting_otherwise_has_no_front_matter() -> None:
    for text in ("+ a list item\n", "{% raw %}\n", "++\nx\n", "}\n", ""):
        fm = read_front_matter(text, problems := [])
        assert (fm.data, fm.body_offset, fm.body_line, fm.ok, problems) == ({}, 0, 1, True, [])


# --------------------------------------------------------------------------- round trips

KEYS = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True).filter(
    lambda k: k not in DEFAULT_SOURCE_KEYS and k != "title"
)
# YAML folds its line breaks (NEL, LS, PS) in scalars: a written title could not round-trip
TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Zl", "Zp"), blacklist_characters="\x85"),
    max_size=20,
)
VALUES = st.one_of(TEXT, st.integers(-(2**53), 2**53), st.booleans(), st.lists(TEXT, max_size=3))
URLS = st.builds(
    lambda host, path: f"https://{host}.example/{path}",
    st.from_regex(r"[a-z]{1,10}", fullmatch=True),
    st.text(st.characters(whitelist_categories=("L", "N"), max_codepoint=0x2FFF), max_size=12),
)


def _toml_string(value: str) -> str:
    escapes = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
    return (
        '"'
        + "".join(
            escapes.get(c) or (f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c)
            for c in value
        )
        + '"'
    )


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return _toml_string(str(value))


def _written(data: dict[str, object], syntax: str, body: str) -> str:
    if syntax == "yaml":
        return "---\n" + yaml.safe_dump(data, allow_unicode=True, sort_keys=False) + "---\n" + body
    if syntax == "toml":
        lines = [f"{key} = {_toml_value(value)}" for key, value in data.items()]
        return "+++\n" + "\n".join(lines) + "\n+++\n" + body
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n" + body


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source_key=st.sampled_from(DEFAULT_SOURCE_KEYS),
    source=URLS,
    title=TEXT,
    extra=st.dictionaries(KEYS, VALUES, max_size=5),
    body_links=st.lists(URLS, max_size=3),
)
def test_front_matter_round_trips_in_every_format(
    source_key: str, source: str, title: str, extra: dict, body_links: list[str]
) -> None:
    data = {"title": title, **extra, source_key: source}
    body = "\n" + "".join(f"* [link {i}]({url})\n" for i, url in enumerate(body_links))
    expected_source = normalize_url(source).url
    seen = {}
    for syntax in ("yaml", "toml", "json"):
        text = _written(data, syntax, body)
        parsed = parse_post(text.encode("utf-8"))
        assert parsed.ok and not parsed.problems, (syntax, text, parsed.problems)
        assert parsed.front_matter == data, syntax
        assert parsed.source_url == expected_source, syntax
        source_line = text.split("\n")[parsed.occurrences[0].line - 1]
        assert source_key in source_line and parsed.occurrences[0].kind == "source", syntax
        lines = text.split("\n")
        for o in parsed.occurrences[1:]:
            assert o.original in lines[o.line - 1], (syntax, o)
        seen[syntax] = [(o.url, o.kind, o.element, o.text) for o in parsed.occurrences]
    assert seen["yaml"] == seen["toml"] == seen["json"]


def test_general_path_reads_yaml_as_the_fast_path_does_on_the_corpus() -> None:
    corpus = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "posts"
    if not corpus.is_dir():
        pytest.skip("corpus not found")
    handler = YAMLHandler()
    compared = 0
    for path in sorted(corpus.glob("*.md")):
        text = path.read_text("utf-8").replace("\r\n", "\n")
        fast = read_front_matter(text, fast_problems := [])
        general = general_front_matter(text, handler, general_problems := [])
        if fast.ok and general.ok and not fast_problems and not general_problems:
            assert general.data == fast.data, path.name
            assert general.key_line("title") == fast.key_line("title"), path.name
            compared += 1
    assert compared > 0


def test_an_alias_bomb_is_stored_bounded_and_said() -> None:
    """A 10 KB post whose aliases name a 10,000-character string 59,049 times stored 429 MB
    of front matter (1.3 GB of memory); the copy is now bounded and the cut is a problem."""
    lines = ["---", "title: t", f's: &s "{"x" * 10_000}"', "a0: &a0 [" + ",".join(["*s"] * 9) + "]"]
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 6)]
    lines += ["from: https://news.example/story", "---", "[t](https://news.example/story)"]
    post = parse_post("\n".join(lines).encode())
    assert len(json.dumps(post.front_matter)) < 300_000
    assert post.source_url == "https://news.example/story"  # the source key is not starved
    assert any("aliases expand" in p.message for p in post.problems)
    # a long front matter without aliases is kept whole: a key may hold twice its text
    tags = ",".join(f'"t{i}{"x" * 1000}"' for i in range(300))
    post = parse_post(f"---\ntitle: t\ntags: [{tags}]\n---\nx\n".encode())
    assert len(post.front_matter["tags"]) == 300 and post.problems == []
