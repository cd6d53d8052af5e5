#!/usr/bin/env bash
# deploy/local/services.sh — make sure a MariaDB/MySQL server and a Redis
# server answer on 127.0.0.1 for local development, tests and CI.
#
# Usage: deploy/local/services.sh [up|status|stop|help]
#
#   up (default)  If both servers already answer, print one line each and do
#                 nothing else. Otherwise start a project-local server (with
#                 its data under $IACC_LOCAL_DATA_DIR) for each one that does
#                 not answer, installing the package first when running as
#                 root on Debian/Ubuntu, and wait until it answers.
#   status        Show whether each server answers and whether this script
#                 started it. Exit 0 if both answer, 1 otherwise.
#   stop          Stop only the servers this script started (found via the pid
#                 files under $IACC_LOCAL_DATA_DIR). Never touches other servers.
#
# Environment (defaults in brackets):
#   IACC_LOCAL_MYSQL_PORT     [3306]
#   IACC_LOCAL_REDIS_PORT     [6379]
#   IACC_LOCAL_DATA_DIR       [<repo root>/var/local]
#   IACC_LOCAL_MYSQL_DB       [iacc]  database created in a server we start
#   IACC_LOCAL_WAIT_SECS      [30]    how long to wait for a started server
#   IACC_LOCAL_NO_INSTALL     [0]     1 = never install packages, only print
#                                     the command to run
#   IACC_LOCAL_MYSQLD         []      explicit mariadbd/mysqld binary
#   IACC_LOCAL_REDIS_SERVER   []      explicit redis-server binary
#   IACC_LOCAL_SBIN_DIRS      [/usr/sbin /usr/libexec /usr/local/sbin /usr/local/libexec]
#                             directories searched for binaries besides PATH
#                             (set to an empty string to search PATH only)
set -euo pipefail

readonly PROG="services"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd -P)"

MYSQL_PORT="${IACC_LOCAL_MYSQL_PORT:-3306}"
REDIS_PORT="${IACC_LOCAL_REDIS_PORT:-6379}"
DATA_DIR="${IACC_LOCAL_DATA_DIR:-$REPO_ROOT/var/local}"
MYSQL_DB="${IACC_LOCAL_MYSQL_DB:-iacc}"
WAIT_SECS="${IACC_LOCAL_WAIT_SECS:-30}"
NO_INSTALL="${IACC_LOCAL_NO_INSTALL:-0}"
SBIN_DIRS="${IACC_LOCAL_SBIN_DIRS-/usr/sbin /usr/libexec /usr/local/sbin /usr/local/libexec}"

for _v in MYSQL_PORT REDIS_PORT WAIT_SECS; do
  case "${!_v}" in
    '' | *[!0-9]*) echo "$PROG: error: $_v must be a number (got '${!_v}')" >&2; exit 2 ;;
  esac
