"""A small seeded mutator for the fuzzers: bytes, text lines and JSON-like values.

Everything takes a :class:`random.Random`, so a run is reproduced by its seed
(``CLASSROOM_FUZZ_SEED``, default 14) and its input count."""

from __future__ import annotations

import random
from typing import Any

INTERESTING_INTS = [0, -1, 1, 2**7, 2**8 - 1, 2**15, 2**16 - 1, 2**16, 2**31 - 1, -(2**31), 2**32, 2**63,
                    -(2**63), 2**64, 10**30]
INTERESTING_TEXT = ["", " ", "\x00", "\ud800", "\udfff", "💩" * 50, "課" * 300, "\u202e", "\r\n", "%s%n",
                    "../../../etc/passwd", "/etc/passwd", "null", "NaN", "\\", "\"", "<script>", "a" * 5000,
                    "\x1b[31m", "\ufeff", "é" * 10, "\u0000\u0001\u0002"]


def mutate_bytes(rng: random.Random, data: bytes, rounds: int | None = None) -> bytes:
    """``data`` with 1–4 mutations: bit flips, byte sets, inserts, deletes, truncation, repeats."""
    buf = bytearray(data)
    for _ in range(rounds or rng.randint(1, 4)):
        op = rng.randrange(8)
        n = len(buf)
        if op == 0 and n:
            i = rng.randrange(n)
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            buf[rng.randrange(n)] = rng.choice([0, 0xFF, 0x7F, 0x80, rng.randrange(256)])
        elif op == 2:
            i = rng.randint(0, n)
            buf[i:i] = rng.randbytes(rng.randint(1, 16))
        elif op == 3 and n:
            i = rng.randrange(n)
            del buf[i : i + rng.randint(1, 16)]
        elif op == 4:
            del buf[rng.randint(0, n):]
        elif op == 5 and n:
            i = rng.randrange(n)
            j = min(n, i + rng.randint(1, 32))
            buf[i:i] = buf[i:j] * rng.randint(1, 8)
        elif op == 6 and n >= 2:  # a 16-bit length-like field set to an extreme
            i = rng.randrange(n - 1)
            buf[i : i + 2] = rng.choice([b"\x00\x00", b"\xff\xff", b"\x7f\xff", b"\x00\x01"])
        else:
            buf += rng.randbytes(rng.randint(1, 64))
    return bytes(buf)


def mutate_lines(rng: random.Random, text: str, sep: str = "\r\n") -> str:
    """A line-oriented text (SDP) with 1–4 line-level mutations."""
    lines = text.split(sep)
    for _ in range(rng.randint(1, 4)):
        if not lines:
            lines = [""]
        i = rng.randrange(len(lines))
        op = rng.randrange(7)
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[i])
        elif op == 2:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == 3:
            lines[i] = garble_text(rng, lines[i])
        elif op == 4:
            lines[i] = absurd_numbers(rng, lines[i])
        elif op == 5:
            lines.insert(i, lines[i][:2] + rng.choice(INTERESTING_TEXT))
        else:
            lines = lines[:i]
    return sep.join(lines)


def garble_text(rng: random.Random, text: str) -> str:
    if not text or rng.random() < 0.3:
        return text + rng.choice(INTERESTING_TEXT)
    i = rng.randrange(len(text))
    j = min(len(text), i + rng.randint(1, 10))
    filler = rng.choice([
        "".join(chr(rng.randrange(32, 0x3000)) for _ in range(rng.randint(0, 8))),
        rng.choice(INTERESTING_TEXT),
        text[i:j] * rng.randint(2, 50),
        "",
    ])
    return text[:i] + filler + text[j:]


def absurd_numbers(rng: random.Random, text: str) -> str:
    """Replace each run of digits in ``text`` by an absurd number, with some probability."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i].isdigit():
            j = i
            while j < len(text) and text[j].isdigit():
                j += 1
            if rng.random() < 0.5:
                out.append(str(rng.choice([*INTERESTING_INTS, rng.randrange(10**6)])))
            else:
                out.append(text[i:j])
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def deep(rng: random.Random, depth: int | None = None) -> Any:
    depth = depth or rng.choice([50, 200, 500])
    value: Any = rng.choice([[], {}, 0, "x"])
    for _ in range(depth):
        value = [value] if rng.random() < 0.5 else {"a": value}
    return value


def deep_text(rng: random.Random) -> str:
    """Nesting deeper than any JSON encoder (or a recursive parser) can take, as text."""
    n = rng.choice([1000, 10_000, 100_000])
    if rng.random() < 0.5:
        return "[" * n + "]" * n
    return '{"a":' * n + "0" + "}" * n


DEEP = "@@deep@@"  # a placeholder value the fuzzers replace by deep_text() after encoding


def wild_value(rng: random.Random) -> Any:
    """Any JSON value of the wrong kind: wrong types, huge, deep, unicode, edge numbers."""
    op = rng.randrange(12)
    if op == 0:
        return rng.choice(INTERESTING_INTS)
    if op == 1:
        return rng.choice([0.5, -0.0, 1e308, -1e308, 5e-324, float("nan"), float("inf"), float("-inf")])
    if op == 2:
        return rng.choice([True, False, None])
    if op == 3:
        return rng.choice(INTERESTING_TEXT)
    if op == 4:
        return [wild_value(rng) for _ in range(rng.randint(0, 3))]
    if op == 5:
        return {rng.choice(INTERESTING_TEXT[:8]) or "k": wild_value(rng) for _ in range(rng.randint(0, 3))}
    if op == 6:
        return deep(rng, rng.choice([20, 200])) if rng.random() < 0.5 else DEEP
    if op == 7:
        return "x" * rng.choice([1000, 70_000])
    if op == 8:
        return list(range(rng.choice([100, 5000])))
    if op == 9:
        return "".join(chr(rng.randrange(1, 0x10FFFF)) for _ in range(rng.randint(1, 40)))
    if op == 10:
        return {str(i): i for i in range(rng.choice([10, 2000]))}
    return rng.choice(["", "lead", "r1", "teacher", "students", "screen", "publish", "subscribe"])
