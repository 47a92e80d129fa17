#!/usr/bin/env bash
# evidockctl disc and evidockd's disc workers end to end: ingest a simulated recorder, queue its case,
# burn two copies on a hot-folder pseudo-drive (evidockctl disc run, then evidockd), check the discs
# without evidock (xorriso -osirrox + sha256sum -c), disc verify (exit 0, and 2 for a flipped byte),
# and see the discs in evidockctl log/chain. Prints TAP.
. "$EVIDOCK_SOURCE_ROOT/tests/e2e/lib.sh"

setup_env disc
DEV=D1SC0E2
V=$WORK/vol
make_volume "$V" "$DEV" 012370 --videos 2 --duration 1
enroll "$V" "$DEV" 012370
"$CTL" ingest --source "$V" --case 2026-DISC-0001 >"$WORK/ingest.out" 2>&1
HOT=$WORK/hot
mkdir -p "$HOT" "$WORK/disc-work"
printf '[disc]\nwork_dir = %s\nmedia = dvd\n' "$WORK/disc-work" >>"$CONF"

begin "--help touches nothing; a queue without a selection is a usage error"
EVIDOCK_CONFIG=/nonexistent "$CTL" disc queue --help >/dev/null; check_eq "help exit" 0 "$?"
"$CTL" disc queue >/dev/null 2>&1; check_eq "usage exit" 64 "$?"
"$CTL" disc show abc >/dev/null 2>&1; check_eq "bad job number" 64 "$?"
end

begin "queue, list, run: two identical verified discs in the hot folder"
"$CTL" disc queue --case 2026-DISC-0001 --copies 2 --reason "long-term: disputed" >"$WORK/q.out" 2>&1 ||
        fail "queue: $(cat "$WORK/q.out")"
grep -q "queued disc job 1: 2 recording(s), 1 dvd disc(s) x 2 copies" "$WORK/q.out" || fail "queue said: $(cat "$WORK/q.out")"
check_eq "listed as queued" queued "$("$CTL" disc list --json | jq -r .state)"
"$CTL" disc run --drive "dir:$HOT" >"$WORK/run.out" 2>"$WORK/run.err"; rc=$?
check_eq "run exit" 0 "$rc"
grep -q "job 1 done" "$WORK/run.out" || fail "run said: $(cat "$WORK/run.out")"
grep -q "verifying 100.0%" "$WORK/run.err" || fail "no progress: $(tail -3 "$WORK/run.err")"
check_eq "discs" 2 "$(ls "$HOT"/*.iso | wc -l)"
check_eq "identical" 1 "$(sha256sum "$HOT"/*.iso | cut -d' ' -f1 | sort -u | wc -l)"
check_eq "state" done "$("$CTL" disc show --json 1 | jq -r .state)"
check_eq "verified" 2 "$("$CTL" disc show --json 1 | jq '[.burned[] | select(.outcome == "verified")] | length')"
end

begin "the disc checks out without evidock"
X=$WORK/x
xorriso -osirrox on -indev "$HOT/evd-j1-d1of1-c1.iso" -extract / "$X" >/dev/null 2>&1 || fail "extract"
(cd "$X" && sha256sum --quiet -c tagmanifest-sha256.txt && sha256sum --quiet -c manifest-sha256.txt) >/dev/null 2>&1 ||
        fail "sha256sum -c failed"
xorriso -md5 on -indev "$HOT/evd-j1-d1of1-c1.iso" -check_md5_r FAILURE / -- >/dev/null 2>&1 || fail "check_md5_r"
check_eq "originals on the disc" 2 "$(find "$X/data/originals" -type f | wc -l)"
grep -qx "Case-Number: 2026-DISC-0001" "$X/bag-info.txt" || fail "bag-info: $(cat "$X/bag-info.txt")"
end

begin "disc verify: 0 for an intact disc, 2 for a flipped byte; log and chain show the discs"
"$CTL" disc verify "$HOT/evd-j1-d1of1-c2.iso" >"$WORK/v.out"; check_eq "intact" 0 "$?"
cp "$HOT/evd-j1-d1of1-c2.iso" "$WORK/bad.iso"
lba=$(xorriso -indev "$WORK/bad.iso" -find /data/originals -type f -exec report_lba -- 2>/dev/null |
        sed -n "s/^File data lba: *0 *, *\([0-9]*\) .*/\1/p" | head -1)
