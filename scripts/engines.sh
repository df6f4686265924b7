#!/usr/bin/env bash
# The project's engines for the agency-scale server (issue 13): Ceph RADOS Gateway (S3 with object
# lock) and PostgreSQL 15, Debian's packages, no systemd, loopback only.
#
#   scripts/engines.sh install        apt-get the packages (ceph-mon ceph-osd radosgw postgresql chromium)
#   scripts/engines.sh up DIR         a single-node Ceph (mon + 1 OSD + radosgw) and a throw-away PostgreSQL
#                                     cluster, all state in DIR, on free 127.0.0.1 ports; prints
#                                     S3_ENDPOINT=… AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… AWS_REGION=…
#                                     DATABASE_URL=… (KEY=value lines, also in DIR/engines.env)
#   scripts/engines.sh down DIR       stops every process it started there (by recorded pid) and deletes DIR
#   scripts/engines.sh status DIR     prints the env and whether each process is alive (exit 1 if one is not)
#   scripts/engines.sh start-rgw DIR NAME   starts one more radosgw (client.rgw.NAME) on the same cluster, on a
#                                     free port (kept for NAME across restarts), waits until it answers,
#                                     prints S3_ENDPOINT=… of it. Fault tests stop their own gateway, not
#                                     the one other test files share.
#   scripts/engines.sh stop-rgw DIR NAME    SIGKILLs that radosgw (an object store gone mid-upload)
#
# `up` on a DIR that is already up prints its env and changes nothing; `down` on a DIR that is not
# up does nothing. Test/demo engines: cephx off, PostgreSQL trust auth and fsync off, OSD in RAM
# (memstore; ENGINES_OSD_STORE=bluestore for a sparse file). Never expose them beyond 127.0.0.1.
# Why each setting is here: ../shared/engines/NOTES.md (measured on this kind of machine).
set -euo pipefail

CMD=${1:-}
DIR=${2:-}
PG_BIN=${ENGINES_PG_BIN:-/usr/lib/postgresql/15/bin}   # Debian's, not a /usr/local/bin/postgres
OSD_STORE=${ENGINES_OSD_STORE:-memstore}
ACCESS_KEY=bodycam-test-access
SECRET_KEY=bodycam-test-secret-0123456789

die() { echo "engines.sh: $*" >&2; exit 1; }
usage() { echo "usage: scripts/engines.sh install | up DIR | down DIR | status DIR | start-rgw DIR NAME | stop-rgw DIR NAME" >&2; exit 2; }