done
case "$DATA_DIR" in /*) ;; *) DATA_DIR="$PWD/$DATA_DIR" ;; esac

MYSQL_BASE="$DATA_DIR/mysql"          # pid, log and socket live here
MYSQL_DATADIR="$MYSQL_BASE/data"      # the server's datadir
MYSQL_PIDFILE="$MYSQL_BASE/mysqld.pid"
MYSQL_LOG="$MYSQL_BASE/error.log"
MYSQL_SOCK="$MYSQL_BASE/mysqld.sock"
REDIS_DIR="$DATA_DIR/redis"
REDIS_PIDFILE="$REDIS_DIR/redis.pid"
REDIS_LOG="$REDIS_DIR/redis.log"
LOCK_DIR="$DATA_DIR/.services.lock"

# Unix socket paths are limited to ~104 bytes; fall back to a short path.
if [ "${#MYSQL_SOCK}" -gt 100 ]; then
  MYSQL_SOCK="${TMPDIR:-/tmp}"
  MYSQL_SOCK="${MYSQL_SOCK%/}/iacc-mysqld-$MYSQL_PORT.sock"
fi

say()  { printf '%s: %s\n' "$PROG" "$*"; }
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die()  { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

# ---------------------------------------------------------------- helpers --

# find_bin NAME... — first executable found in PATH, then in $SBIN_DIRS.
find_bin() {
  local name dir p
  for name in "$@"; do
    if p="$(command -v "$name" 2>/dev/null)" && [ -x "$p" ]; then
      printf '%s\n' "$p"; return 0
    fi
  done
  for name in "$@"; do
    for dir in $SBIN_DIRS; do
      if [ -x "$dir/$name" ]; then printf '%s\n' "$dir/$name"; return 0; fi
    done
  done
  return 1
}

# run_timeout SECS CMD... — run with a time limit when timeout(1) exists.
run_timeout() {
  local secs="$1"; shift
  if command -v timeout >/dev/null 2>&1; then
    timeout "$secs" "$@"
  else
    "$@"
  fi
}

tcp_open() { # tcp_open PORT — does something accept TCP on 127.0.0.1:PORT?
  # shellcheck disable=SC2016  # $1 is expanded by the inner bash
  run_timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" >/dev/null 2>&1
}

mysql_admin() { find_bin mariadb-admin mysqladmin; }
mysql_client() { find_bin mariadb mysql; }

mysql_answers() {
  local admin
  if admin="$(mysql_admin)"; then
    # mysqladmin ping exits 0 whenever the server is up, even on access denied.
    run_timeout 5 "$admin" --no-defaults ping -h127.0.0.1 -P"$MYSQL_PORT" -uroot \
      --connect-timeout=2 >/dev/null 2>&1
  else
    tcp_open "$MYSQL_PORT"
  fi
}

# mysql_root_login [SQL] — connect as root with an empty password over TCP.
mysql_root_login() {
  local client sql="${1:-SELECT 1}"
  client="$(mysql_client)" || return 2
  run_timeout 10 "$client" --no-defaults --protocol=TCP -h127.0.0.1 -P"$MYSQL_PORT" \
    -uroot --connect-timeout=3 -N -B -e "$sql" >/dev/null 2>&1
}

# redis_reply — prints the reply to PING (empty if nothing answers).
redis_reply() {
  local cli
  if cli="$(find_bin redis-cli)"; then
    run_timeout 3 "$cli" -h 127.0.0.1 -p "$REDIS_PORT" ping 2>&1 | head -n1 || true
  elif tcp_open "$REDIS_PORT"; then
    echo PONG
  fi
}

redis_answers() {
  case "$(redis_reply)" in
    PONG) return 0 ;;
    *NOAUTH* | *LOADING*) return 0 ;;  # a server is there, just not open/ready
    *) return 1 ;;
  esac
}

# managed_pid PIDFILE PATTERN — print the pid from PIDFILE if that process is
# alive and its command line contains PATTERN (so a recycled pid is ignored).
managed_pid() {
  local pidfile="$1" pattern="$2" pid args
  [ -s "$pidfile" ] || return 1
  pid="$(head -n1 "$pidfile" | tr -dc '0-9')"
  [ -n "$pid" ] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  args="$(ps -p "$pid" -o args= 2>/dev/null || true)"
  case "$args" in *"$pattern"*) printf '%s\n' "$pid" ;; *) return 1 ;; esac
}

mysql_managed_pid() { managed_pid "$MYSQL_PIDFILE" "--datadir=$MYSQL_DATADIR"; }

# mysql_proc_alive — is a server with our datadir running (pid file or not)?
mysql_proc_alive() {
  mysql_managed_pid >/dev/null && return 0
  # shellcheck disable=SC2009  # pgrep -f would need the path regex-escaped
  ps -eo args= 2>/dev/null | grep -F -- "--datadir=$MYSQL_DATADIR " |
    grep -qF -- "--port=$MYSQL_PORT "
}
redis_managed_pid() {
  local pid
  pid="$(managed_pid "$REDIS_PIDFILE" "redis-server")" || return 1
  # redis rewrites its argv, so match on the port it shows instead.
  case "$(ps -p "$pid" -o args= 2>/dev/null)" in
    *":$REDIS_PORT"*) printf '%s\n' "$pid" ;;
    *) return 1 ;;
  esac
}

show_log_tail() { # show_log_tail FILE
  if [ -s "$1" ]; then
    echo "---- last lines of $1 ----" >&2
    tail -n 25 "$1" >&2
    echo "----" >&2
  fi
}

ensure_data_dir() {
  if [ ! -d "$DATA_DIR" ]; then
    mkdir -p "$DATA_DIR"
    # Keep runtime data out of git when the data dir lives inside the repo.
    case "$DATA_DIR/" in
      "$REPO_ROOT"/*) printf '*\n' >"$DATA_DIR/.gitignore" ;;
    esac
  fi
}

# ------------------------------------------------------------------ lock --

LOCK_HELD=0
release_lock() {
  if [ "$LOCK_HELD" = 1 ]; then rm -rf "$LOCK_DIR"; LOCK_HELD=0; fi
}
acquire_lock() {
  local waited=0 owner
  while ! mkdir "$LOCK_DIR" 2>/dev/null; do
    owner="$(cat "$LOCK_DIR/pid" 2>/dev/null || true)"
    if [ -n "$owner" ] && ! kill -0 "$owner" 2>/dev/null; then
      rm -rf "$LOCK_DIR"; continue              # stale lock from a dead run
    fi
    if [ "$waited" -ge 300 ]; then
      die "another services.sh run holds $LOCK_DIR (pid ${owner:-?}); remove it if stale"
    fi
    sleep 1; waited=$((waited + 1))
  done
  LOCK_HELD=1
  echo "$$" >"$LOCK_DIR/pid"
}

POLICY_RC_CREATED=0
cleanup() {
  if [ "$POLICY_RC_CREATED" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  release_lock
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------- installation --

os_family() { # debian | fedora | macos | unknown
  if [ "$(uname -s)" = Darwin ]; then echo macos; return; fi
  local id="" id_like=""
  if [ -r /etc/os-release ]; then
    # shellcheck disable=SC1091
    id="$(. /etc/os-release && echo "${ID:-}")"
    # shellcheck disable=SC1091
    id_like="$(. /etc/os-release && echo "${ID_LIKE:-}")"
  fi
  case " $id $id_like " in
    *" debian "* | *" ubuntu "*) echo debian ;;
    *" fedora "* | *" rhel "* | *" centos "*) echo fedora ;;
    *) echo unknown ;;
  esac
}

# install_hint WHAT... (WHAT = mysql and/or redis) — print how to install, exit 1.
install_hint() {
  local need_mysql=0 need_redis=0 w apt_pkgs="" brew_pkgs="" dnf_pkgs=""
  for w in "$@"; do
    case "$w" in mysql) need_mysql=1 ;; redis) need_redis=1 ;; esac
  done
  if [ "$need_mysql" = 1 ]; then
    apt_pkgs="mariadb-server mariadb-client"; brew_pkgs="mariadb"; dnf_pkgs="mariadb-server"
  fi
  if [ "$need_redis" = 1 ]; then
    apt_pkgs="${apt_pkgs:+$apt_pkgs }redis-server"
    brew_pkgs="${brew_pkgs:+$brew_pkgs }redis"
    dnf_pkgs="${dnf_pkgs:+$dnf_pkgs }redis"
  fi
  local sudo="sudo "
  if [ "$(id -u)" = 0 ]; then sudo=""; fi
  {
    if [ "$need_mysql" = 1 ]; then
      echo "$PROG: error: nothing answers on 127.0.0.1:$MYSQL_PORT and no MariaDB/MySQL server (mariadbd/mysqld) is installed"
    fi
    if [ "$need_redis" = 1 ]; then
      echo "$PROG: error: nothing answers on 127.0.0.1:$REDIS_PORT and no Redis server (redis-server) is installed"
    fi
    echo "$PROG: install it with the command below, then re-run $0"
    case "$(os_family)" in
      debian) echo "    ${sudo}apt-get update && ${sudo}apt-get install -y $apt_pkgs" ;;
      macos)  echo "    brew install $brew_pkgs" ;;
      fedora) echo "    ${sudo}dnf install -y $dnf_pkgs" ;;
      *)
        echo "    Debian/Ubuntu: ${sudo}apt-get update && ${sudo}apt-get install -y $apt_pkgs"
        echo "    macOS:         brew install $brew_pkgs"
        echo "    Fedora/RHEL:   ${sudo}dnf install -y $dnf_pkgs"
        ;;
    esac
    echo "$PROG: (or point IACC_LOCAL_MYSQL_PORT / IACC_LOCAL_REDIS_PORT at servers that already run)"
  } >&2
  exit 1
}

# apt_install PKG... — only as root on Debian/Ubuntu.
apt_install() {
  local log="$DATA_DIR/apt-install.log"
  say "installing $* with apt-get (log: $log)"
  # Stop the packages' postinst from starting system-wide services on the
  # default ports; we run project-local servers instead.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    POLICY_RC_CREATED=1
  fi
  if ! { apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >"$log" 2>&1; then
    show_log_tail "$log"
    die "apt-get install $* failed"
  fi
  if [ "$POLICY_RC_CREATED" = 1 ]; then rm -f /usr/sbin/policy-rc.d; POLICY_RC_CREATED=0; fi
}

# ensure_binaries WHAT... — install missing server packages or explain how.
ensure_binaries() {
  local missing=() pkgs=() w
  for w in "$@"; do
    case "$w" in
      mysql) find_mysqld >/dev/null || { missing+=(mysql); pkgs+=(mariadb-server mariadb-client); } ;;
      redis) find_redis_server >/dev/null || { missing+=(redis); pkgs+=(redis-server); } ;;
    esac
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ "$NO_INSTALL" != 1 ] && [ "$(id -u)" = 0 ] && [ "$(os_family)" = debian ] &&
     command -v apt-get >/dev/null 2>&1; then
    ensure_data_dir
    apt_install "${pkgs[@]}"
    for w in "${missing[@]}"; do
      case "$w" in
        mysql) find_mysqld >/dev/null || die "mariadb-server installed but no mariadbd/mysqld found" ;;
        redis) find_redis_server >/dev/null || die "redis-server installed but no redis-server found" ;;
      esac
    done
    return 0
  fi
  install_hint "${missing[@]}"
}

find_mysqld() {
  if [ -n "${IACC_LOCAL_MYSQLD:-}" ]; then
    [ -x "$IACC_LOCAL_MYSQLD" ] && { printf '%s\n' "$IACC_LOCAL_MYSQLD"; return 0; }
    return 1
  fi
  find_bin mariadbd mysqld
}

find_redis_server() {
  if [ -n "${IACC_LOCAL_REDIS_SERVER:-}" ]; then
    [ -x "$IACC_LOCAL_REDIS_SERVER" ] && { printf '%s\n' "$IACC_LOCAL_REDIS_SERVER"; return 0; }
    return 1
  fi
  find_bin redis-server
}

# ------------------------------------------------------------------ mysql --

mysql_init_datadir() { # mysql_init_datadir MYSQLD FLAVOR
  local mysqld="$1" flavor="$2" user log="$MYSQL_BASE/install.log" installer
  user="$(id -un)"
  if [ -d "$MYSQL_DATADIR/mysql" ]; then return 0; fi   # already initialized
  if [ -d "$MYSQL_DATADIR" ] && [ -n "$(ls -A "$MYSQL_DATADIR" 2>/dev/null)" ]; then
    die "$MYSQL_DATADIR is not empty but not an initialized datadir (failed earlier init?); remove it and re-run"
  fi
  mkdir -p "$MYSQL_DATADIR"
  say "mysql: initializing datadir $MYSQL_DATADIR"
  if [ "$flavor" = mariadb ]; then
    local bindir
    bindir="$(dirname "$mysqld")"
    installer="$(SBIN_DIRS="$bindir/../bin $bindir /usr/bin /usr/local/bin $SBIN_DIRS" \
      find_bin mariadb-install-db mysql_install_db)" ||
      die "found $mysqld but neither mariadb-install-db nor mysql_install_db"
    if ! "$installer" --no-defaults --datadir="$MYSQL_DATADIR" \
        --auth-root-authentication-method=normal --skip-test-db \
        --user="$user" >"$log" 2>&1; then
      show_log_tail "$log"
      rm -rf "$MYSQL_DATADIR"
      die "$installer failed to initialize $MYSQL_DATADIR"
    fi
  else
    if ! "$mysqld" --no-defaults --initialize-insecure --datadir="$MYSQL_DATADIR" \
        --user="$user" --log-error="$log" >>"$log" 2>&1; then
      show_log_tail "$log"
      rm -rf "$MYSQL_DATADIR"
      die "$mysqld --initialize-insecure failed"
    fi
  fi
}

start_mysql() {
  local mysqld flavor pid="" args waited=0
  mysqld="$(find_mysqld)" || die "no mariadbd/mysqld found"
  case "$("$mysqld" --version 2>/dev/null)" in
    *MariaDB*) flavor=mariadb ;;
    *) flavor=mysql ;;
  esac
  mkdir -p "$MYSQL_BASE"

  if pid="$(mysql_managed_pid)"; then
    say "mysql: server from a previous run (pid $pid) is still starting; waiting"
  else
    if tcp_open "$MYSQL_PORT"; then
      die "something listens on 127.0.0.1:$MYSQL_PORT but does not answer as MySQL; free the port or set IACC_LOCAL_MYSQL_PORT"
    fi
    mysql_init_datadir "$mysqld" "$flavor"
    args=(--no-defaults --datadir="$MYSQL_DATADIR" --port="$MYSQL_PORT"
          --bind-address=127.0.0.1 --socket="$MYSQL_SOCK" --pid-file="$MYSQL_PIDFILE"
          --log-error="$MYSQL_LOG")
    if [ "$(id -u)" = 0 ]; then args+=(--user=root); fi
    if [ "$flavor" = mysql ]; then args+=(--mysqlx=OFF); fi
    rm -f "$MYSQL_PIDFILE"
    say "mysql: starting $(basename "$mysqld") on 127.0.0.1:$MYSQL_PORT (datadir $MYSQL_DATADIR)"
    if command -v setsid >/dev/null 2>&1; then
      setsid nohup "$mysqld" "${args[@]}" </dev/null >>"$MYSQL_LOG" 2>&1 &
    else
      nohup "$mysqld" "${args[@]}" </dev/null >>"$MYSQL_LOG" 2>&1 &
    fi
    pid=$!
  fi

  until mysql_answers; do
    if ! kill -0 "$pid" 2>/dev/null && ! mysql_proc_alive; then
      show_log_tail "$MYSQL_LOG"
      die "mysql server exited during startup (log: $MYSQL_LOG)"
    fi
    if [ "$waited" -ge $((WAIT_SECS * 2)) ]; then
      show_log_tail "$MYSQL_LOG"
      die "mysql did not answer on 127.0.0.1:$MYSQL_PORT within ${WAIT_SECS}s (pid $pid, log: $MYSQL_LOG)"
    fi
    sleep 0.5; waited=$((waited + 1))
  done

  mysql_verify_root "$flavor"
  if [ -n "$MYSQL_DB" ]; then
    mysql_root_login "CREATE DATABASE IF NOT EXISTS \`$MYSQL_DB\`" ||
      warn "mysql: could not create database $MYSQL_DB"
  fi
  say "mysql: ready on 127.0.0.1:$MYSQL_PORT (pid $(cat "$MYSQL_PIDFILE" 2>/dev/null || echo "$pid"))"
}

# Root must log in over TCP from 127.0.0.1 with an empty password (the app's
# default DSN). Repair via the unix socket of our own server if needed.
mysql_verify_root() {
  local rc=0 client
  mysql_root_login || rc=$?
  [ "$rc" = 0 ] && return 0
  if [ "$rc" = 2 ]; then
    warn "mysql: no mariadb/mysql client found; cannot verify root login over TCP"
    return 0
  fi
  client="$(mysql_client)"
  say "mysql: granting root@127.0.0.1 / root@::1 with an empty password"
  "$client" --no-defaults -uroot --socket="$MYSQL_SOCK" -e "
    CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';
    GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
    CREATE USER IF NOT EXISTS 'root'@'::1' IDENTIFIED BY '';
    GRANT ALL PRIVILEGES ON *.* TO 'root'@'::1' WITH GRANT OPTION;
    FLUSH PRIVILEGES;" >/dev/null 2>&1 || true
  mysql_root_login ||
    die "mysql on 127.0.0.1:$MYSQL_PORT answers but root cannot log in over TCP with an empty password"
}

# ------------------------------------------------------------------ redis --

start_redis() {
  local server waited=0 out
  server="$(find_redis_server)" || die "no redis-server found"
  if [ -z "$(redis_managed_pid || true)" ] && tcp_open "$REDIS_PORT"; then
    die "something listens on 127.0.0.1:$REDIS_PORT but does not answer PING; free the port or set IACC_LOCAL_REDIS_PORT"
  fi
  mkdir -p "$REDIS_DIR"
  if [ -z "$(redis_managed_pid || true)" ]; then
    say "redis: starting redis-server on 127.0.0.1:$REDIS_PORT (dir $REDIS_DIR)"
    rm -f "$REDIS_PIDFILE"
    if ! out="$("$server" --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" \
        --dir "$REDIS_DIR" --save "" --appendonly no \
        --logfile "$REDIS_LOG" --pidfile "$REDIS_PIDFILE" </dev/null 2>&1)"; then
      printf '%s\n' "$out" >&2
      show_log_tail "$REDIS_LOG"
      die "redis-server failed to start (log: $REDIS_LOG)"
    fi
  fi
  until [ "$(redis_reply)" = PONG ]; do
    if [ "$waited" -ge $((WAIT_SECS * 2)) ]; then
      show_log_tail "$REDIS_LOG"
      die "redis did not answer PONG on 127.0.0.1:$REDIS_PORT within ${WAIT_SECS}s (log: $REDIS_LOG)"
    fi
    sleep 0.5; waited=$((waited + 1))
  done
  say "redis: ready on 127.0.0.1:$REDIS_PORT (pid $(cat "$REDIS_PIDFILE" 2>/dev/null || echo '?'))"
}

# --------------------------------------------------------------- commands --

cmd_up() {
  local need=() reply
  if mysql_answers; then
    local rc=0
    mysql_root_login || rc=$?
    case "$rc" in
      0) say "mysql: 127.0.0.1:$MYSQL_PORT answers" ;;
      2) say "mysql: 127.0.0.1:$MYSQL_PORT answers (no client to check root login)" ;;
      *) say "mysql: 127.0.0.1:$MYSQL_PORT answers"
         warn "mysql: root cannot log in over TCP with an empty password; set the app's DSN accordingly" ;;
    esac
  else
    need+=(mysql)
  fi
  reply="$(redis_reply)"
  case "$reply" in
    PONG) say "redis: 127.0.0.1:$REDIS_PORT answers" ;;
    *NOAUTH* | *LOADING*)
      say "redis: 127.0.0.1:$REDIS_PORT answers"
      warn "redis: server replied '$reply' to PING" ;;
    *) need+=(redis) ;;
  esac
  [ "${#need[@]}" -eq 0 ] && return 0

  ensure_data_dir
  acquire_lock
  local todo=() w
  for w in "${need[@]}"; do   # re-check: a concurrent run may have started it
    case "$w" in
      mysql) if mysql_answers; then say "mysql: 127.0.0.1:$MYSQL_PORT answers"; else todo+=(mysql); fi ;;
      redis) if redis_answers; then say "redis: 127.0.0.1:$REDIS_PORT answers"; else todo+=(redis); fi ;;
    esac
  done
  [ "${#todo[@]}" -eq 0 ] && return 0
  ensure_binaries "${todo[@]}"
  for w in "${todo[@]}"; do
    case "$w" in
      mysql) start_mysql ;;
      redis) start_redis ;;
    esac
  done
}

stop_pid() { # stop_pid NAME PID PIDFILE SECS
  local name="$1" pid="$2" pidfile="$3" secs="$4" waited=0
  say "$name: stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$waited" -ge $((secs * 2)) ]; then
      die "$name: pid $pid did not exit within ${secs}s"
    fi
    sleep 0.5; waited=$((waited + 1))
  done
  rm -f "$pidfile"
  say "$name: stopped"
}

cmd_stop() {
  local pid
  if pid="$(mysql_managed_pid)"; then
    stop_pid mysql "$pid" "$MYSQL_PIDFILE" 120
  else
    say "mysql: nothing started by this script is running (pidfile $MYSQL_PIDFILE)"
  fi
  if pid="$(redis_managed_pid)"; then
    stop_pid redis "$pid" "$REDIS_PIDFILE" 30
  else
    say "redis: nothing started by this script is running (pidfile $REDIS_PIDFILE)"
  fi
}

cmd_status() {
  local ok=0 pid who
  if pid="$(mysql_managed_pid)"; then who="started by this script, pid $pid, datadir $MYSQL_DATADIR"
  else who="not started by this script"; fi
  if mysql_answers; then say "mysql: 127.0.0.1:$MYSQL_PORT answers ($who)"
  else say "mysql: 127.0.0.1:$MYSQL_PORT does not answer ($who)"; ok=1; fi
  if pid="$(redis_managed_pid)"; then who="started by this script, pid $pid, dir $REDIS_DIR"
  else who="not started by this script"; fi
  if redis_answers; then say "redis: 127.0.0.1:$REDIS_PORT answers ($who)"
  else say "redis: 127.0.0.1:$REDIS_PORT does not answer ($who)"; ok=1; fi
  return "$ok"
}

usage() {
  sed -n '2,/^set -euo pipefail/{/^set /d;s/^# \{0,1\}//;p;}' "${BASH_SOURCE[0]}"
}

case "${1:-up}" in
  up | start | ensure) cmd_up ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  -h | --help | help) usage ;;
  *) usage >&2; exit 2 ;;
esac
