#!/usr/bin/env python3
"""Finds import cycles between the modules of each crate of the workspace.

Every module file (`src/**/*.rs`, inline `mod x { ... }` blocks counted as
part of their file) is a node. A path that names an item of the crate
(`crate::a::b::Item`, `super::Item`, `self::x::Item`, in `use` lines or
inline) is an edge to the module that *defines* the item: paths are
resolved through `pub use` re-exports (so a facade `lib.rs` that re-exports
a child's items is not a dependency of whoever imports through it), and a
name a module re-exports from another crate leads out of the crate, which
is no edge. `mod x;` declarations are not edges. Test code (`#[cfg(test)]`
modules and `tests/` directories under `src/`) is left out: tests may use
anything they test.

Usage: scripts/module_cycles.py [crate dir ...]   (default: crates/*)
Prints each crate's cycles, or nothing for a crate without any; exits 1 if
any cycle was found.
"""

import os
import re
import sys
from pathlib import Path

USE_RE = re.compile(r"\b(pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.S)
PATH_RE = re.compile(r"\b((?:crate|super|self)(?:\s*::\s*[A-Za-z_][A-Za-z0-9_]*)+)")
BARE_RE = re.compile(r"(?<![A-Za-z0-9_:])([a-z_][A-Za-z0-9_]*(?:\s*::\s*[A-Za-z_][A-Za-z0-9_]*)+)")
CFG_TEST_MOD = re.compile(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{")
CFG_TEST_DECL = re.compile(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;")


def strip_comments_and_strings(text):
    """Blanks comments, string and char literals (a small Rust lexer)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif re.match(r'b?r#*"', text[i:i + 260]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'b?r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + m.end())
            i = n if j < 0 else j + len(end)
            out.append('""')
        elif c == '"' or (c == "b" and text.startswith('b"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_"))):
            i += 2 if c == "b" else 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""')
        elif c == "'":
            m = re.match(r"'(?:\\(?:x[0-9a-fA-F]{2}|u\{[0-9a-fA-F]+\}|.)|[^\\'])'", text[i:i + 16])
            if m:
                i += m.end()
                out.append("' '")
            else:  # a lifetime
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def drop_test_blocks(text):
    """Removes `#[cfg(test)] mod x { ... }` blocks (brace matching)."""
    out = []
    i = 0
    while True:
        m = CFG_TEST_MOD.search(text, i)
        if not m:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:m.start()])
        depth = 1
        j = m.end()
        while j < len(text) and depth:
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
            j += 1
        i = j


def expand_use_tree(tree):
    """`a::{b, c::{d, e as f}, self}` -> [(path, alias)]."""
    tree = re.sub(r"\s+", "", tree)
    results = []

    def split_top(s):
        parts, depth, cur = [], 0, ""
        for ch in s:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        if cur:
            parts.append(cur)
        return parts

    def walk(prefix, s):
        if "{" in s and s.endswith("}"):
            head, body = s.split("{", 1)
            base = prefix + [x for x in head.split("::") if x]
            for part in split_top(body[:-1]):
                walk(base, part)
            return
        alias = None
        if "as" in s.split("::")[-1] and re.search(r"as[A-Za-z_]", s):
            m = re.match(r"(.*?)as([A-Za-z_][A-Za-z0-9_]*)$", s)
            if m and m.group(1):
                s, alias = m.group(1), m.group(2)
        segs = [x for x in s.split("::") if x]
        if segs == ["self"]:
            segs = []
        full = prefix + segs
        if not full:
            return
        results.append((full, alias or (full[-1] if full[-1] != "*" else "*")))

    walk([], tree)
    return results


class Crate:
    def __init__(self, root):
        self.root = Path(root)
        self.src = self.root / "src"
        self.modules = {}  # module path tuple -> file
        self.text = {}
        self.reexports = {}  # module -> {name: abs path list}
        self.test_modules = set()

    def load(self):
        entries = [p for p in ("lib.rs", "main.rs") if (self.src / p).exists()]
        if not entries:
            return False
        for entry in entries:
            self._load_module((), self.src / entry, self.src)
        return True

    def _load_module(self, mpath, file, dirpath):
        raw = file.read_text()
        text = strip_comments_and_strings(raw)
        for m in CFG_TEST_DECL.finditer(text):
            self.test_modules.add(mpath + (m.group(1),))
        text = drop_test_blocks(text)
        self.modules[mpath] = file
        self.text[mpath] = text
        for m in re.finditer(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text, re.M):
            name = m.group(1)
            child = mpath + (name,)
            if child in self.test_modules:
                continue
            for cand in (dirpath / f"{name}.rs", dirpath / name / "mod.rs"):
                if cand.exists():
                    sub = cand.parent if cand.name == "mod.rs" else dirpath / name
                    self._load_module(child, cand, sub)
                    break

    def absolute(self, mpath, segs):
        """Turns crate/super/self-relative segments into (crate-absolute) or None."""
        if not segs:
            return None
        cur = list(mpath)
        head = segs[0]
        if head == "crate":
            return segs[1:]
        if head == "self":
            return cur + segs[1:]
        if head == "super":
            rest = segs
            while rest and rest[0] == "super":
                cur = cur[:-1]
                rest = rest[1:]
            return cur + rest
        # A bare path in a `use`: a child module of this one, or external.
        if tuple(cur + [head]) in self.modules:
            return cur + segs
        return None

    def collect_reexports(self):
        for mpath, text in self.text.items():
            names = {}
            for m in USE_RE.finditer(text):
                for segs, alias in expand_use_tree(m.group(2)):
                    absolute = self.absolute(mpath, segs)
                    names[alias] = absolute if absolute is not None else ["<extern>"] + segs
            self.reexports[mpath] = names

    def resolve(self, segs, depth=0):
        """Crate-absolute path -> the module that defines what it names."""
        if depth > 20:
            return None
        # Longest module prefix.
        best = ()
        for k in range(len(segs), -1, -1):
            if tuple(segs[:k]) in self.modules:
                best = tuple(segs[:k])
                break
        rest = segs[len(best):]
        if not rest or rest == ["*"]:
            return best
        name = rest[0]
        target = self.reexports.get(best, {}).get(name)
        if target is not None:
            if target and target[0] == "<extern>":
                return None
            if target[: len(best)] == list(best) and target == list(best) + [name]:
                return best
            return self.resolve(target + rest[1:], depth + 1)
        return best

    def edges(self):
        graph = {m: set() for m in self.modules}
        for mpath, text in self.text.items():
            paths = []
            for m in USE_RE.finditer(text):
                paths += [segs for segs, _ in expand_use_tree(m.group(2))]
            body = USE_RE.sub("", text)
            paths += [re.sub(r"\s+", "", p).split("::") for p in PATH_RE.findall(body)]
            # Bare paths through a child module or an imported name:
            # `json::parse_first`, `keys::mk` after `use crate::keys`.
            local = self.reexports.get(mpath, {})
            for p in BARE_RE.findall(body):
                segs = re.sub(r"\s+", "", p).split("::")
                if segs[0] in ("crate", "super", "self"):
                    continue
                if tuple(mpath) + (segs[0],) in self.modules:
                    paths.append(["self"] + segs)
                elif segs[0] in local and local[segs[0]][:1] != ["<extern>"]:
                    paths.append(["crate"] + local[segs[0]] + segs[1:])
            for segs in paths:
                absolute = self.absolute(mpath, segs)
                if absolute is None:
                    continue
                target = self.resolve(absolute)
                if target is None or target == mpath:
                    continue
                # A module naming its own descendant through a path, or an
                # ancestor's module path itself (`use super::x` of a sibling
                # resolves to the sibling), is judged by what it names.
                if target in self.modules:
                    graph[mpath].add(target)
        return graph


def cycles(graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            strong(v)
    return out


def name(m):
    return "::".join(m) if m else "(crate root)"


def main():
    args = sys.argv[1:]
    here = Path(__file__).resolve().parent.parent
    dirs = [Path(a) for a in args] or sorted(p for p in (here / "crates").iterdir() if p.is_dir())
    found = False
    for d in dirs:
        c = Crate(d)
        if not c.load():
            continue
        c.collect_reexports()
        g = c.edges()
        for comp in cycles(g):
            found = True
            members = set(comp)
            print(f"{d.name}: cycle among {', '.join(name(m) for m in comp)}")
            for m in comp:
                for t in sorted(g[m] & members):
                    print(f"    {name(m)} -> {name(t)}")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
