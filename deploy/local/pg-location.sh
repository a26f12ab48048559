# Sourced by up.sh, down.sh and status.sh: where PostgreSQL keeps its data and its log.
# PostgreSQL runs as the `postgres` user, which must be able to enter every folder above its data
# directory. A checkout under a folder closed to other users (a 0700 home directory, `mktemp -d`)
# is out of its reach, so initdb would fail; the data then lives in a folder of its own under
# /var/lib/postgresql, named after this checkout's state folder, and up.sh says so.
pg_location() {
  if su postgres -s /bin/sh -c "test -x '$STATE' && test -r '$STATE'" 2>/dev/null; then
    PG_DATA="$STATE/pg"; PG_LOG="$STATE/logs/postgres.log"; PG_OUTSIDE=0
  else
    local home
    home="/var/lib/postgresql/aftersales-$(printf %s "$STATE" | sha1sum | cut -c1-12)"
    PG_DATA="$home/pg"; PG_LOG="$home/postgres.log"; PG_OUTSIDE=1
  fi
}
