#!/bin/sh
# mmdebstrap customize hook for the lab node image: $1 is the new root,
# $2 the directory of files baked into the image. Part of the image recipe:
# editing this file changes the image tag and triggers a rebuild.
set -eu
root=$1
files=$2

# rpm keeps its database where RHEL does, so plain `rpm -qa` works.
mkdir -p "$root/etc/rpm" "$root/var/lib/rpm"
printf '%%_dbpath /var/lib/rpm\n' >"$root/etc/rpm/macros"
chroot "$root" rpm --initdb

# Debian ships a single-node corosync.conf; labctl writes the real one.
rm -f "$root/etc/corosync/corosync.conf"
# pcsd authenticates the hacluster user (lab-only password, see docs/lab.md).
echo 'hacluster:hacluster' | chroot "$root" chpasswd

# Host keys are generated per node by labctl (and recorded in the lab's
# known_hosts), never shared through the image.
rm -f "$root"/etc/ssh/ssh_host_*

install -D -m 0755 "$files/lab-init" "$root/usr/local/sbin/lab-init"
install -D -m 0644 "$files/lab-init.service" "$root/etc/systemd/system/lab-init.service"
install -D -m 0644 "$files/sshd-lab.conf" "$root/etc/ssh/sshd_config.d/lab.conf"
install -D -m 0644 "$files/journald-lab.conf" "$root/etc/systemd/journald.conf.d/lab.conf"
install -D -m 0644 "$files/reboot-exit.conf" "$root/etc/systemd/system/systemd-reboot.service.d/lab.conf"

# pcsd: two workers instead of ten, no web UI (six nodes share two cores).
sed -i -e 's/^PCSD_DISABLE_GUI=.*/PCSD_DISABLE_GUI=true/' "$root/etc/default/pcsd"
printf 'PCSD_WORKER_COUNT=2\nPCSD_MAX_WORKER_COUNT=4\n' >>"$root/etc/default/pcsd"

chroot "$root" systemctl enable lab-init.service corosync.service pacemaker.service pcsd.service ssh.service
# Timers and consoles that only cost CPU in a container.
chroot "$root" systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer \
  e2scrub_reap.service dpkg-db-backup.timer console-getty.service getty@tty1.service \
  systemd-networkd-wait-online.service logd.service

# Each container gets its own machine-id at first boot.
: >"$root/etc/machine-id"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
