#!/usr/bin/env bash
# What a recorder volume may hold besides recordings (issue 9, items 3 and 4): special files and symlinks
# next to the recordings, also as the manifest, are reported as findings naming the path and its type
# and never opened (a FIFO used to hang the docking forever); a media worker taken over by a hostile
# recording cannot alter the stored original. Prints TAP.
. "$(dirname "$0")/lib.sh"

setup_env sources
DEV=S0URC3S
V=$WORK/vol
make_volume "$V" "$DEV" 012360 --videos 2 --duration 1
enroll "$V" "$DEV" 012360
# run_ingest VOLUME OUT: evidockctl ingest under a 60 s guard (a docking that blocks is a failure)
run_ingest() { timeout -s KILL 60 "$CTL" ingest --source "$1" >"$2" 2>&1; }
chain_text() { "$CTL" chain "$DEV"; }

begin "special files and symlinks next to the recordings are reported by path and type, never opened"
mkfifo "$V/VIDEO/FIFO.MP4"
python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' "$V/VIDEO/SOCK.MP4"
ln -s /etc/passwd "$V/VIDEO/LINK.MP4"
have_dev=0; mknod "$V/VIDEO/NULL.MP4" c 1 3 2>/dev/null && have_dev=1
t0=$(date +%s)
run_ingest "$V" "$WORK/out1"; rc=$?
t1=$(date +%s)
[ "$rc" -ne 137 ] || fail "the docking hung (killed after 60 s): $(tail -3 "$WORK/out1")"
check_eq "exit status (findings)" 2 "$rc"
[ $((t1 - t0)) -lt 30 ] || fail "took $((t1 - t0)) s"
ch=$(chain_text)
grep -q "UNREADABLE: 'VIDEO/FIFO.MP4' is a fifo, not a regular file" <<<"$ch" || fail "no finding for the FIFO: $ch"
grep -q "UNREADABLE: 'VIDEO/SOCK.MP4' is a socket" <<<"$ch" || fail "no finding for the socket"
grep -q "UNREADABLE: 'VIDEO/LINK.MP4' is a symlink" <<<"$ch" || fail "no finding for the symlink"
[ "$have_dev" = 0 ] || grep -q "'VIDEO/NULL.MP4' is a character device" <<<"$ch" || fail "no finding for the device node"
check_eq "recordings INTACT" 2 "$(log_json | jq -r .verdict | grep -c '^INTACT$')"
check_eq "rows" 2 "$(log_json | wc -l)"
end

# fifo_as FILE N: a copy of the volume whose FILE is a FIFO docks without blocking and names it
fifo_as() {
        local file=$1 w=$WORK/vol$2
        begin "a FIFO as $file does not block the docking and is named"
        cp -a "$V" "$w"
        rm -f "$w/VIDEO/FIFO.MP4" "$w/VIDEO/SOCK.MP4" "$w/VIDEO/LINK.MP4" "$w/VIDEO/NULL.MP4"
        rm "$w/$file" && mkfifo "$w/$file"
        run_ingest "$w" "$WORK/out$2"; rc=$?
        [ "$rc" -ne 137 ] || fail "the docking hung on the FIFO (killed after 60 s)"
        grep -q "'$file' is a fifo" <<<"$(chain_text)" || fail "$file not named: $(tail -5 "$WORK/out$2")"
        end
}
fifo_as EVIDOCK/CHAIN.LOG 2
fifo_as EVIDOCK/DEVICE.TXT 3

