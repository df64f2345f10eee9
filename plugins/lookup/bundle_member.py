# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
name: bundle_member
short_description: Read one text member of an upgrade bundle on the controller
version_added: 0.1.0
author: clusterops.upgrade developers (@clusterops)
description:
  - Returns the text of one member of each bundle archive given (C(.zip), C(.tar), C(.tar.gz)/C(.tgz),
    C(.tar.bz2)/C(.tbz2), C(.tar.xz)/C(.txz)), read on the controller without extracting anything.
  - The preflight role reads the rpm baseline a vendor bundle carries (the exact rpm set a node
    must have before the upgrade) this way.
  - A zip member is read through Python's C(zipfile), which checks the member's CRC-32; a member
    that does not match its CRC is an error.
  - Fails, naming the bundle, when the archive cannot be read, the member is missing, is not a
    regular file, is larger than O(max_size), or is not UTF-8 text.
options:
  _terms:
    description: Paths of the bundle archives on the controller.
    type: list
    elements: path
    required: true
  member:
    description: The member's path inside the archive (a leading C(./) is ignored).
    type: str
    required: true
  max_size:
    description: Largest member size, in bytes, that is read.
    type: int
    default: 16777216
"""

EXAMPLES = r"""
- name: Read the rpm baseline the compute bundle carries
  ansible.builtin.debug:
    msg: "{{ lookup('clusterops.upgrade.bundle_member', '/srv/bundles/product-S001-b1.upgrade.zip', member='baseline.txt') }}"
"""

RETURN = r"""
_raw:
  description: The member's text, one entry per bundle.
  type: list
  elements: str
"""

import tarfile
import zipfile
import zlib

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.clusterops.upgrade.plugins.module_utils._checksum import archive_kind


def _normalize(name):
    while name.startswith('./'):
        name = name[2:]
    return name


def read_member(path, member, max_size=16 * 1024 * 1024):
    """The text of ``member`` in the bundle ``path``; AnsibleLookupError naming both otherwise."""
    kind, _compression = archive_kind(path)
    wanted = _normalize(member)
    try:
        if kind == 'zip':
            with zipfile.ZipFile(path) as archive:
                infos = [i for i in archive.infolist() if _normalize(i.filename) == wanted]
                if not infos or infos[0].is_dir():
                    raise AnsibleLookupError('bundle %s has no file %s' % (path, member))
                if infos[0].file_size > max_size:
                    raise AnsibleLookupError('%s in bundle %s is %d bytes, more than max_size %d'
                                             % (member, path, infos[0].file_size, max_size))
                data = archive.read(infos[0])
        elif kind == 'tar':
            with tarfile.open(path) as archive:
                found = None
                for info in archive:
                    if _normalize(info.name) == wanted:
                        found = info
                if found is None or not found.isfile():
                    raise AnsibleLookupError('bundle %s has no file %s' % (path, member))
                if found.size > max_size:
                    raise AnsibleLookupError('%s in bundle %s is %d bytes, more than max_size %d'
                                             % (member, path, found.size, max_size))
                data = archive.extractfile(found).read()
        else:
            raise AnsibleLookupError('%s is not a bundle archive (.zip, .tar, .tar.gz, .tgz, .tar.bz2, .tbz2, '
                                     '.tar.xz, .txz)' % path)
    except AnsibleLookupError:
        raise
    except (OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, tarfile.TarError, zlib.error,
            RuntimeError, ValueError) as exc:
        raise AnsibleLookupError('cannot read %s from bundle %s: %s' % (member, path, exc))
    try:
        return data.decode('utf-8')
    except UnicodeDecodeError:
        raise AnsibleLookupError('%s in bundle %s is not UTF-8 text' % (member, path))


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        member = self.get_option('member')
        max_size = self.get_option('max_size')
        if not member:
            raise AnsibleLookupError('bundle_member needs member, the path of the file inside the bundle')
        return [read_member(str(term), member, max_size) for term in terms]
