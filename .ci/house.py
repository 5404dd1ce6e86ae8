#!/usr/bin/env python3
"""The house rules a reviewer would otherwise have to remember (issue 12):

* no Rust source file over 600 lines;
* no function over 100 lines in a crate's `src/`;
* every `lib.rs` opens with a `# Layout` that names each of its modules;
* no import cycle between the modules (files) of `aim-server`;
* the CLI's offline commands (`aim audit verify`, `aim audit export --from-export`) never
  reach into `aim-server`;
* the project looks like one (issue 13): a `LICENSE` whose text is the licence
  `Cargo.toml` names, release binaries without debug info (a `profiling` profile keeps
  it), and the README says how to install the binary.

Prints every breach and exits 1 if there is one. Run from the repository root.
"""

import re
import sys
from pathlib import Path

MAX_FILE_LINES = 600
MAX_FN_LINES = 100
ACYCLIC = ["server"]

breaches = []


def rust_files():
    return sorted(Path("crates").glob("*/**/*.rs"))


def check_file_lengths():
    for path in rust_files():
        n = sum(1 for _ in path.open(encoding="utf-8"))
        if n > MAX_FILE_LINES:
            breaches.append(f"{path}: {n} lines (at most {MAX_FILE_LINES})")


FN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")


def strip_strings(line):
    """The line without string and char literals or a trailing comment, for brace counting."""
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    return line.split("//", 1)[0]


def check_function_lengths():
    for path in rust_files():
        if "/src/" not in str(path):
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        in_raw = False
        i = 0
        while i < len(lines):
            m = FN.match(lines[i])
            if not m or lines[i].lstrip().startswith("//"):
                i += 1
                continue
            depth, opened, j = 0, False, i
            while j < len(lines):
                text = lines[j]
                if in_raw:
                    if '"#' in text:
                        in_raw = False
                    j += 1
                    continue
                if 'r#"' in text and '"#' not in text.split('r#"', 1)[1]:
                    in_raw = True
                code = strip_strings(text)
                if not opened and ";" in code and "{" not in code:
                    break  # a declaration without a body
                depth += code.count("{") - code.count("}")
                if "{" in code:
                    opened = True
                if opened and depth <= 0:
                    break
                j += 1
            length = j - i + 1
            if opened and length > MAX_FN_LINES:
                breaches.append(f"{path}:{i + 1}: fn {m.group(6)} is {length} lines (at most {MAX_FN_LINES})")
            i += 1


