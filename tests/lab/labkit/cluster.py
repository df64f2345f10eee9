"""Cluster configuration written into the nodes before their first boot.

This is the fast path of LAB.md: corosync.conf + authkey + a pre-seeded CIB
(dc-deadtime=2s) on every node, so corosync and pacemaker form the cluster as
the containers boot. pcsd runs too, with its tokens pre-seeded (the files
`pcs host auth` would write), so `pcs cluster stop/start <node>` and other
pcsd-to-pcsd commands work from the first second.
"""

from __future__ import annotations

import json
import secrets
from xml.sax.saxutils import quoteattr

from . import config


def corosync_conf(topo: config.Topology) -> str:
    nodes = "".join(f"""
    node {{
        ring0_addr: {n.ip}
        name: {n.name}
        nodeid: {n.node_id}
    }}
""" for n in topo.nodes)
    two_node = "    two_node: 1\n" if len(topo.nodes) == 2 else ""
    return f"""totem {{
    version: 2
    cluster_name: {config.CLUSTER_NAME}
    transport: knet
    token: 1000
    crypto_cipher: aes256
    crypto_hash: sha256
}}

nodelist {{{nodes}}}

quorum {{
    provider: corosync_votequorum
{two_node}}}

logging {{
    to_logfile: yes
    logfile: /var/log/corosync/corosync.log
    to_syslog: yes
    timestamp: on
}}
"""


def authkey() -> bytes:
    return secrets.token_bytes(256)


def _nvpairs(prefix: str, pairs: dict, indent: str) -> str:
    return "".join(f'{indent}<nvpair id={quoteattr(f"{prefix}-{k}")} name={quoteattr(k)} '
                   f'value={quoteattr(str(v))}/>\n' for k, v in pairs.items())


def _primitive(rid: str, cls: str, provider: str, rtype: str, params: dict, meta: dict,
               utilization: dict, ops: list, indent: str) -> str:
    i2, i3 = indent + "  ", indent + "    "
    out = [f'{indent}<primitive id={quoteattr(rid)} class="{cls}" provider="{provider}" '
           f'type="{rtype}">\n']
    if params:
        out.append(f'{i2}<instance_attributes id="{rid}-instance_attributes">\n')
        out.append(_nvpairs(f"{rid}-instance_attributes", params, i3))
        out.append(f"{i2}</instance_attributes>\n")
    if meta:
        out.append(f'{i2}<meta_attributes id="{rid}-meta_attributes">\n')
        out.append(_nvpairs(f"{rid}-meta_attributes", meta, i3))
        out.append(f"{i2}</meta_attributes>\n")
    if utilization:
        out.append(f'{i2}<utilization id="{rid}-utilization">\n')
        out.append(_nvpairs(f"{rid}-utilization", utilization, i3))
        out.append(f"{i2}</utilization>\n")
    out.append(f"{i2}<operations>\n")
    for name, interval, timeout in ops:
        out.append(f'{i3}<op id="{rid}-{name}-interval-{interval}" name="{name}" '
                   f'interval="{interval}" timeout="{timeout}"/>\n')
    out.append(f"{i2}</operations>\n{indent}</primitive>\n")
    return "".join(out)


VM_OPS = [("monitor", "30s", "20s"), ("start", "0s", "20s"), ("stop", "0s", "20s"),
          ("migrate_to", "0s", "20s"), ("migrate_from", "0s", "20s")]


def cib_xml(topo: config.Topology) -> str:
    props = {"stonith-enabled": "false", "dc-deadtime": "2s",
             "placement-strategy": "utilization", "cluster-name": config.CLUSTER_NAME}
    nodes = []
    for n in topo.nodes:
        util = ""
        if n.role == "compute":
            util = (f'        <utilization id="nodes-{n.node_id}-utilization">\n'
                    + _nvpairs(f"nodes-{n.node_id}-utilization", {"memory": config.NODE_MEMORY},
                               "          ")
                    + "        </utilization>\n")
        nodes.append(f'      <node id="{n.node_id}" uname="{n.name}">\n'
                     f'        <instance_attributes id="nodes-{n.node_id}">\n'
                     + _nvpairs(f"nodes-{n.node_id}", n.attrs, "          ")
                     + "        </instance_attributes>\n" + util + "      </node>\n")
    resources = ['      <group id="mgmt">\n',
                 _primitive("lb_float_ip", "ocf", "heartbeat", "IPaddr2",
                            {"ip": topo.vip, "cidr_netmask": "24", "nic": "eth0"}, {}, {},
                            [("monitor", "10s", "20s"), ("start", "0s", "20s"),
                             ("stop", "0s", "20s")], "        "),
                 _primitive("mgmt-api", "ocf", "pacemaker", "Dummy", {}, {}, {},
                            [("monitor", "10s", "20s")], "        "),
                 "      </group>\n"]
    constraints = [
        '      <rsc_location id="location-mgmt-controllers" rsc="mgmt">\n'
        '        <rule id="location-mgmt-controllers-rule" score="-INFINITY" boolean-op="or">\n'
        '          <expression id="location-mgmt-controllers-rule-expr" '
        'attribute="clusterops-role" operation="ne" value="controller"/>\n'
        '          <expression id="location-mgmt-controllers-rule-expr-1" '
        'attribute="clusterops-role" operation="not_defined"/>\n'
        "        </rule>\n      </rsc_location>\n"]
    for name, memory, migrate in topo.vms:
        resources.append(_primitive(name, "ocf", "pacemaker", "Dummy", {},
                                    {"allow-migrate": "true" if migrate else "false"},
                                    {"memory": memory}, VM_OPS, "      "))
        cid = f"location-{name}-compute"
        constraints.append(
            f'      <rsc_location id="{cid}" rsc="{name}">\n'
            f'        <rule id="{cid}-rule" score="-INFINITY" boolean-op="or">\n'
            f'          <expression id="{cid}-rule-expr" attribute="clusterops-role" '
            'operation="eq" value="controller"/>\n'
            f'          <expression id="{cid}-rule-expr-1" attribute="clusterops-role" '
            'operation="not_defined"/>\n'
            "        </rule>\n      </rsc_location>\n")
    return f"""<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="5" num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
{_nvpairs("cib-bootstrap-options", props, "        ")}      </cluster_property_set>
    </crm_config>
    <nodes>
{"".join(nodes)}    </nodes>
    <resources>
{"".join(resources)}    </resources>
    <constraints>
{"".join(constraints)}    </constraints>
    <rsc_defaults>
      <meta_attributes id="build-resource-defaults">
        <nvpair id="build-resource-defaults-resource-stickiness" name="resource-stickiness" value="100"/>
      </meta_attributes>
    </rsc_defaults>
  </configuration>
  <status/>
</cib>
"""


def pcsd_tokens(topo: config.Topology) -> dict:
    return {n.name: secrets.token_urlsafe(48) for n in topo.nodes}


def pcsd_known_hosts(topo: config.Topology, tokens: dict) -> str:
    hosts = {n.name: {"dest_list": [{"addr": n.ip, "port": 2224}], "token": tokens[n.name]}
             for n in topo.nodes}
    return json.dumps({"format_version": 1, "data_version": 1, "known_hosts": hosts}, indent=2)


def pcsd_users(token: str) -> str:
    return json.dumps([{"token": token, "username": "hacluster",
                        "creation_date": "2026-01-01 00:00:00 +0000"}], indent=2)
