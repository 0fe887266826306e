#!/bin/bash
# test_readme.sh NEURALOPS_BIN SOURCE_DIR — the README does what it says, offline:
#   - every ```ini block, and every INI here-document in a ```sh block, loads
#     (`neuralops config show -c`);
#   - every ```sh block whose commands run without a network runs, in order, in a scratch
#     directory (/tmp/ in the text becomes that directory; `./build/neuralops` and `neuralops`
#     the binary under test; `neuralops serve -c F` becomes `neuralops config show -c F`, which
#     loads F the same way); lines that need a database (--from-postgres) are left out;
#     blocks that need a broker, the API of a running engine, root or systemd are skipped and
#     listed;
#   - every `neuralops SUB ...` named in the text (README and docs/*.md) is a command, and each
#     --flag it shows is one that command's --help lists.
set -u -o pipefail
bin=$1
src=$2
T=$(mktemp -d /tmp/nops-readme-XXXXXX)
trap 'rm -rf "$T"' EXIT
mkdir -p "$T/blocks" "$T/w"
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# blocks: $T/blocks/LINE.ini or LINE.sh (LINE = the README line of the opening fence)
awk -v dir="$T/blocks" '
  /^ *```/ {
    if (!inb) { inb = 1; kind = $0; sub(/^ *```/, "", kind); start = NR; next }
    inb = 0; close(f); next
  }
  inb {
    if (kind != "ini" && kind != "sh") next
    f = sprintf("%s/%05d.%s", dir, start, kind)
    line = $0; sub(/^   /, "", line)          # blocks indented in a list
    print line > f
  }' "$src/README.md"

ran_ini=0
for f in "$T"/blocks/*.ini; do
  [ -e "$f" ] || continue
  n=$(basename "$f" .ini)
  if ! out=$("$bin" config show -c "$f" 2>&1 >/dev/null); then
    fail "README.md:$((10#$n)): the ini block does not load: $out"
  fi
  ran_ini=$((ran_ini + 1))
done

ran_sh=0
calls=0
for f in "$T"/blocks/*.sh; do
  [ -e "$f" ] || continue
  n=$((10#$(basename "$f" .sh)))
  why=""
  grep -qE '(^|[ ;&|(])make ' "$f" && why="make (the whole build)"
  grep -qE 'curl |kafka-topics\.sh|--brokers' "$f" && why="a broker or a running engine's API"
  grep -qE 'sudo |systemctl|journalctl|systemd-' "$f" && why="root and systemd"
  grep -qE 'neuralops demo' "$f" && why="the demo running in the background"
  if [ -n "$why" ]; then
    echo "skipped README.md:$n: needs $why"
    continue
  fi
  # INI here-documents: loaded as they are written
  awk -v out="$T/heredoc" '/<<.INI.$/ {h = 1; next} h && /^INI$/ {h = 0; next} h {print > out}' "$f"
  if [ -s "$T/heredoc" ]; then
    out=$("$bin" config show -c "$T/heredoc" 2>&1 >/dev/null) ||
      fail "README.md:$n: the INI here-document does not load: $out"
    ran_ini=$((ran_ini + 1))
    rm -f "$T/heredoc"
  fi
  sed -e "s#/tmp/#$T/w/#g" \
      -e "s#\./build/neuralops#$bin#g" \
      -e "s#\(^\|[|;&(] *\)neuralops #\1$bin #g" \
      -e "s#$bin serve -c#$bin config show -c#g" \
      -e '/--from-postgres/d' "$f" > "$T/run.sh"
  c=$(grep -c "$bin" "$T/run.sh")
  if ! out=$(cd "$T/w" && bash -e -o pipefail "$T/run.sh" 2>&1); then
    fail "README.md:$n: the block failed:
$(cat "$T/run.sh")
--- output:
$out"
  fi
  ran_sh=$((ran_sh + 1))
  calls=$((calls + c))
done

# `neuralops SUB [--flag ...]` in the text: SUB is a command and its --help lists each flag
grep -ohE '`neuralops [a-z]+[^`]*`' "$src/README.md" "$src"/docs/*.md | sort -u |
while read -r span; do
  span=${span//\`/}
  sub=$(echo "$span" | awk '{print $2}')
  if ! help=$("$bin" "$sub" --help 2>&1); then
    echo "FAIL: \"$span\": neuralops $sub is not a command" >&2
    echo x >> "$T/span-fail"
    continue
  fi
  for flag in $(echo "$span" | grep -oE -- '--[a-z][a-z0-9-]*'); do
    if ! grep -qF -- "$flag" <<< "$help"; then
      echo "FAIL: \"$span\": neuralops $sub --help does not list $flag" >&2
      echo x >> "$T/span-fail"
    fi
  done
done
[ -e "$T/span-fail" ] && failures=$((failures + $(wc -l < "$T/span-fail")))

echo "README: $ran_ini INI configs loaded, $ran_sh shell blocks run ($calls neuralops calls)"
# the test must not pass by skipping: the README's offline examples are these many at least
[ "$ran_ini" -ge 2 ] || fail "only $ran_ini INI configs found"
[ "$ran_sh" -ge 5 ] || fail "only $ran_sh shell blocks ran"
[ "$failures" -eq 0 ] || { echo "$failures failure(s)" >&2; exit 1; }
echo "test_readme: ok"
