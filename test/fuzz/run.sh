#!/bin/sh
# Runs each libFuzzer harness for SECONDS on a scratch copy of its seed
# corpus (the committed corpus stays as it is), then prints what each
# reached. Fails on the first crash, leak or sanitizer report; the input
# that caused it is kept in $FUZZ_BUILD/artifacts/.
#
#   FUZZ_BUILD=build/fuzz test/fuzz/run.sh SECONDS HARNESS...
#
# With FUZZ_GROW_CORPUS=1 the inputs that reached something new are merged
# into the committed corpus (make fuzz-corpus), to be committed.
set -eu
seconds=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
build=${FUZZ_BUILD:-build/fuzz}
mkdir -p "$build/artifacts"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
summary="$scratch/summary"
printf '%-8s %12s %8s %9s %8s %7s %s\n' harness executions exec/s "edges" "of" features \
	"lines reached in the files it targets" > "$summary"

# The files each harness is for, and the lines of them that the corpus
# (seeds and what the run added) reaches, replayed through the coverage
# build of the harness ($FUZZ_COVERAGE_BUILD; skipped when unset).
targets() {
	case $1 in
	control) echo plugin/control.c plugin/commands_tokens.c plugin/commands_roles.c plugin/fields.c ;;
	state) echo plugin/snapshot_reader.c plugin/state_format.c plugin/metadata_json.c plugin/journal.c plugin/journal_file.c \
		plugin/persist.c plugin/session_records.c ;;
	console) echo console/http_api.c ;;
	ctrl) echo ctrl/ctrl_main.c ctrl/ctrl_print.c ctrl/ctrl_valid_until.c ;;
	esac
}

line_coverage() {
	[ -n "${FUZZ_COVERAGE_BUILD:-}" ] || return 0
	binary="$FUZZ_COVERAGE_BUILD/fuzz_$1"
	LLVM_PROFILE_FILE="$scratch/$1.profraw" "$binary" -runs=0 "$2" > "$scratch/$1.replay.log" 2>&1
	llvm-profdata-14 merge -sparse "$scratch/$1.profraw" -o "$scratch/$1.profdata"
	# shellcheck disable=SC2046
	llvm-cov-14 report "$binary" -instr-profile="$scratch/$1.profdata" $(targets "$1") |
		awk '$1 == "TOTAL" { printf "%s of %s lines (%s)", $8 - $9, $8, $10 }'
}

for harness in "$@"; do
	corpus="$scratch/corpus-$harness"
	mkdir -p "$corpus"
	cp "$here/corpus/$harness"/* "$corpus"/
	log="$build/fuzz_$harness.log"
	echo "== fuzzing $harness for $seconds s (log: $log)"
	# A harness's own flags: the module's messages would fill the log.
	flags=$(cat "$here/$harness.flags" 2>/dev/null || true)
	# shellcheck disable=SC2086
	if ! "$build/fuzz_$harness" -max_total_time="$seconds" -print_final_stats=1 $flags \
			-dict="$here/json.dict" -artifact_prefix="$build/artifacts/$harness-" \
			-timeout=10 -rss_limit_mb=2048 "$corpus" > "$log" 2>&1; then
		grep -v "^#[0-9]" "$log" | tail -n 60
		echo "fuzz_$harness failed: see $log and $build/artifacts/" >&2
		exit 1
	fi
	if [ "${FUZZ_GROW_CORPUS:-}" = 1 ]; then
		"$build/fuzz_$harness" -merge=1 $flags "$here/corpus/$harness" "$corpus" > "$build/fuzz_$harness.merge.log" 2>&1
		echo "   merged into test/fuzz/corpus/$harness: $(ls "$here/corpus/$harness" | wc -l) inputs"
	fi
	# libFuzzer's last status line holds cov (edges reached) and ft
	# (features); the "Loaded ... counters" line holds the edges instrumented.
	status=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
	executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	edges=$(echo "$status" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
	features=$(echo "$status" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
	total=$(sed -n 's/.*Loaded [0-9]* modules *(\([0-9]*\) inline 8-bit counters).*/\1/p' "$log" | head -n 1)
	printf '%-8s %12s %8s %9s %8s %7s %s\n' "$harness" "$executions" "$rate" "$edges" "$total" "$features" \
		"$(line_coverage "$harness" "$corpus")" >> "$summary"
done
echo
cat "$summary"
