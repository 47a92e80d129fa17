#!/usr/bin/env bash
# A remote evidence database over TLS: a scratch PostgreSQL listening on 127.0.0.1 with a certificate
# from a test CA, reachable only over TLS; evidock connects with sslmode=verify-full. A server whose
# certificate the dock does not trust is refused with a clear message. Prints TAP.
. "$(dirname "$0")/lib.sh"

PG_BIN=/usr/lib/postgresql/15/bin
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
PGDIR=$(mktemp -d /tmp/evidock-tls-pg.XXXXXX)
chmod 755 "$PGDIR"
tls_cleanup() {
        as_pg "$PG_BIN/pg_ctl" stop -D "$PGDIR/data" -m fast -w >/dev/null 2>&1
        rm -rf "$PGDIR"
}
trap 'tls_cleanup; t_cleanup' EXIT

begin "a scratch PostgreSQL serves TLS only, with a certificate from a test CA"
"$EVIDOCK_SOURCE_ROOT/scripts/pg-scratch" start "$PGDIR" >/dev/null && "$EVIDOCK_SOURCE_ROOT/scripts/pg-scratch" stop "$PGDIR" >/dev/null ||
        fail "cannot make the cluster"
pki=$WORK/pki
mkdir -p "$pki"
mkca() { # mkca NAME: a self-signed CA
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$1" \
                -keyout "$pki/$1.key" -out "$pki/$1.crt" >/dev/null 2>&1
}
mkca evidock-test-ca && mkca some-other-ca || fail "openssl cannot make CAs"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
        -keyout "$pki/server.key" -out "$pki/server.csr" >/dev/null 2>&1 &&
openssl x509 -req -in "$pki/server.csr" -CA "$pki/evidock-test-ca.crt" -CAkey "$pki/evidock-test-ca.key" \
        -CAcreateserial -days 2 -extfile <(printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n') \
        -out "$pki/server.crt" >/dev/null 2>&1 || fail "openssl cannot sign the server certificate"
install -m 600 "$pki/server.key" "$PGDIR/data/server.key"
install -m 644 "$pki/server.crt" "$PGDIR/data/server.crt"
[ "$(id -u)" -eq 0 ] && chown postgres "$PGDIR/data/server.key" "$PGDIR/data/server.crt"
printf "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n" >>"$PGDIR/data/postgresql.conf"
{ printf 'hostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n'; cat "$PGDIR/data/pg_hba.conf"; } >"$PGDIR/hba"
cat "$PGDIR/hba" >"$PGDIR/data/pg_hba.conf"
PORT=$(( 20000 + RANDOM % 20000 ))
as_pg "$PG_BIN/pg_ctl" start -D "$PGDIR/data" -l "$PGDIR/tls.log" -w -t 30 -s \
        -o "-c listen_addresses='127.0.0.1' -c port=$PORT -c unix_socket_directories='$PGDIR/sock'" >/dev/null ||
        fail "cannot start PostgreSQL with TLS: $(tail -3 "$PGDIR/tls.log")"
URL="host=localhost port=$PORT dbname=postgres user=postgres sslmode=verify-full sslrootcert=$pki/evidock-test-ca.crt"
check_eq "TLS in use" t "$(psql "$URL" -qAt -c 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()' 2>&1)"
psql "host=127.0.0.1 port=$PORT dbname=postgres user=postgres sslmode=disable" -qAt -c 'SELECT 1' >/dev/null 2>&1 &&
        fail "a connection without TLS was accepted"
end

begin "evidock ingests into the remote database over TLS with sslmode=verify-full"
export EVIDOCK_CONFIG=$WORK/tls.conf
printf '[database]\nurl = %s\nspool_dir =\n[store]\nroot = %s\nreserve = 1M\n' "$URL" "$WORK/store" >"$EVIDOCK_CONFIG"
V=$WORK/vol
make_volume "$V" T1S0001 012345 --videos 2 --duration 1 --photos 1 --start-ago 1
enroll "$V" T1S0001 012345 || fail "enroll over TLS failed"
"$CTL" ingest --source "$V" --quiet 2>"$WORK/err"; rc=$?
check_eq "exit status" 0 "$rc"
check_eq "INTACT rows" 3 "$("$CTL" log --format json | jq -r .verdict | grep -c '^INTACT$')"
"$CTL" audit verify >/dev/null || fail "audit verify over TLS failed"
end

begin "a database whose certificate the dock does not trust is refused, with a clear message"
printf '[database]\nurl = %s\nspool_dir =\n[store]\nroot = %s\n' \
        "host=localhost port=$PORT dbname=postgres user=postgres sslmode=verify-full sslrootcert=$pki/some-other-ca.crt" \
        "$WORK/store" >"$EVIDOCK_CONFIG"
"$CTL" log >/dev/null 2>"$WORK/err-ca"; rc=$?
check_eq "exit status" 1 "$rc"
grep -qi "certificate" "$WORK/err-ca" || fail "message does not mention the certificate: $(cat "$WORK/err-ca")"
end

finish
