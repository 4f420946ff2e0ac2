# syntax=docker/dockerfile:1
# camsync: the LUNA push and the SmartUp pull in one image.
#
#   docker build -t camsync .
#   docker run -d --name camsync --env-file .env \
#     -v camsync-store:/var/lib/camsync -v /srv/payplus/backend:/data:ro camsync
#
# SYNC_MODE=daemon (default) runs `camsync worker`; once runs one `camsync run-all`; cron runs Debian's cron with
# deploy/cron/camsync (start the container with --user root for that mode). Arguments run `camsync ARGS…`:
# `docker run --rm … camsync doctor`. See docs/deploy.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# cron only serves SYNC_MODE=cron. pam_loginuid needs an audit capability that containers do not have, and
# without it cron silently refuses to start the jobs.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cron \
 && rm -rf /var/lib/apt/lists/* \
 && sed -i 's/^\(session\s\+required\s\+pam_loginuid\.so\)/# \1/' /etc/pam.d/cron \
 && groupadd --system camsync \
 && useradd --system --gid camsync --home-dir /var/lib/camsync --no-create-home --shell /usr/sbin/nologin camsync \
 && install -d -m 0750 -o camsync -g camsync /var/lib/camsync /var/log/camsync \
 && install -d -m 0755 /data

WORKDIR /src
COPY pyproject.toml README.md ./
COPY camsync ./camsync
COPY migrations ./migrations
RUN pip install . && rm -rf /src

COPY --chmod=0644 deploy/cron/camsync /etc/cron.d/camsync
COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/camsync-entrypoint

# The store: an embedded SQLite file in a volume (or a postgresql:// DATABASE_URL). The PAY+ app database is
# mounted read-only at /data (its folder, so that SQLite sees the -wal and -journal files beside it).
ENV DATABASE_URL=sqlite:////var/lib/camsync/camsync.db \
    APP_DB_URL=sqlite:////data/camwater.db \
    STATE_PATH=/data/state.json \
    SYNC_MODE=daemon
VOLUME ["/var/lib/camsync"]

WORKDIR /var/lib/camsync
USER camsync
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/camsync-entrypoint"]
