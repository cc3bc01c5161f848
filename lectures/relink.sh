#!/usr/bin/env bash
# Re-points every code link of the lectures, [`name`](path#L<line>) in lectures/**/*.md, at the line of
# the linked file that defines `name`, after the code has moved (tests/lectures/test_lecture_links.cpp
# checks the links; `make relink` runs this). For each link:
#   1. it is kept if its line already holds `name(` (name as written, e.g. `DPOTrainer::compute(`);
#   2. otherwise the definition is chosen: the first line at column 0 that holds `name(` and is not a
#      comment (one where `name(` comes before any call, `=`, `{` or `return` first: a head, not a
#      call such as `{ return -masked_mean(x); }`), else the first non-comment line that holds it;
#   3. a qualified name found nowhere in that form (a method defined inside its class) is looked up by
#      its last part (`compute(`), with the same two rules.
# `name(` must not follow a letter, digit or underscore (`score` does not match `my_score(`).
# A name or file it cannot find is reported as lectures/FILE.md:LINE and the script exits 1; the
# other links are still rewritten. Idempotent: a second run changes nothing.
# Usage: lectures/relink.sh [--check]   (--check: change no file, exit 1 if some link would move)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
CHECK=0
case "${1:-}" in
  --check) CHECK=1 ;;
  "") ;;
  *) echo "usage: lectures/relink.sh [--check]" >&2; exit 2 ;;
esac

status=0
moved_total=0
while IFS= read -r -d '' md; do
  tmp=$(mktemp)
  set +e
  moved=$(awk -v md="$md" -v dir="$(dirname "$md")" -v out="$tmp" '
    function load(f,    n, l) {
      if (f in nlines) return nlines[f]
      n = 0
      while ((getline l < f) > 0) text[f, ++n] = l
      close(f)
      nlines[f] = (n > 0 || system("test -f \"" f "\"") == 0) ? n : -1
      return nlines[f]
    }
    function holds(l, name) { return l ~ ("(^|[^A-Za-z0-9_])" name "\\(") }
    function comment(l) { return l ~ /^[ \t]*(\/\/|\/\*|\*)/ }
    # a head: name( comes before any "(", "=", "{", ";" or "return" of the line (not a call)
    function head(l, name) {
      match(l, "(^|[^A-Za-z0-9_])" name "\\(")
      return substr(l, 1, RSTART) !~ /[({=;]|return/
    }
    # the definition of name in f: a non-comment line at column 0 (one where name( is the head first),
    # else the first non-comment line; 0 if none
    function define(f, name,    i, col0, first) {
      col0 = first = 0
      for (i = 1; i <= nlines[f]; i++) {
        if (!holds(text[f, i], name) || comment(text[f, i])) continue
        if (text[f, i] ~ /^[^ \t]/) { if (head(text[f, i], name)) return i; if (!col0) col0 = i }
        if (!first) first = i
      }
      return col0 ? col0 : first
    }
    function resolve(name, f, line,    last, i) {
      if (line >= 1 && line <= nlines[f] && holds(text[f, line], name)) return line
      if ((i = define(f, name))) return i
      if (index(name, ":") == 0) return 0
      last = name; sub(/.*:/, "", last)
      if (line >= 1 && line <= nlines[f] && holds(text[f, line], last)) return line
      return define(f, last)
    }
    {
      rest = $0; done = ""
      while (match(rest, /\[`[A-Za-z_][A-Za-z0-9_:~]*(\(\))?`\]\([^)#[:space:]]+#L[0-9]+\)/)) {
        link = substr(rest, RSTART, RLENGTH)
        done = done substr(rest, 1, RSTART - 1)
        rest = substr(rest, RSTART + RLENGTH)
        name = link; sub(/^\[`/, "", name); sub(/`\].*/, "", name); sub(/\(\)$/, "", name)
        path = link; sub(/^[^(]*\(/, "", path); sub(/#L[0-9]+\)$/, "", path)
        line = link; sub(/.*#L/, "", line); sub(/\)$/, "", line); line += 0
        f = dir "/" path
        if (load(f) < 0) {
          printf "%s:%d: %s: no such file %s\n", md, NR, name, path > "/dev/stderr"; bad = 1
        } else if (!(to = resolve(name, f, line))) {
          printf "%s:%d: %s( not found in %s\n", md, NR, name, path > "/dev/stderr"; bad = 1
        } else if (to != line) {
          printf "%s:%d: %s: %s#L%d -> #L%d\n", md, NR, name, path, line, to > "/dev/stderr"
          sub(/#L[0-9]+\)$/, "#L" to ")", link); moved++
        }
        done = done link
      }
      print done rest > out
    }
    END { close(out); print moved + 0; exit bad }
  ' "$md")
  rc=$?
  set -e
  [ "$rc" -eq 0 ] || status=1
  if [ "${moved:-0}" -gt 0 ]; then
    moved_total=$((moved_total + moved))
    if [ "$CHECK" -eq 0 ]; then cat "$tmp" > "$md"; fi
  fi
  rm -f "$tmp"
done < <(find lectures -name '*.md' -print0 | sort -z)

verb=$([ "$CHECK" -eq 1 ] && echo "would move" || echo "moved")
echo "relink: $verb $moved_total link(s)"
if [ "$CHECK" -eq 1 ] && [ "$moved_total" -gt 0 ]; then status=1; fi
exit $status
