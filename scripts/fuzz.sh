#!/usr/bin/env bash
# Coverage-guided fuzzing of a ruleset reader: AFL++ drives tests/Dashboard.Fuzz (SharpFuzz) with an instrumented
# Dashboard.Core. Not part of CI (it runs for minutes); run as root on a Debian machine:
#   bash scripts/fuzz.sh iptables 30     # iptables-save text, 30 minutes
#   bash scripts/fuzz.sh nft 30          # nft -j JSON
# Seeds are the repository's real dumps of that kind; findings go to artifacts/fuzz/READER. Inputs that crash or hang,
# and a sample of the queue (inputs that reached new code, at most 100 of at most 8 KiB), are copied to
# tests/Dashboard.Core.Tests/Fixtures/fuzz/READER: FuzzCorpusTests read every one through the readers and
# BadInputContractTests send them through the API. Prints AFL++'s figures at the end (executions, paths, edges,
# crashes, hangs).
set -euo pipefail
cd "$(dirname "$0")/.."
reader=${1:?usage: fuzz.sh iptables|nft [minutes]}
minutes=${2:-30}
case "$reader" in
  iptables) seeds=(../shared/fixtures/iptables/*.save tests/Dashboard.Core.Tests/Fixtures/iptables/*.save) ;;
  nft) seeds=(tests/Dashboard.Core.Tests/Fixtures/nft/*.json) ;;
  *) echo "reader must be iptables or nft" >&2; exit 2 ;;
esac

command -v afl-fuzz >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q afl++ >/dev/null
out=artifacts/fuzz
mkdir -p "$out/seeds-$reader" "$out/tools"
[ -x "$out/tools/sharpfuzz" ] || dotnet tool install SharpFuzz.CommandLine --version 2.3.0 --tool-path "$out/tools" >/dev/null
cp "${seeds[@]}" "$out/seeds-$reader/"

# A Release build of the harness, then Dashboard.Core instrumented in place (only the code under test reports coverage).
rm -rf "$out/bin"
dotnet publish tests/Dashboard.Fuzz -c Release -o "$out/bin" --nologo -v q
"$out/tools/sharpfuzz" "$out/bin/Dashboard.Core.dll"

export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_AFFINITY=1
# AFL's own memory limit cannot hold the .NET runtime (-m none below); the GC's can: an input that needs more than
# 512 MiB of heap ends in OutOfMemoryException, which AFL keeps as a crash, instead of taking the machine's memory.
export DOTNET_GCHeapHardLimit=0x20000000
findings="$out/$reader"
rm -rf "$findings"
# -t: an input that takes 5 s is a hang; -m none: the .NET runtime reserves more address space than AFL's default.
afl-fuzz -i "$out/seeds-$reader" -o "$findings" -x "tests/Dashboard.Fuzz/dict/$reader.dict" -t 5000 -m none \
  -V $((minutes * 60)) -- dotnet "$out/bin/Dashboard.Fuzz.dll" "$reader" > "$findings.log" 2>&1 || true

stats="$findings/default/fuzzer_stats"
[ -f "$stats" ] || { echo "afl-fuzz did not start; see $findings.log" >&2; tail -20 "$findings.log" >&2; exit 1; }
grep -E '^(run_time|execs_done|execs_per_sec|corpus_count|bitmap_cvg|edges_found|total_edges|saved_crashes|saved_hangs|stability) ' "$stats"

kept=tests/Dashboard.Core.Tests/Fixtures/fuzz/$reader
for f in "$findings"/default/crashes/id:* "$findings"/default/hangs/id:*; do
  [ -f "$f" ] || continue
  mkdir -p "$kept"
  cp "$f" "$kept/$(basename "$(dirname "$f")")-$(sha1sum "$f" | cut -c1-12)"
done
mkdir -p "$kept"
rm -f "$kept"/queue-*
mapfile -t queue < <(find "$findings/default/queue" -maxdepth 1 -type f -name 'id:*' -size -8k | sort)
step=$(( (${#queue[@]} + 99) / 100 ))
for ((i = 0; i < ${#queue[@]}; i += step > 0 ? step : 1)); do
  cp "${queue[$i]}" "$kept/queue-$(sha1sum "${queue[$i]}" | cut -c1-12)"
done
echo "kept in $kept: $(ls "$kept" | grep -c '^queue-') queue inputs, $(ls "$kept" | grep -vc '^queue-') crashes and hangs"
