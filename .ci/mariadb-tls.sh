#!/usr/bin/env bash
# Ensures a second MariaDB server with TLS (self-signed CA, server cert for 127.0.0.1) answers on
# 127.0.0.1:${TLS_PORT:-3307}, for the MySQL adapter's TLS tests. Idempotent: does nothing when
# it already answers. Prints the CA certificate path on its last line.
#   usage: .ci/mariadb-tls.sh [ensure|stop]
set -euo pipefail
PORT="${TLS_PORT:-3307}"
DIR="${SPOTAUTH_TLS_DB_DIR:-/tmp/spotauth-mariadb-tls}"
CA="$DIR/ca.pem"

ping() { mariadb-admin --no-defaults --protocol=tcp -h 127.0.0.1 -P "$PORT" -u root --connect-timeout=2 ping >/dev/null 2>&1; }

case "${1:-ensure}" in
stop)
  [ -f "$DIR/mysqld.pid" ] && kill "$(cat "$DIR/mysqld.pid")" 2>/dev/null || true
  exit 0
  ;;
ensure) ;;
*) echo "usage: $0 [ensure|stop]" >&2; exit 2 ;;
esac

if ping && [ -f "$CA" ]; then
  echo "$CA"
  exit 0
fi

command -v mariadb-install-db >/dev/null || { echo "mariadb-install-db not found (apt-get install -y mariadb-server)" >&2; exit 1; }
rm -rf "$DIR" && mkdir -p "$DIR"
(
  cd "$DIR"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=spotauth test CA" \
    -keyout ca-key.pem -out ca.pem 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server-key.pem -out server.csr 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext.cnf
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 30 \
    -extfile ext.cnf -out server-cert.pem 2>/dev/null
)
mariadb-install-db --no-defaults --user=mysql --datadir="$DIR/data" --auth-root-authentication-method=normal \
  --skip-test-db >"$DIR/install.log" 2>&1
chown -R mysql:mysql "$DIR"
chmod 755 "$DIR"
setsid /usr/sbin/mariadbd --no-defaults --user=mysql \
  --datadir="$DIR/data" --port="$PORT" --bind-address=127.0.0.1 --socket="$DIR/mysqld.sock" \
  --pid-file="$DIR/mysqld.pid" --log-error="$DIR/error.log" --skip-log-bin \
  --ssl-ca="$DIR/ca.pem" --ssl-cert="$DIR/server-cert.pem" --ssl-key="$DIR/server-key.pem" \
  </dev/null >/dev/null 2>&1 &
for _ in $(seq 1 60); do
  ping && break
  sleep 0.5
done
ping || { echo "TLS MariaDB did not start; see $DIR/error.log" >&2; tail -5 "$DIR/error.log" >&2 || true; exit 1; }
mariadb --no-defaults --protocol=tcp -h 127.0.0.1 -P "$PORT" -u root -e \
  "CREATE USER IF NOT EXISTS 'tls'@'%' REQUIRE SSL; GRANT ALL ON *.* TO 'tls'@'%'; CREATE DATABASE IF NOT EXISTS test;"
echo "$CA"
