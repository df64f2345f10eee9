"""Provide ansible-test's pip bootstrap script when it cannot be downloaded.

ansible-test bootstraps pip in every virtualenv it creates by running a
``get-pip.py`` it downloads (or finds cached under ``~/.ansible/test/cache``).
Where that download is impossible, this writes a small stand-in into the cache:
it installs the exact pip version ansible-test asks for from a pip wheel that
pip itself fetched from the package index. When the real script can be
downloaded, nothing is written and ansible-test does its own thing.
"""
import os
import re
import subprocess
import sys
import urllib.request

import ansible_test

SETUP = os.path.join(os.path.dirname(ansible_test.__file__), '_util', 'target', 'setup', 'requirements.py')
INTERNAL = os.path.join(os.path.dirname(ansible_test.__file__), '_internal', 'python_requirements.py')

STANDIN = '''"""Stand-in for get-pip.py, written by clusterops.upgrade tools/get_pip_standin.py."""
import sys

WHEEL_DIR = {wheel_dir!r}
GET_PIP_ONLY = ('--no-setuptools', '--no-wheel')

sys.path.insert(0, {wheel!r})
from pip._internal.cli.main import main  # noqa: E402

args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
sys.exit(main(['install', '--upgrade', '--force-reinstall', '--no-index', '--find-links', WHEEL_DIR] + args))
'''


def read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def main():
    pip_version = re.search(r"pip='([0-9.]+)'", read(INTERNAL)).group(1)
    url = re.search(r"url = '([^']+)'", read(SETUP)).group(1) % pip_version
    cache_dir = os.path.expanduser('~/.ansible/test/cache')
    cache_path = os.path.join(cache_dir, 'get_pip_%s.py' % pip_version.replace('.', '_'))
    if os.path.exists(cache_path):
        return 0
    try:
        urllib.request.urlopen(url, timeout=10).close()
        return 0  # reachable: ansible-test downloads the real script itself
    except Exception as ex:  # pylint: disable=broad-except
        print('bootstrap: get-pip download impossible (%s); writing a stand-in' % ex, file=sys.stderr)
    wheel_dir = os.path.join(cache_dir, 'pip-wheels')
    os.makedirs(wheel_dir, exist_ok=True)
    subprocess.run([sys.executable, '-m', 'pip', 'download', '-q', '--no-deps', '--only-binary', ':all:',
                    '-d', wheel_dir, 'pip==%s' % pip_version], check=True)
    wheel = os.path.join(wheel_dir, 'pip-%s-py3-none-any.whl' % pip_version)
    if not os.path.exists(wheel):
        print('bootstrap: pip wheel %s not found after download' % wheel, file=sys.stderr)
        return 1
    tmp = cache_path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(STANDIN.format(wheel_dir=wheel_dir, wheel=wheel))
    os.replace(tmp, cache_path)
    return 0


if __name__ == '__main__':
    sys.exit(main())
