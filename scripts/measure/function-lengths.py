"""Usage: python3 scripts/measure/function-lengths.py [ROOT] [N]

Longest non-test functions: brace-counted from each `fn` line; files
under tests/, benches/, fuzz/ and code after `#[cfg(test)]` are skipped."""
import os, re, sys
root = sys.argv[1] if len(sys.argv) > 1 else "."
n = int(sys.argv[2]) if len(sys.argv) > 2 else 10
out = []
for d, dirs, files in os.walk(os.path.join(root, "crates")):
    if any(p in d.split(os.sep) for p in ("tests", "benches", "target")):
        continue
    for f in files:
        if not f.endswith(".rs"):
            continue
        path = os.path.join(d, f)
        lines = open(path, encoding="utf-8").read().split("\n")
        for i, l in enumerate(lines):
            if l.strip().startswith("#[cfg(test)]"):
                lines = lines[:i]
                break
        i = 0
        while i < len(lines):
            m = re.match(r"\s*(pub(\([a-z]+\))? )?(async )?(const )?fn (\w+)", lines[i])
            if m:
                depth, started, j = 0, False, i
                while j < len(lines):
                    # Escaped braces of format strings, then string literals.
                    s = lines[j].split("//")[0].replace("{{", "").replace("}}", "")
                    s = re.sub(r'"([^"\\]|\\.)*"', '""', s)
                    s = re.sub(r"'([^'\\]|\\.)'", "''", s)
                    depth += s.count("{") - s.count("}")
                    if "{" in s: started = True
                    if started and depth <= 0: break
                    if not started and s.rstrip().endswith(";"): break
                    j += 1
                out.append((j - i + 1, os.path.relpath(path, root), m.group(5)))
                i += 1
                continue
            i += 1
out.sort(reverse=True)
for x in out[:n]:
    print(*x)
