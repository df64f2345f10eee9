# -*- coding: utf-8 -*-
# Copyright: clusterops.upgrade developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""bundle_member: one text member of a zip or tar bundle, read on the controller;
every failure names the bundle and the member."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from ansible.errors import AnsibleLookupError

from ansible_collections.clusterops.upgrade.plugins.lookup.bundle_member import LookupModule, read_member

BASELINE = 'labsphere-common-6.8.0-1.ls8.noarch\nlabsphere-node-6.8.0-1.ls8.noarch\n'


@pytest.fixture
def bundles(tmp_path):
    z = tmp_path / 'p-S001-b1.upgrade.zip'
    with zipfile.ZipFile(str(z), 'w', compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr('baseline.txt', BASELINE)
        archive.writestr('rpms/', '')
        archive.writestr('latin1.txt', b'caf\xe9')
    t = tmp_path / 'p-S001-b1.tar.gz'
    with tarfile.open(str(t), 'w:gz') as archive:
        data = BASELINE.encode()
        info = tarfile.TarInfo('./baseline.txt')
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return z, t


def lookup(monkeypatch):
    """The plugin without the plugin loader (which reads the options from DOCUMENTATION)."""
    plugin = LookupModule()
    given = {}
    monkeypatch.setattr(plugin, 'set_options', lambda var_options=None, direct=None: given.update(direct))
    monkeypatch.setattr(plugin, 'get_option', lambda name: dict({'max_size': 16777216}, **given)[name])
    return plugin


def test_zip_and_tar_members(monkeypatch, bundles):
    z, t = bundles
    assert read_member(str(z), 'baseline.txt') == BASELINE
    assert read_member(str(t), 'baseline.txt') == BASELINE
    assert read_member(str(t), './baseline.txt') == BASELINE
    assert lookup(monkeypatch).run([str(z), str(t)], {}, member='baseline.txt') == [BASELINE, BASELINE]
    with pytest.raises(AnsibleLookupError) as caught:
        lookup(monkeypatch).run([str(z)], {}, member='')
    assert str(caught.value) == 'bundle_member needs member, the path of the file inside the bundle'


def test_failures_name_the_bundle_and_member(bundles, tmp_path):
    z, t = bundles
    cases = [
        (str(z), 'missing.txt', 'bundle %s has no file missing.txt' % z),
        (str(z), 'rpms/', 'bundle %s has no file rpms/' % z),
        (str(z), 'latin1.txt', 'latin1.txt in bundle %s is not UTF-8 text' % z),
        (str(t), 'missing.txt', 'bundle %s has no file missing.txt' % t),
        (str(tmp_path / 'notes.txt'), 'baseline.txt', '%s is not a bundle archive (.zip, .tar, .tar.gz, .tgz, '
                                                      '.tar.bz2, .tbz2, .tar.xz, .txz)' % (tmp_path / 'notes.txt')),
    ]
    for path, member, message in cases:
        with pytest.raises(AnsibleLookupError) as caught:
            read_member(path, member)
        assert str(caught.value) == message
    with pytest.raises(AnsibleLookupError) as caught:
        read_member(str(z), 'baseline.txt', max_size=10)
    assert str(caught.value) == 'baseline.txt in bundle %s is %d bytes, more than max_size 10' % (z, len(BASELINE))
    gone = str(tmp_path / 'gone.zip')
    with pytest.raises(AnsibleLookupError) as caught:
        read_member(gone, 'baseline.txt')
    assert str(caught.value) == ("cannot read baseline.txt from bundle %s: [Errno 2] No such file or directory: '%s'"
                                 % (gone, gone))


def test_a_damaged_member_is_refused(bundles):
    z, _t = bundles
    data = bytearray(z.read_bytes())
    with zipfile.ZipFile(str(z)) as archive:
        info = archive.getinfo('baseline.txt')
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 2] ^= 0xFF
    z.write_bytes(bytes(data))
    with pytest.raises(AnsibleLookupError) as caught:
        read_member(str(z), 'baseline.txt')
    assert str(caught.value).startswith('cannot read baseline.txt from bundle %s: ' % z)
