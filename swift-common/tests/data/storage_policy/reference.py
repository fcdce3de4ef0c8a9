"""Parse swift.conf files' storage policies the way Python Swift does and
print what it sees, as JSON.

swift-common's differential tests run this with the Python of a venv where
Swift is installed (SWIFT_VENV). Input on stdin: a JSON list of paths; output
on stdout: a JSON list with, per path, either
{"ok": [policy, ...], "info": POLICIES.get_policy_info()} where a policy is
{"index", "name", "aliases" (the list), "default", "deprecated",
"ring_name"}, or {"error": CLASS, "message": str(exception)}.

A file is read as reload_storage_policies() reads swift.conf:
ConfigParser(strict=False), then parse_storage_policies().
"""
import json
import sys
from configparser import ConfigParser

from swift.common import utils

# Importing storage_policy parses utils.SWIFT_CONF_FILE (/etc/swift/swift.conf
# by default): point it at nothing so the host's file plays no part.
utils.SWIFT_CONF_FILE = '/dev/null'

from swift.common import storage_policy  # noqa: E402


def parse(path):
    conf = ConfigParser(strict=False)
    conf.read(path)
    try:
        policies = storage_policy.parse_storage_policies(conf)
    except Exception as exc:  # every failure is reported, PolicyError or not
        return {'error': type(exc).__name__, 'message': str(exc)}
    return {
        'ok': [{'index': int(p), 'name': p.name, 'aliases': p.alias_list,
                'default': p.is_default, 'deprecated': p.is_deprecated,
                'ring_name': p.ring_name} for p in policies],
        'info': policies.get_policy_info(),
    }


def main():
    paths = json.load(sys.stdin)
    json.dump([parse(p) for p in paths], sys.stdout)


if __name__ == '__main__':
    main()
