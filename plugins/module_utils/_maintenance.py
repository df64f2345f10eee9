# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Maintenance mode: one interface, one small class per platform (the PkgMgr shape).

* :class:`PacemakerNodeStandby` - ``standby`` node attribute: resources leave the node;
* :class:`PacemakerNodeMaintenance` - ``maintenance`` node attribute: resources on the
  node are left alone, unmanaged;
* :class:`PacemakerCluster` - the ``maintenance-mode`` cluster property;
* :class:`CommandMaintenance` - user-supplied argv lists for enter / exit / query, for
  platforms managed elsewhere (query exit status 0 = enabled, 1 = disabled).

The pacemaker classes delegate to ``_pacemaker.Pacemaker``; the command class runs its
argv lists through its own seam (:meth:`CommandMaintenance.run`, ``LANG=C``). A
Harvester backend will be one more subclass.
"""

from __future__ import annotations

import abc

from ansible_collections.clusterops.upgrade.plugins.module_utils._pacemaker import (
    C_ENV,
    Clock,
    PacemakerError,
    display,
)

BACKENDS = ('pacemaker_node', 'pacemaker_node_maintenance', 'pacemaker_cluster', 'command')
QUERY_ENABLED = 0
QUERY_DISABLED = 1
COMMAND_POLL = 2.0


class MaintenanceError(PacemakerError):
    """A refusal or failure of a maintenance backend (``details``: the partial result)."""


class MaintenanceBackend(abc.ABC):
    """Enter or leave maintenance on one target (a node or the whole cluster)."""

    name = None

    @abc.abstractmethod
    def set(self, enabled, check_mode=False):
        """Bring the target to ``enabled``; returns the result dictionary (keys in
        docs/pacemaker.md: enabled_before, enabled, commands, moved/stopped resources ...)."""


class PacemakerNodeStandby(MaintenanceBackend):
    name = 'pacemaker_node'

    def __init__(self, control, node, wait=300, allow_stopped=False):
        self.control = control
        self.node = node
        self.wait = wait
        self.allow_stopped = allow_stopped

    def set(self, enabled, check_mode=False):
        return self.control.set_node_standby(self.node, enabled, wait=self.wait, allow_stopped=self.allow_stopped,
                                             check_mode=check_mode)


class PacemakerNodeMaintenance(MaintenanceBackend):
    name = 'pacemaker_node_maintenance'

    def __init__(self, control, node, wait=60):
        self.control = control
        self.node = node
        self.wait = wait

    def set(self, enabled, check_mode=False):
        return self.control.set_node_maintenance(self.node, enabled, wait=self.wait, check_mode=check_mode)


class PacemakerCluster(MaintenanceBackend):
    name = 'pacemaker_cluster'

    def __init__(self, control, wait=60):
        self.control = control
        self.wait = wait

    def set(self, enabled, check_mode=False):
        return self.control.set_cluster_maintenance(enabled, wait=self.wait, check_mode=check_mode)


class CommandMaintenance(MaintenanceBackend):
    """``enter``/``exit``/``query`` are argv lists. ``query`` must only read: it also runs
    in check mode. Its exit status 0 means enabled, 1 disabled, anything else is an error."""

    name = 'command'

    def __init__(self, runner, enter, exit_, query, node=None, wait=60, clock=None, poll=COMMAND_POLL):
        self._runner = runner
        self.enter = list(enter)
        self.exit = list(exit_)
        self.query_argv = list(query)
        self.node = node
        self.wait = wait
        self.clock = clock or Clock()
        self.poll = poll
        self.calls = []

    def run(self, argv):
        """The seam: every command of this backend, argv list, LANG=C."""
        argv = [str(a) for a in argv]
        self.calls.append(argv)
        rc, out, err = self._runner(argv, dict(C_ENV))
        return rc, out or '', err or ''

    def query(self):
        rc, out, err = self.run(self.query_argv)
        if rc == QUERY_ENABLED:
            return True
        if rc == QUERY_DISABLED:
            return False
        raise MaintenanceError('the query command %s exited %d, which means neither enabled (0) nor disabled (1): '
                               '%s' % (display(self.query_argv), rc, (err or out).strip() or 'no output'))

    def set(self, enabled, check_mode=False):
        before = self.query()
        target = 'cluster' if self.node is None else self.node
        result = {'changed': False, 'node': self.node, 'enabled_before': before, 'enabled': before,
                  'commands': [], 'planned_commands': [], 'transition_summary': [], 'settled': None,
                  'moved_resources': [], 'stopped_resources': [], 'started_resources': [],
                  'remaining_resources': [], 'journal_entries': [], 'warnings': []}

        def state(value):
            return '%s maintenance (command): %s\n' % (target, 'on' if value else 'off')
        result['diff'] = {'before': state(before), 'after': state(before)}
        if before == enabled:
            return result
        argv = self.enter if enabled else self.exit
        which = 'enter' if enabled else 'exit'
        if not argv:
            raise MaintenanceError('the command backend needs the %s command to %s maintenance; give it as an argv '
                                   'list in command.%s' % (which, 'enter' if enabled else 'leave', which))
        result['planned_commands'] = [display(argv)]
        result['diff']['after'] = state(enabled)
        if enabled:
            entry = {'kind': 'maintenance', 'id': 'command:%s' % target, 'details': {'backend': 'command'}}
            if self.node is not None:
                entry['node'] = self.node
            result['journal_entries'] = [entry]
        if check_mode:
            result['changed'] = True
            result['enabled'] = enabled
            return result
        result['changed'] = True
        rc, out, err = self.run(argv)
        result['commands'].append(display(argv))
        if rc != 0:
            raise MaintenanceError('the %s command %s failed (rc %d): %s'
                                   % (which, display(argv), rc, (err or out).strip() or 'no output'), result)
        deadline = self.clock.monotonic() + self.wait
        while True:
            now_state = self.query()
            if now_state == enabled:
                result['enabled'] = now_state
                result['settled'] = True
                return result
            if self.clock.monotonic() >= deadline:
                result['enabled'] = now_state
                result['settled'] = False
                raise MaintenanceError('after the %s command the query %s still says %s after wait=%ss'
                                       % (which, display(self.query_argv), 'enabled' if now_state else 'disabled',
                                          self.wait), result)
            self.clock.sleep(self.poll)
