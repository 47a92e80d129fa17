#!/usr/bin/env bash
# Hostile media cannot take evidockctl down (issue 5): damaged and truncated recordings, and a media worker
# that crashes, hangs, exits or talks garbage (its test build, driven by EVIDOCK_MEDIA_WORKER_TEST_FAULT).
# Each time: the ingest completes, the original is kept bit-exact in quarantine, the verdict names the
# failure (MEDIA_INVALID with a message), the other files stay INTACT. Prints TAP.
. "$(dirname "$0")/lib.sh"

FAULTY=${EVIDOCK_MEDIA_WORKER_FAULTS:-$EVIDOCK_BUILD_ROOT/tests/e2e/evidock-media-worker-faults}
[ -x "$FAULTY" ] || { echo "Bail out! no test build of the media worker at $FAULTY"; exit 1; }
[ -x "${EVIDOCK_MEDIA_WORKER:-}" ] || { echo "Bail out! EVIDOCK_MEDIA_WORKER does not name the media worker"; exit 1; }

setup_env hostile
[ -n "${EVIDOCK_E2E_KEEP:-}" ] && trap - EXIT && echo "# work dir $WORK"
printf '[ingest]\nmedia_timeout = 2s\n' >>"$EVIDOCK_CONFIG"
DEV=H0ST1L3
H=$WORK/hostile
make_volume "$H" "$DEV" 012350 --videos 10 --duration 1
enroll "$H" "$DEV" 012350
file_n() { (cd "$H" && ls VIDEO/*_"$(printf %04d "$1")".MP4); }
# offset of the first occurrence of a box type (its 4-character name) in a file
box_at() { grep -obUa "$2" "$1" | head -1 | cut -d: -f1; }
poke() { printf "$3" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }

# the damage, one kind per file
f=$H/$(file_n 1); truncate -s $(($(stat -c %s "$f") / 2)) "$f"                       # cut at half
f=$H/$(file_n 2); m=$(box_at "$f" mdat); size=$(stat -c %s "$f")                      # noise in the payload
dd if=/dev/urandom of="$f" bs=1 seek=$((m + 64)) count=$(( (size - m) / 3 > 4096 ? 4096 : (size - m) / 3 )) conv=notrunc status=none
f=$H/$(file_n 3); : >"$f"                                                              # zero length
f=$H/$(file_n 4); s=$(box_at "$f" stsz)                                                # a 2 GiB sample
[ -n "$s" ] && poke "$f" $((s + 12)) '\x00\x00\x00\x00' && poke "$f" $((s + 20)) '\x7f\xff\xff\x00'
f=$H/$(file_n 5); m=$(box_at "$f" moov)                                                # noise in the index
[ -n "$m" ] && dd if=/dev/urandom of="$f" bs=1 seek=$((m + 8)) count=200 conv=notrunc status=none
# 6..9: intact files on which the worker misbehaves; 10: intact
declare -A want
for n in 1 2 3 4 5 6 7 8 9 10; do want[$n]=$(sha256sum "$H/$(file_n "$n")" | cut -d' ' -f1); done
before=$(snapshot "$H")
# the row whose original has this content (the log has no source path: match the hash and the name)
row_by_sha() { "$CTL" log --format json --device "$DEV" | jq -c "select(.sha256==\"$1\")" | head -1; }

begin "an ingest of damaged media and a misbehaving worker completes without a crash"
t0=$(date +%s)
EVIDOCK_MEDIA_WORKER=$FAULTY \
EVIDOCK_MEDIA_WORKER_TEST_FAULT="abort:_0006.MP4,hang:_0007.MP4,garbage:_0008.MP4,exit:_0009.MP4" \
        "$CTL" ingest --source "$H" >"$WORK/out" 2>"$WORK/err"; rc=$?
t1=$(date +%s)
check_eq "exit status (findings, not a crash)" 2 "$rc"
check_eq "rows" 10 "$("$CTL" log --format json --device "$DEV" | wc -l)"
[ $((t1 - t0)) -lt 30 ] || fail "took $((t1 - t0)) s: the hanging worker was not cut off at the 2 s deadline"
grep -q "injecting fault 'hang'" "$WORK/err" || fail "the hang fault was not injected: $(tail -3 "$WORK/err")"
check_eq "no media worker left running" 0 "$(pgrep -fc "evidock-media-worker-faults --serve" || true)"
end

# check_hostile N DESCRIPTION REGEX: file N is kept bit-exact in quarantine with MEDIA_INVALID whose
# message matches REGEX and names the file
check_hostile() {
        local n=$1 what=$2 re=$3 row
        begin "$what: kept bit-exact in quarantine, MEDIA_INVALID names the failure"
        row=$(row_by_sha "${want[$n]}")
        if [ -z "$row" ]; then
                fail "no row for file $n ($(file_n "$n"))"
        else
                local orig msg
                orig=$(jq -r .original_path <<<"$row")
                case "$orig" in quarantine/*) ;; *) fail "original not in quarantine: $orig" ;; esac
                check_eq "quarantined original bit-exact" "${want[$n]}" "$(sha256sum "$STORE/$orig" | cut -d' ' -f1)"
                msg=$(jq -r '.findings[] | select(.verdict=="MEDIA_INVALID") | .detail' <<<"$row")
                [ -n "$msg" ] || fail "no MEDIA_INVALID finding: $(jq -c '[.verdict, [.findings[].verdict]]' <<<"$row")"
                grep -qF "$(basename "$(file_n "$n")")" <<<"$msg" || fail "message does not name the file: $msg"
                grep -qiE "$re" <<<"$msg" || fail "message does not match /$re/: $msg"
                check_eq "no archive copy" null "$(jq -r .archive_path <<<"$row")"
        fi
        end
}
check_hostile 1 "a video cut at half" "cannot read|truncat|index|no packets|invalid|corrupt"
check_hostile 3 "a zero-length video" "empty|truncat|no packets|invalid|short|size 0|0 bytes"
check_hostile 4 "a video whose index claims a 2 GiB sample" "larger than|truncat|invalid|packet|corrupt|end of file"
check_hostile 5 "a video with noise over its index" "invalid|corrupt|index|moov|no packets|truncat|not|stream"
check_hostile 6 "a file on which the media worker aborts" "media worker crashed.*signal 6"
check_hostile 7 "a file on which the media worker hangs" "deadline"
check_hostile 8 "a file on which the media worker replies garbage" "malformed|no valid reply"
check_hostile 9 "a file on which the media worker exits without a reply" "media worker failed.*exit status 1"

begin "noise in the media payload: kept bit-exact in quarantine (its hash no longer matches the record)"
row=$(row_by_sha "${want[2]}")
orig=$(jq -r .original_path <<<"$row")
case "$orig" in quarantine/*) ;; *) fail "original not in quarantine: $orig ($row)" ;; esac
check_eq "original bit-exact" "${want[2]}" "$(sha256sum "$STORE/$orig" 2>/dev/null | cut -d' ' -f1)"
jq -r '.findings[].verdict' <<<"$row" | grep -q HASH_MISMATCH || fail "no HASH_MISMATCH: $row"
end

begin "the intact file beside them is INTACT with an archive copy"
row=$(row_by_sha "${want[10]}")
check_eq "verdict" INTACT "$(jq -r .verdict <<<"$row")"
arch=$(jq -r .archive_path <<<"$row")
check_eq "archive copy hash" "$(jq -r .archive_sha256 <<<"$row")" "$(sha256sum "$STORE/$arch" 2>/dev/null | cut -d' ' -f1)"
check_eq "the volume is untouched" "$before" "$(snapshot "$H")"
check_eq "no temp files" 0 "$(find "$STORE" -name '.evd-tmp*' | wc -l)"
end

begin "with the real worker the same volume docks again without duplicates"
"$CTL" ingest --source "$H" --quiet 2>/dev/null; rc=$?
check_eq "exit status" 0 "$rc"
check_eq "rows" 10 "$("$CTL" log --format json --device "$DEV" | wc -l)"
check_eq "distinct hashes" 10 "$("$CTL" log --format json --device "$DEV" | jq -r .sha256 | sort -u | wc -l)"
end

begin "a missing media worker stops the docking with an installation error, and takes nothing"
M=$WORK/noworker
make_volume "$M" N0W0RK3 012351 --videos 2 --duration 1
enroll "$M" N0W0RK3 012351
EVIDOCK_MEDIA_WORKER=$WORK/does-not-exist "$CTL" ingest --source "$M" --quiet 2>"$WORK/err-nw"; rc=$?
check_eq "exit status" 1 "$rc"
grep -q "media worker .*does-not-exist.*installation error" "$WORK/err-nw" || fail "message: $(cat "$WORK/err-nw")"
check_eq "rows" 0 "$("$CTL" log --format json --device N0W0RK3 | wc -l)"
check_eq "nothing quarantined" 0 "$(find "$STORE/quarantine/N0W0RK3" -type f 2>/dev/null | wc -l)"
"$CTL" ingest --source "$M" --quiet 2>/dev/null; rc=$?
check_eq "exit status with the worker back" 0 "$rc"
check_eq "rows after" 2 "$("$CTL" log --format json --device N0W0RK3 | jq -r .verdict | grep -c '^INTACT$')"
end

begin "the custody log verifies"
"$CTL" audit verify >"$WORK/audit" 2>&1; rc=$?
check_eq "audit exit status" 0 "$rc"
end

finish
