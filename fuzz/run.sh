#!/usr/bin/env bash
# Runs each libFuzzer target of build/fuzz for FUZZ_SECONDS (default 60), one after the other,
# then merges what it found that adds coverage into the committed corpus (fuzz/corpus/<target>).
# A crash, leak, timeout or out-of-memory input is kept in fuzz/regressions/<target>/ (the
# replay tests of `make test` then run it) and ends that target's run. Exit status 1 when any
# new such input was found. Usage: fuzz/run.sh [target...] (default: all of them).
#
# fuzz/run.sh --minimize [target...] fuzzes nothing: it shrinks each corpus to a set with the
# same coverage (libFuzzer -merge=1 into an empty directory), keeping the hand-made seeds.
set -u
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-60}
build=${FUZZ_BUILD_DIR:-build/fuzz}
minimize=0
if [ "${1:-}" = "--minimize" ]; then
  minimize=1
  shift
fi
if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=(task_json request_builder rfc3339 config_loader http_server)
fi

dictionary() {
  case "$1" in
    task_json | request_builder) echo fuzz/dicts/json.dict ;;
    *) echo "fuzz/dicts/$1.dict" ;;
  esac
}

count_inputs() {
  find "$1" -maxdepth 1 -type f ! -name '.*' ! -name 'README*' | wc -l
}

for t in "${targets[@]}"; do
  if [ ! -x "$build/fuzz_$t" ]; then
    echo "fuzz: $build/fuzz_$t is not built (make fuzz builds it)" >&2
    exit 2
  fi
done

if [ "$minimize" = 1 ]; then
  for t in "${targets[@]}"; do
    corpus="fuzz/corpus/$t"
    minimal="$build/work/$t.minimal"
    rm -rf "$minimal"
    mkdir -p "$minimal"
    before=$(count_inputs "$corpus")
    "$build/fuzz_$t" -merge=1 "$minimal" "$corpus" >"$build/work/$t.minimize.log" 2>&1 || {
      echo "fuzz: minimizing $t failed, see $build/work/$t.minimize.log" >&2
      exit 1
    }
    cp "$corpus"/seed-* "$minimal"/ 2>/dev/null
    find "$corpus" -maxdepth 1 -type f ! -name '.*' -delete
    cp "$minimal"/* "$corpus"/
    echo "fuzz: $t corpus $before -> $(count_inputs "$corpus") inputs"
  done
  exit 0
fi

status=0
summary=()
for t in "${targets[@]}"; do
  bin="$build/fuzz_$t"
  corpus="fuzz/corpus/$t"
  regressions="fuzz/regressions/$t"
  # New inputs go to a scratch directory first: only those that add coverage join the corpus.
  scratch="$build/work/$t"
  log="$build/work/$t.log"
  # Where a target that keeps state between inputs (http_server) writes the inputs before a
  # failing one.
  history="$build/work/$t.history"
  rm -rf "$scratch" "$history"
  mkdir -p "$scratch" "$history" "$corpus" "$regressions"
  dict=()
  [ -f "$(dictionary "$t")" ] && dict=("-dict=$(dictionary "$t")")
  corpus_before=$(count_inputs "$corpus")
  crashes_before=$(count_inputs "$regressions")

  echo "fuzz: $t for ${seconds}s (log: $log)"
  FUZZ_HISTORY_DIR="$history" "$bin" -max_total_time="$seconds" -timeout=25 \
    -rss_limit_mb=2560 -print_final_stats=1 -artifact_prefix="$regressions/" "${dict[@]}" \
    "$scratch" "$corpus" >"$log" 2>&1
  rc=$?
  "$bin" -merge=1 "$corpus" "$scratch" >>"$build/work/$t.merge.log" 2>&1

  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  corpus_after=$(count_inputs "$corpus")
  found=$(($(count_inputs "$regressions") - crashes_before))
  line="$t: ${execs:-?} runs (${speed:-?}/s), corpus $corpus_before -> $corpus_after"
  if [ "$rc" -ne 0 ] || [ "$found" -gt 0 ]; then
    status=1
    line="$line, FOUND $found new input(s) in $regressions (exit $rc)"
    echo "fuzz: $t failed; the report:" >&2
    grep -E "^(==[0-9]+==|SUMMARY|fuzz property|    #[0-9]+ .* in (fetchd|LLVMFuzzer))" "$log" \
      | head -40 >&2
    if [ -n "$(ls -A "$history")" ]; then
      echo "fuzz: the inputs before it, oldest first, are in $history" >&2
    fi
  fi
  summary+=("$line")
done

echo
echo "fuzz summary (${seconds}s per target):"
printf '  %s\n' "${summary[@]}"
exit $status