install() {
  local pkgs=(ceph-mon ceph-osd radosgw postgresql chromium)
  local missing=()
  for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
  if [ ${#missing[@]} -eq 0 ]; then echo "engines: all installed (${pkgs[*]})"; return 0; fi
  # Developers share one dpkg: serialise on the shared lock when it exists (CI has none).
  local lock=()
  if [ -e /work/wt/apt.lock ] && command -v flock >/dev/null; then lock=(flock /work/wt/apt.lock); fi
  export DEBIAN_FRONTEND=noninteractive
  "${lock[@]}" apt-get update -qq
  "${lock[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  echo "engines: installed ${missing[*]}"
}

need_installed() {
  command -v ceph-mon >/dev/null && command -v radosgw >/dev/null && [ -x "$PG_BIN/initdb" ] \
    || die "Ceph or PostgreSQL 15 is not installed: run 'scripts/engines.sh install'"
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pid_of() { [ -f "$DIR/pids" ] && awk -v n="$1" '$1==n{print $2}' "$DIR/pids" | tail -1; }

wait_for() { # seconds, description, command...
  local tries=$(( $1 * 4 )) what=$2; shift 2
  for _ in $(seq 1 "$tries"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  die "$what did not come up; logs in $DIR/log"
}

ours() { # pid: alive and of this cluster (its command line names DIR: a recorded pid may have been reused)
  alive "$1" && tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -qF "$DIR/"
}

stop_pids() { # pids…: SIGKILL all at once (a throw-away cluster has nothing to flush), then wait until gone
  local pid mine=()
  for pid in "$@"; do if ours "$pid"; then mine+=("$pid"); kill -9 "$pid" 2>/dev/null || true; fi; done
  for pid in "${mine[@]}"; do
    for _ in $(seq 1 200); do alive "$pid" || break; sleep 0.05; done
  done
}

valid_name() { [[ "$1" =~ ^[a-z0-9]{1,16}$ ]] || die "gateway name must be 1-16 of [a-z0-9]: $1"; }

start_rgw() { # NAME: radosgw client.rgw.NAME; its port is chosen once and kept
  local name=$1 port conf=$DIR/ceph/ceph.conf
  valid_name "$name"
  port=$(awk -F= -v k="RGW_PORT_$name" '$1==k{print $2}' "$DIR/ports")
  if [ -z "$port" ]; then
    port=$(free_port)
    echo "RGW_PORT_$name=$port" >> "$DIR/ports"
    printf '\n[client.rgw.%s]\nrgw_frontends = beast endpoint=127.0.0.1:%s\nrgw_data = %s\n' "$name" "$port" "$DIR/ceph/rgw-$name" >> "$conf"
    mkdir -p "$DIR/ceph/rgw-$name"
  fi
  if ! alive "$(pid_of "rgw.$name")"; then
    CEPH_CONF=$conf radosgw -f -n "client.rgw.$name" -c "$conf" >>"$DIR/log/rgw-$name.out" 2>&1 &
    echo "rgw.$name $!" >> "$DIR/pids"
  fi
  wait_for 60 "radosgw $name" curl -fsS -o /dev/null "http://127.0.0.1:$port/"
  echo "S3_ENDPOINT=http://127.0.0.1:$port"
}

down() {
  [ -d "$DIR" ] || return 0
  if [ -f "$DIR/pids" ]; then
    # reverse start order: rgw, osd, mon (postgres is stopped by pg_ctl below)
    # postgres too: SIGKILL of the postmaster, its backends exit when it is gone (pg_ctl would wait for them)
    # shellcheck disable=SC2046
    stop_pids $(awk '{print $2}' "$DIR/pids")
  fi
  rm -rf "$DIR"
}

print_env() { cat "$DIR/engines.env"; }

up() {
  if [ -f "$DIR/engines.env" ] && status_quiet; then print_env; return 0; fi
  need_installed
  if [ -e "$DIR" ]; then down; fi
  mkdir -p "$DIR"/{ceph/mon,ceph/osd0,ceph/rgw,ceph/run,log,pg}
  DIR=$(cd "$DIR" && pwd)
  chmod 711 "$DIR"   # the postgres user must reach DIR/pg, nothing more
  trap 'echo "engines.sh up FAILED; logs in $DIR/log" >&2; down_keep_logs' ERR
  local mon_port pg_port rgw_endpoint fsid osd_uuid conf=$DIR/ceph/ceph.conf
  mon_port=$(free_port); pg_port=$(free_port)
  printf 'MON_PORT=%s\nPG_PORT=%s\n' "$mon_port" "$pg_port" > "$DIR/ports"
  fsid=$(cat /proc/sys/kernel/random/uuid); osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  cat > "$conf" <<EOF
[global]
fsid = $fsid
mon_host = v2:127.0.0.1:$mon_port
public_addr = 127.0.0.1
ms_bind_ipv6 = false
ms_bind_msgr1 = false
auth_cluster_required = none
auth_service_required = none
auth_client_required = none
run_dir = $DIR/ceph/run
admin_socket = $DIR/ceph/run/\$name.asok
log_file = $DIR/log/\$name.log
osd_pool_default_size = 1
osd_pool_default_min_size = 1
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
mon_warn_on_insecure_global_id_reclaim_allowed = false
mon_max_pg_per_osd = 1000
mon_data_avail_warn = 2
mon_data_avail_crit = 1

[mon.a]
mon_data = $DIR/ceph/mon

[osd.0]
osd_data = $DIR/ceph/osd0
osd_objectstore = $OSD_STORE
memstore_device_bytes = ${ENGINES_MEMSTORE_BYTES:-2147483648}
# outside osd_data: mkfs links osd_data/block to it (pitfall 2)
bluestore_block_path = $DIR/ceph/osd0.block
bluestore_block_size = 10737418240
bluestore_block_create = true
bluestore_cache_autotune = false
bluestore_cache_size = 268435456
osd_memory_target = 939524096

[client]
# radosgw defaults to ms_mon_client_mode=secure, which cannot be negotiated with cephx off (pitfall 1)
ms_mon_client_mode = crc
auth_client_required = none
# the default 512 threads cost ~600 MB of RSS
rgw_thread_pool_size = 64
rgw_gc_obj_min_wait = 60
rgw_gc_processor_period = 60
rgw_dns_name = localhost
EOF
  export CEPH_CONF=$conf
  # --- PostgreSQL first (1 s), in parallel with Ceph's slower start ---
  chown postgres:postgres "$DIR/pg"; chmod 700 "$DIR/pg"
  runuser -u postgres -- "$PG_BIN/initdb" -D "$DIR/pg/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync >"$DIR/log/initdb.log" 2>&1
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -c port=$pg_port -c unix_socket_directories=$DIR/pg -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >/dev/null
  echo "postgres $(head -1 "$DIR/pg/data/postmaster.pid")" >> "$DIR/pids"
  # --- monitor ---
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$DIR/ceph/monmap" >/dev/null
  ceph-mon --mkfs -i a --monmap "$DIR/ceph/monmap" -c "$conf" >"$DIR/log/mkfs-mon.out" 2>&1
  ceph-mon -f -i a -c "$conf" >>"$DIR/log/mon.out" 2>&1 &
  echo "mon $!" >> "$DIR/pids"
  wait_for 30 ceph-mon ceph --connect-timeout 2 mon stat
  # --- one OSD ---
  local osd_id; osd_id=$(ceph osd new "$osd_uuid")
  [ "$osd_id" = 0 ] || die "unexpected osd id $osd_id"
  ceph-osd -i 0 --mkfs --osd-uuid "$osd_uuid" -c "$conf" >"$DIR/log/mkfs-osd.out" 2>&1
  ceph-osd -f -i 0 -c "$conf" >>"$DIR/log/osd.out" 2>&1 &
  echo "osd $!" >> "$DIR/pids"
  wait_for 60 ceph-osd sh -c "ceph osd dump 2>/dev/null | grep -q '^osd.0 up'"
  "$PG_BIN/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -qAt -c "CREATE DATABASE bodycam" >/dev/null
  # --- RADOS Gateway (creates its pools on first start) ---
  rgw_endpoint=$(start_rgw a)
  radosgw-admin -c "$conf" user create --uid=bodycam --display-name="bodycam test" \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >"$DIR/log/user.json"
  cat > "$DIR/engines.env" <<EOF
$rgw_endpoint
AWS_ACCESS_KEY_ID=$ACCESS_KEY
AWS_SECRET_ACCESS_KEY=$SECRET_KEY
AWS_REGION=us-east-1
DATABASE_URL=postgres://postgres@127.0.0.1:$pg_port/bodycam
EOF
  chmod 600 "$DIR/engines.env"
  trap - ERR
  print_env
}

down_keep_logs() { # a failed `up`: stop what started, keep DIR/log for the reader
  local keep; keep=$(mktemp -d); cp -r "$DIR/log" "$keep/" 2>/dev/null || true
  down; mkdir -p "$DIR"; mv "$keep/log" "$DIR/log" 2>/dev/null || true; rmdir "$keep" 2>/dev/null || true
}

CORE="mon osd postgres rgw.a"   # the cluster is up when these live; extra gateways come and go

status_quiet() {
  [ -f "$DIR/pids" ] || return 1
  local name
  for name in $CORE; do alive "$(pid_of "$name")" || return 1; done
}

status() {
  [ -f "$DIR/engines.env" ] || { echo "engines: not up in $DIR"; return 1; }
  print_env
  local bad=0 name pid
  while read -r name pid; do
    if alive "$pid"; then echo "# $name $pid running"
    elif [[ " $CORE " == *" $name "* ]]; then echo "# $name $pid NOT running"; bad=1
    else echo "# $name $pid stopped"; fi
  done < <(awk '{n[$1]=$2} END{for(k in n) print k, n[k]}' "$DIR/pids" | sort)
  return $bad
}

case "$CMD" in
  install) install ;;
  up|down|status|stop-rgw|start-rgw)
    [ -n "$DIR" ] || usage
    case "$CMD" in
      up) up ;;
      down) down ;;
      status) status ;;
      stop-rgw) valid_name "${3:-}"; stop_pids "$(pid_of "rgw.$3")" ;;
      start-rgw) [ -f "$DIR/engines.env" ] || die "not up in $DIR"; start_rgw "${3:-}" ;;
    esac ;;
  *) usage ;;
esac
