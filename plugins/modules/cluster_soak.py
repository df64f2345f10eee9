#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cluster_soak
short_description: Wait until a pacemaker cluster is healthy, then hold it under observation (soak)
version_added: 0.1.0
author: clusterops.upgrade developers (@clusterops)
description:
  - The TECS runbook switches over to the upgraded controller and then waits (20 minutes) checking that the
    platform still works before it upgrades the other controller. This module is that wait, as data.
  - It probes until every expectation holds (at most O(timeout) seconds), then keeps probing every O(interval)
    seconds for O(hold) seconds and fails at the first probe that finds a problem - a regression aborts the soak.
    O(hold=0) makes it a settle gate - wait until healthy, no hold.
  - A probe is one C(crm_mon --one-shot --inactive --output-as=xml) (quorum, nodes online, the watched resource
    running where expected, every resource that should run running, no failed actions) plus one HTTP GET per
    O(urls) entry (2xx expected).
  - Read-only; runs the same in check mode.
options:
  resource:
    description: The resource whose availability is watched (the VIP, C(lb_float_ip)). Empty - none.
    type: str
    default: ""
  resource_node:
    description: The node O(resource) must run on. Empty - any node.
    type: str
    default: ""
  nodes:
    description: Nodes that must be online cluster members. Not set - every node crm_mon lists.
    type: list
    elements: str
  all_started:
    description: Every managed resource whose target role is not Stopped must run.
    type: bool
    default: true
  failed_actions:
    description: A failed resource action is a problem.
    type: bool
    default: true
  quorum:
    description: The partition must have quorum.
    type: bool
    default: true
  urls:
    description: HTTP(S) URLs that must answer with a 2xx status, e.g. the management service's health check via the VIP.
    type: list
    elements: str
    default: []
  url_timeout:
    description: Seconds each HTTP request may take.
    type: int
    default: 5
  timeout:
    description: Seconds to wait until the cluster is healthy before the hold starts.
    type: int
    default: 300
  hold:
    description: Seconds the cluster must then stay healthy (the soak time). V(0) - no hold.
    type: int
    default: 0
  interval:
    description: Seconds between probes.
    type: int
    default: 5
attributes:
  check_mode:
    description: Only reads; probes and waits the same in check mode.
    support: full
  diff_mode:
    description: Nothing to show.
    support: none
"""

EXAMPLES = r"""
- name: Soak - the VIP on the upgraded controller, management API healthy, no failed actions, for 20 minutes
  clusterops.upgrade.cluster_soak:
    resource: lb_float_ip
    resource_node: ctl-b
    urls: ["http://10.89.77.10:8080/health"]
    hold: 1200
    interval: 10

- name: Settle gate - wait until the rebooted node is back and every resource runs
  clusterops.upgrade.cluster_soak:
    timeout: 180
"""

RETURN = r"""
waited:
  description: Seconds until the first healthy probe.
  returned: always
  type: float
held:
  description: Seconds the cluster was then held under observation.
  returned: always
  type: float
rounds:
  description: Probes made.
  returned: always
  type: int
probes:
  description: The last probes (at most 20) - seconds since the start, phase (C(wait) or C(hold)) and problems found.
  returned: always
  type: list
  elements: dict
  sample: [{at: 0.0, phase: wait, problems: []}]
where:
  description: Where O(resource) ran at the last probe.
  returned: always
  type: dict
  sample: {lb_float_ip: [ctl-b]}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.clusterops.upgrade.plugins.module_utils._pacemaker import (
    Clock,
    PacemakerError,
    module_cli,
)
from ansible_collections.clusterops.upgrade.plugins.module_utils._soak import SoakError, soak

ARGUMENT_SPEC = dict(
    resource=dict(type='str', default=''),
    resource_node=dict(type='str', default=''),
    nodes=dict(type='list', elements='str'),
    all_started=dict(type='bool', default=True),
    failed_actions=dict(type='bool', default=True),
    quorum=dict(type='bool', default=True),
    urls=dict(type='list', elements='str', default=[]),
    url_timeout=dict(type='int', default=5),
    timeout=dict(type='int', default=300),
    hold=dict(type='int', default=0),
    interval=dict(type='int', default=5),
)


def http_status(url, timeout):
    """The HTTP seam: ``(status, None)`` or ``(None, reason)``."""
    try:
        response = open_url(url, timeout=timeout, validate_certs=True, follow_redirects='safe')
        return response.getcode(), None
    except Exception as exc:  # pylint: disable=broad-except
        code = getattr(exc, 'code', None)
        if isinstance(code, int):
            return code, None
        return None, str(getattr(exc, 'reason', None) or exc)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    for name in ('timeout', 'hold', 'url_timeout'):
        if params[name] < 0:
            module.fail_json(msg='%s must be 0 or more, got %d' % (name, params[name]))
    if params['interval'] < 1:
        module.fail_json(msg='interval must be at least 1 second, got %d' % params['interval'])
    for index, url in enumerate(params['urls']):
        if not url.startswith(('http://', 'https://')):
            module.fail_json(msg='urls[%d] %r is not an http:// or https:// URL' % (index, url))
    if params['resource_node'] and not params['resource']:
        module.fail_json(msg='resource_node needs resource: name the resource that must run there')
    expect = dict(resource=params['resource'], resource_node=params['resource_node'], nodes=params['nodes'],
                  all_started=params['all_started'], failed_actions=params['failed_actions'],
                  quorum=params['quorum'])
    try:
        cli = module_cli(module)
        result = soak(cli, http_status, Clock(), expect, urls=params['urls'], timeout=params['timeout'],
                      hold=params['hold'], interval=params['interval'], url_timeout=params['url_timeout'])
    except SoakError as exc:
        module.fail_json(msg=str(exc), changed=False, **exc.result)
    except PacemakerError as exc:
        module.fail_json(msg=str(exc), changed=False)
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