MOD = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?mod\s+(\w+)\s*[;{]", re.M)


def check_layouts():
    for lib in sorted(Path("crates").glob("*/src/lib.rs")):
        text = lib.read_text(encoding="utf-8")
        doc = "\n".join(l for l in text.splitlines() if l.startswith("//!"))
        if "# Layout" not in doc:
            breaches.append(f"{lib}: no `# Layout` in the crate doc")
            continue
        layout = doc.split("# Layout", 1)[1]
        for m in MOD.finditer(text):
            name = m.group(3)
            if name == "tests":
                continue
            if not re.search(rf"\b{name}\b", layout):
                breaches.append(f"{lib}: module `{name}` is missing from `# Layout`")


def module_of(crate_src, path):
    rel = path.relative_to(crate_src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("lib", "main", "mod"):
        parts = parts[:-1]
    return "::".join(parts) or "crate"


def reexports(src):
    """`pub use state::AppState;` in lib.rs: `crate::AppState` is `state`'s."""
    text = (src / "lib.rs").read_text(encoding="utf-8")
    out = {}
    for use in re.finditer(r"^pub use ((\w+)::[^;]+);", text, re.M):
        for target in expand(use.group(1)):
            out[target.split("::")[-1]] = target
    return out


def check_cycles(crate):
    src = Path("crates") / crate / "src"
    modules = {module_of(src, p): p for p in src.rglob("*.rs")}
    aliases = reexports(src)
    graph = {m: set() for m in modules}
    for m, path in modules.items():
        text = path.read_text(encoding="utf-8")
        # The test module of a file may reach anywhere.
        text = text.split("#[cfg(test)]", 1)[0]
        refs = set()
        # A child module named by a relative path (`webhook::Webhook` in `runtime`).
        body = re.sub(r"^\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*;", "", text, flags=re.M)
        for child in (c for c in modules if c.startswith(f"{m}::" if m != "crate" else "")):
            name = child.split("::")[-1] if m == "crate" else child[len(m) + 2 :]
            if "::" not in name and re.search(rf"(?<![\w:]){name}::", body):
                refs.add(child)
        for use in re.finditer(r"\buse\s+(crate|super)::([^;]+);", text, re.S):
            root, body = use.group(1), use.group(2)
            for target in expand(body):
                refs.add(resolve(m, root, target))
        for path_ref in re.finditer(r"\b(crate|super)::((?:\w+::)*\w+)", text):
            refs.add(resolve(m, path_ref.group(1), path_ref.group(2)))
        refs = {aliases.get(r.split("::")[0], r) if "::" not in r else r for r in refs}
        for r in refs:
            target = longest_module(r, modules)
            if target and target != m and not m.startswith(target + "::") and target != "crate":
                graph[m].add(target)
    cycles = find_cycles(graph)
    for c in cycles:
        breaches.append(f"crates/{crate}: import cycle: {' -> '.join(c + [c[0]])}")


def expand(body):
    """`a::{b, c::{d}}` to `a::b`, `a::c::d`."""
    body = re.sub(r"\s+", "", body)
    if "{" not in body:
        return [body.split(" as ")[0]]
    head, rest = body.split("{", 1)
    inner = rest[: rest.rfind("}")]
    items, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            items.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    if cur:
        items.append(cur)
    out = []
    for item in items:
        for sub in expand(item):
            out.append(head + sub if sub != "self" else head.rstrip(":"))
    return out


def resolve(module, root, target):
    if root == "crate":
        return target
    parent = module.split("::")[:-1]
    parts = target.split("::")
    while parts and parts[0] == "super":
        parent = parent[:-1]
        parts = parts[1:]
    return "::".join(parent + parts)


def longest_module(path, modules):
    parts = path.split("::")
    for n in range(len(parts), 0, -1):
        cand = "::".join(parts[:n])
        if cand in modules:
            return cand
    return None


def find_cycles(graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
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

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


OFFLINE = [Path("crates/cli/src/commands/audit.rs")]


def check_offline():
    for path in OFFLINE:
        if re.search(r"\baim_server\b", path.read_text(encoding="utf-8")):
            breaches.append(f"{path}: the offline audit commands must not use `aim_server`")


LICENSES = {"Apache-2.0": "Apache License\n                           Version 2.0, January 2004"}


def check_project():
    import tomllib

    cargo = tomllib.loads(Path("Cargo.toml").read_text(encoding="utf-8"))
    spdx = cargo["workspace"]["package"]["license"]
    licence = Path("LICENSE")
    if not licence.exists():
        breaches.append(f"LICENSE: missing (Cargo.toml says {spdx})")
    elif LICENSES.get(spdx, "\0") not in licence.read_text(encoding="utf-8"):
        breaches.append(f"LICENSE: its text is not the {spdx} licence Cargo.toml names")
    profiles = cargo.get("profile", {})
    release = profiles.get("release", {})
    if release.get("debug", False) not in (False, 0, "none") or release.get("strip") not in ("debuginfo", "symbols", True):
        breaches.append("Cargo.toml: [profile.release] must build without debug info (debug = false, strip = \"debuginfo\")")
    if profiles.get("profiling", {}).get("inherits") != "release":
        breaches.append("Cargo.toml: no [profile.profiling] (inherits release, keeps line tables) for perf")
    if "cargo install --locked --path crates/cli" not in Path("README.md").read_text(encoding="utf-8"):
        breaches.append("README.md: does not say how to install the binary (cargo install --locked --path crates/cli)")


def main():
    check_project()
    check_offline()
    check_file_lengths()
    check_function_lengths()
    check_layouts()
    for crate in ACYCLIC:
        check_cycles(crate)
    for b in breaches:
        print(b)
    if breaches:
        print(f"\n{len(breaches)} breach(es) of the house rules", file=sys.stderr)
        return 1
    print("house rules: file and function lengths, crate layouts, no import cycles: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