printf 'Z' | dd of="$WORK/bad.iso" bs=1 seek=$((lba * 2048 + 99)) conv=notrunc 2>/dev/null
"$CTL" disc verify --json "$WORK/bad.iso" >"$WORK/v2.out"; check_eq "flipped" 2 "$?"
check_eq "outcome" mismatch "$(jq -r .outcome "$WORK/v2.out")"
"$CTL" log --columns line | grep -q "on disc: evd-j1-d1of1 copy 1, evd-j1-d1of1 copy 2" || fail "log: $("$CTL" log --columns line | head -4)"
check_eq "log --json discs" 2 "$("$CTL" log --format json | head -1 | jq '.discs | length')"
"$CTL" chain "$DEV" | grep -q "on disc: evd-j1-d1of1" || fail "chain: $("$CTL" chain "$DEV" | head -5)"
end

begin "evidockd burns a queued job on its [disc] drive"
HOT2=$WORK/hot2
mkdir -p "$HOT2"
printf 'drives = dir:%s\ncopies = 1\n' "$HOT2" >>"$CONF"
"$CTL" disc queue --device "$DEV" >/dev/null || fail "queue"
export EVIDOCK_STATUS_FILE=$WORK/status.json
"$EVIDOCKD" --config "$CONF" 2>"$WORK/daemon.log" &
pid=$!
for _ in $(seq 1 120); do
        [ "$("$CTL" disc show --json 2 | jq -r .state)" = done ] && break
        sleep 0.5
done
check_eq "job 2" done "$("$CTL" disc show --json 2 | jq -r .state)"
check_eq "image" 1 "$(ls "$HOT2"/*.iso 2>/dev/null | wc -l)"
grep -q "burning disc jobs on dir:$HOT2" "$WORK/daemon.log" || fail "daemon log: $(head -5 "$WORK/daemon.log")"
kill -TERM "$pid"; wait "$pid"; check_eq "clean stop" 0 "$?"
end

begin "evidockctl status shows a running disc job: stage, disc n of m, copy, percent rising, MB/s, ETA"
# a slow pseudo-drive: the burn of an image like job 2's is paced to take about 8 s
size=$(stat -c %s "$(ls "$HOT2"/*.iso | head -1)")
export EVIDOCK_SLOW_XORRISO_BPS=$(( size / 8 > 4096 ? size / 8 : 4096 ))
printf 'xorriso = %s\n' "$EVIDOCK_SOURCE_ROOT/tests/disc/slow-xorriso" >>"$CONF"
"$CTL" disc queue --device "$DEV" >/dev/null || fail "queue"
"$EVIDOCKD" --config "$CONF" 2>"$WORK/daemon3.log" &
pid=$!
: >"$WORK/samples"
for _ in $(seq 1 240); do
        "$CTL" status --json 2>/dev/null | jq -c '.discs[0] // empty' >>"$WORK/samples"
        if [ "$(tail -1 "$WORK/samples" | jq -r 'select(.percent > 0 and .eta_s != null) | .stage')" = burning ] &&
                [ ! -s "$WORK/status-text" ]; then
                "$CTL" status >"$WORK/status-text" 2>&1
        fi
        [ "$("$CTL" disc show --json 3 | jq -r .state)" = done ] && break
        sleep 0.25
done
check_eq "job 3" done "$("$CTL" disc show --json 3 | jq -r .state)"
burning=$(jq -c 'select(.job_id == 3 and .stage == "burning")' "$WORK/samples")
pcts=$(jq -r '.percent' <<<"$burning" | awk 'NF' | uniq)
first=$(head -1 <<<"$pcts") last=$(tail -1 <<<"$pcts")
[ "$(wc -l <<<"$pcts")" -ge 3 ] || fail "fewer than 3 burning percentages: $pcts"
awk -v a="${first:-0}" -v b="${last:-0}" 'BEGIN { exit !(b > a) }' || fail "percent did not rise: $pcts"
sort -n -c <<<"$pcts" 2>/dev/null || fail "percent went back: $pcts"
jq -se 'map(select(.eta_s != null and .eta_s > 0 and .mbps > 0)) | length > 0' <<<"$burning" >/dev/null ||
        fail "no ETA/MB/s while burning: $burning"
