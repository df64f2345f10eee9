# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Record when each task started and ended on each host (benchmark and test helper).

Enabled with ANSIBLE_CALLBACK_PLUGINS=tests/bench/callback_plugins and
ANSIBLE_CALLBACKS_ENABLED=upgrade_timings; writes JSON lines to the file named by
UPGRADE_TIMINGS_FILE: {"task", "action", "host", "play", "start", "end", "status"} per result,
{"event": "task_start", "task", ...} when a task starts (the kill matrix waits for these) and
{"event": "play_start"} / {"event": "playbook_end"} lines. Times are time.time() on the controller.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: upgrade_timings
type: aggregate
short_description: Task start and end times per host, as JSON lines (benchmarks)
description:
  - Writes one JSON line per task result to the file named by the environment variable C(UPGRADE_TIMINGS_FILE).
requirements:
  - enable in configuration
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'upgrade_timings'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self._path = os.environ.get('UPGRADE_TIMINGS_FILE')
        self._starts = {}
        self._play = None
        self._out = open(self._path, 'a') if self._path else None

    def _write(self, data):
        if self._out:
            self._out.write(json.dumps(data) + '\n')
            self._out.flush()

    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name()
        self._write({'event': 'play_start', 'play': self._play, 'time': time.time()})

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._starts[task._uuid] = time.time()
        self._write({'event': 'task_start', 'task': task.get_name(), 'action': task.action, 'play': self._play,
                     'time': self._starts[task._uuid]})

    def v2_playbook_on_handler_task_start(self, task):
        self._starts[task._uuid] = time.time()

    def v2_runner_on_start(self, host, task):
        self._starts[(task._uuid, host.get_name())] = time.time()

    def _result(self, result, status):
        task = result._task
        host = result._host.get_name()
        start = self._starts.get((task._uuid, host), self._starts.get(task._uuid, time.time()))
        self._write({'task': task.get_name(), 'action': task.action, 'host': host, 'play': self._play,
                     'start': start, 'end': time.time(), 'status': status,
                     'delegated': bool(result._result.get('_ansible_delegated_vars'))})

    def v2_runner_on_ok(self, result):
        self._result(result, 'ok')

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(result, 'failed')

    def v2_runner_on_skipped(self, result):
        self._result(result, 'skipped')

    def v2_runner_on_unreachable(self, result):
        self._result(result, 'unreachable')

    def v2_playbook_on_stats(self, stats):
        self._write({'event': 'playbook_end', 'time': time.time()})
