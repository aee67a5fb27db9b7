#!/usr/bin/env bash
# Runs each libFuzzer target of modelpress-fuzz for a bounded time (see `make fuzz`).
# usage: Fuzz/run-fuzzers.sh BINARY SECONDS OUTDIR TARGET...
# Per target: new corpus entries go to OUTDIR/<target>/corpus (the committed seeds in
# Fuzz/Corpus/<target> are read, never written), crashes, timeouts and OOMs to OUTDIR/<target>/
# (crash-*, timeout-*, oom-*, leak-*), the log to OUTDIR/<target>/log. Prints one line per target
# (seconds, executions, new units, findings) and exits 1 when any target left a finding.
# With FUZZ_KEEP_GOING=1 a target that found something is restarted (on its grown corpus) until its
# time is used up, so one finding does not end a long run; executions are summed over the restarts.
# With FUZZ_RUNS=N each target instead runs exactly N inputs from seed FUZZ_SEED (default 1), SECONDS
# being only a cap: the same inputs on every machine, so `make test` cannot fail by chance.
set -u
bin=$1; seconds=$2; out=$3; shift 3
dict_of() { case $1 in gguf|imatrix) echo Fuzz/Dictionaries/gguf.dict ;; recipe) echo Fuzz/Dictionaries/recipe.dict ;; *) echo Fuzz/Dictionaries/json.dict ;; esac; }
# The scratch folders of fuzz processes that ended without cleaning up (a crash skips exit handlers).
clean_scratch() { for d in /dev/shm/modelpress-fuzz-* "${TMPDIR:-/tmp}"/modelpress-fuzz-*; do [ -d "$d" ] && ! kill -0 "${d##*-}" 2>/dev/null && rm -rf "$d"; done; }
status=0
printf '%-15s %8s %12s %8s %s\n' target seconds executions new findings
for t in "$@"; do
  dir=$out/$t
  mkdir -p "$dir/corpus"
  start=$(date +%s); elapsed=0; : > "$dir/log"
  runs=(); [ -n "${FUZZ_RUNS:-}" ] && runs=(-runs="$FUZZ_RUNS" -seed="${FUZZ_SEED:-1}")
  while :; do
    MODELPRESS_FUZZ_TARGET=$t "$bin" "${runs[@]}" -max_total_time=$(( seconds - elapsed )) -rss_limit_mb=2048 -malloc_limit_mb=1024 -timeout=10 \
      -max_len=65536 -detect_leaks=0 -print_final_stats=1 -dict="$(dict_of "$t")" -artifact_prefix="$dir/" \
      "$dir/corpus" "Fuzz/Corpus/$t" >> "$dir/log" 2>&1
    rc=$?
    clean_scratch
    elapsed=$(( $(date +%s) - start ))
    [ "$rc" -ne 0 ] && [ "${FUZZ_KEEP_GOING:-0}" = 1 ] && [ "$elapsed" -lt "$seconds" ] || break
  done
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/log" | awk '{s += $1} END {if (NR) print s}')
  new=$(sed -n 's/^stat::new_units_added: *//p' "$dir/log" | awk '{s += $1} END {if (NR) print s}')
  findings=$(cd "$dir" && ls crash-* timeout-* oom-* leak-* slow-unit-* 2>/dev/null | tr '\n' ' ')
  printf '%-15s %8s %12s %8s %s\n' "$t" "$elapsed" "${execs:-?}" "${new:-?}" "${findings:-none}"
  if [ -n "$findings" ] || [ -z "$execs" ]; then status=1; echo "  see $dir/log"; fi
done
exit $status