check_eq "disc 1 of 1, copy 1 of 1" "1 1 1 1" "$(head -1 <<<"$burning" | jq -r '"\(.disc) \(.discs) \(.copy) \(.copies)"')"
# the read-back of so small a disc is too quick to catch in status; the journal has its end
grep -q "disc job 3 disc 1/1 copy 1 on dir:$HOT2: verifying 100%" "$WORK/daemon3.log" ||
        fail "no read-back progress: $(grep 'disc job 3' "$WORK/daemon3.log")"
grep -q "disc job 3, disc 1 of 1, copy 1 of 1: burning [0-9.]*% of [0-9.]* MB, [0-9.]* MB/s, [0-9]*:[0-9][0-9] left" "$WORK/status-text" ||
        fail "status text: $(cat "$WORK/status-text")"
# once done, the drive is idle and says how the job ended
for _ in $(seq 1 20); do
        "$CTL" status --json 2>/dev/null | jq -e '.discs[0] | select(.job_id == null and (.last // "" | test("job 3")))' >/dev/null && break
        sleep 0.5
done
"$CTL" status --json 2>/dev/null | jq -e '.discs[0] | select(.job_id == null and (.last // "" | test("job 3")))' >/dev/null ||
        fail "after the job: $("$CTL" status --json | jq -c .discs)"
"$CTL" status | grep -q "dir:$HOT2: idle; last: .*job 3" || fail "idle text: $("$CTL" status | grep -A2 'disc drives')"
check_eq "the paced disc verified" verified "$("$CTL" disc show --json 3 | jq -r '.burned[0].outcome')"
kill -TERM "$pid"; wait "$pid"; check_eq "clean stop" 0 "$?"
unset EVIDOCK_SLOW_XORRISO_BPS
end

begin "disc queue --case selects by the current case: a recording assigned to another case after ingest"
read -r -a F <<<"$("$CTL" log --json --device "$DEV" | jq -r .id | sort -n | xargs)"
check_eq "recordings of $DEV" 2 "${#F[@]}"
"$CTL" case open 2026-DISC-0002 --category criminal --reason "split off" >/dev/null || fail "case open"
"$CTL" case assign 2026-DISC-0002 --file "${F[1]}" --reason "belongs to the other case" >/dev/null || fail "case assign"
job_files() { psql "$DB" -qAt -c "SELECT string_agg(file_id::text, ' ' ORDER BY file_id) FROM disc_job_files WHERE job_id = $1"; }
"$CTL" disc queue --json --case 2026-DISC-0002 --copies 1 >"$WORK/q-new.json" || fail "queue the new case: $(cat "$WORK/q-new.json")"
job=$(jq -r .job_id "$WORK/q-new.json")
check_eq "the new case's job holds the reassigned recording" "${F[1]}" "$(job_files "$job")"
check_eq "and carries the current case" 2026-DISC-0002 "$(jq -r .case_numbers "$WORK/q-new.json")"
"$CTL" disc queue --json --case 2026-DISC-0001 --copies 1 >"$WORK/q-old.json" || fail "queue the old case: $(cat "$WORK/q-old.json")"
job=$(jq -r .job_id "$WORK/q-old.json")
check_eq "the recorder's case keeps only the other recording" "${F[0]}" "$(job_files "$job")"
# taken out of every case, a recording is in none: the recorder's case no longer selects it
"$CTL" case unassign 2026-DISC-0002 --file "${F[1]}" --reason "in no case" >/dev/null || fail "case unassign"
"$CTL" disc queue --case 2026-DISC-0002 >"$WORK/q-none.out" 2>&1; rc=$?
[ "$rc" -ne 0 ] && grep -q "no recording matches" "$WORK/q-none.out" || fail "an empty current case queued: rc $rc, $(cat "$WORK/q-none.out")"
"$CTL" disc queue --json --case 2026-DISC-0001 --copies 1 >"$WORK/q-old2.json" || fail "queue again"
check_eq "still only the other recording" "${F[0]}" "$(job_files "$(jq -r .job_id "$WORK/q-old2.json")")"
end

finish