begin "a media worker that tries to rewrite the stored original cannot (seccomp), and originals are 0440"
FAULTY=$EVIDOCK_BUILD_ROOT/tests/e2e/evidock-media-worker-faults
A=$WORK/attack
make_volume "$A" A77ACK0 012361 --videos 2 --duration 1
enroll "$A" A77ACK0 012361
victim=$(cd "$A" && ls VIDEO/*_0001.MP4)
want=$(sha256sum "$A/$victim" | cut -d' ' -f1)
EVIDOCK_MEDIA_WORKER=$FAULTY EVIDOCK_MEDIA_WORKER_TEST_FAULT="rewrite:_0001.MP4" \
        timeout -s KILL 120 "$CTL" ingest --source "$A" >"$WORK/out4" 2>&1; rc=$?
grep -q "rewrite attack: open /proc/self/fd/3 O_RDWR" "$WORK/out4" || fail "the attack did not run: $(tail -3 "$WORK/out4")"
if grep -q "rewrite attack: .*SUCCEEDED" "$WORK/out4"; then fail "$(grep 'rewrite attack' "$WORK/out4" | tr '\n' ';')"; fi
check_eq "exit status" 0 "$rc"
row=$("$CTL" log --format json --device A77ACK0 | jq -c "select(.sha256==\"$want\")")
orig=$(jq -r .original_path <<<"$row")
[ -n "$orig" ] && [ "$orig" != null ] || fail "no row for the attacked file"
check_eq "stored original bit-exact" "$want" "$(sha256sum "$STORE/$orig" 2>/dev/null | cut -d' ' -f1)"
check_eq "verdict" INTACT "$(jq -r .verdict <<<"$row")"
check_eq "mode of the original" 440 "$(stat -c %a "$STORE/$orig")"
check_eq "mode of the archive copy" 440 "$(stat -c %a "$STORE/$(jq -r .archive_path <<<"$row")")"
end

begin "audit fixity: all copies match, then a flipped byte in an original and in an archive copy is found and recorded"
"$CTL" audit fixity >"$WORK/fx0" 2>&1; rc=$?
check_eq "clean store: exit status" 0 "$rc"
grep -q "0 mismatches" "$WORK/fx0" || fail "clean run: $(cat "$WORK/fx0")"
rows=$("$CTL" log --format json)
o=$(jq -r 'select(.archive_path != null) | .original_path' <<<"$rows" | head -1)
a=$(jq -r 'select(.archive_path != null) | .archive_path' <<<"$rows" | tail -1)
flip() { local f=$1 off=$2 b; b=$(od -An -tu1 -j "$off" -N1 "$f" | tr -d ' '); printf "$(printf '\\%03o' $(( (b ^ 1) & 255 )))" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none; }
flip "$STORE/$o" 100
flip "$STORE/$a" 200
"$CTL" audit fixity --json >"$WORK/fx1" 2>"$WORK/fx1.err"; rc=$?
check_eq "exit status (mismatches)" 2 "$rc"
check_eq "mismatches" 2 "$(jq -r .mismatches_total "$WORK/fx1")"
check_eq "the original named" "$o changed" "$(jq -r ".mismatches[] | select(.copy==\"original\") | \"\(.path) \(.problem)\"" "$WORK/fx1")"
check_eq "the archive copy named" "$a changed" "$(jq -r ".mismatches[] | select(.copy==\"archive\") | \"\(.path) \(.problem)\"" "$WORK/fx1")"
check_eq "custody events" 2 "$(psql "$DB" -qAt -c "SELECT count(*) FROM custody_events WHERE kind = 'fixity_mismatch'")"
"$CTL" audit verify >/dev/null || fail "custody log does not verify after the fixity run"
end

begin "audit fixity --sample N --resume walks the archive a share at a time"
n=$("$CTL" log --format json | wc -l)
"$CTL" audit fixity --sample 1 --json >"$WORK/fs1"; "$CTL" audit fixity --sample 1 --resume --json >"$WORK/fs2"
check_eq "first sample: 1 file" 1 "$(jq -r .files "$WORK/fs1")"
first=$(jq -r .last_file_id "$WORK/fs1")
check_eq "the resumed sample continues after it" "$(psql "$DB" -qAt -c "SELECT min(id) FROM files WHERE id > $first")" "$(jq -r .first_file_id "$WORK/fs2")"
"$CTL" audit fixity --resume --json >"$WORK/fs3"
check_eq "the rest of the pass" "$((n - 2))" "$(jq -r .files "$WORK/fs3")"
check_eq "reached the end" true "$(jq -r .reached_end "$WORK/fs3")"
"$CTL" audit fixity --sample 1 --resume --json >"$WORK/fs4"
check_eq "after the end it starts over" "$(psql "$DB" -qAt -c "SELECT min(id) FROM files")" "$(jq -r .first_file_id "$WORK/fs4")"
"$CTL" audit fixity --sample 0 >/dev/null 2>&1; check_eq "--sample 0 is a usage error" 64 "$?"
end

begin "hostile text: a case number with C1/bidi characters stays INTACT and tagged; no control or bidi character reaches the terminal"
T=$WORK/text
case_no=$'CASE\xc2\x9b2J-\xe2\x80\xae1202-\xc2\x85X'
make_volume "$T" T3XT000 012362 --videos 1 --duration 1 --case "$case_no"
enroll "$T" T3XT000 012362
printf 'x' >"$T/VIDEO/"$'EVIL\x1b[2J\xe2\x80\xaegpj.MP4'
timeout -s KILL 120 "$CTL" ingest --source "$T" >"$WORK/out5" 2>&1; rc=$?
check_eq "exit status (the foreign file is a finding)" 2 "$rc"
row=$("$CTL" log --format json --device T3XT000 | jq -c 'select(.seq != null)')
check_eq "the signed recording" INTACT "$(jq -r .verdict <<<"$row")"
check_eq "its case number, as recorded" "$case_no" "$(jq -r .case_number <<<"$row")"
tags=$(ffprobe -v error -show_entries format_tags=CASE_NUMBER -of default=noprint_wrappers=1:nokey=1 "$STORE/$(jq -r .archive_path <<<"$row")")
check_eq "the archive copy's CASE_NUMBER tag" "$case_no" "$tags"
"$CTL" log --device T3XT000 >"$WORK/log5" 2>&1
"$CTL" chain T3XT000 >>"$WORK/log5" 2>&1
cat "$WORK/out5" >>"$WORK/log5"
if LC_ALL=C grep -qP '[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xaa-\xae]|\xe2\x81[\xa6-\xa9]' "$WORK/log5"; then
        fail "raw control or bidi characters in the text output: $(LC_ALL=C grep -naP '[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xaa-\xae]' "$WORK/log5" | head -3 | cat -v)"
fi
grep -qF 'CASE\u{009b}2J-\u{202e}1202-\u{0085}X' "$WORK/log5" || fail "the case number is not shown escaped: $(grep -a case "$WORK/log5" | head -2 | cat -v)"
grep -qF 'EVIL\x1b[2J' "$WORK/log5" || fail "the hostile file name is not shown escaped"
end

finish
