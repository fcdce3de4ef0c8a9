"""Make the ring fixtures of swift-common's ring tests with Python Swift.

Run once with the Python of the reference venv (the files it writes are
committed; rerun only to change the fixtures):

    $SWIFT_VENV/bin/python swift-common/tests/data/ring/generate.py

For each ring it writes <name>.v1.ring.gz and/or <name>.v2.ring.gz (built
with RingBuilder, rebalance(seed=...), RingData.save(format_version=...)),
and one expected.json holding, per ring, Swift's answers for many names:
get_part, the primaries of get_part_nodes and the handoffs of
get_more_nodes, with the hash path prefix "testprefix" and suffix
"testsuffix".
"""
import array
import json
import os
import random
import tempfile

from swift.common import utils
from swift.common.ring import Ring, RingBuilder, RingData

utils.HASH_PATH_PREFIX = b'testprefix'
utils.HASH_PATH_SUFFIX = b'testsuffix'

HERE = os.path.dirname(os.path.abspath(__file__))


def dev(region, zone, ip, device, weight=100.0, port=6200, **extra):
    d = {'region': region, 'zone': zone, 'ip': ip, 'port': port,
         'device': device, 'weight': weight}
    d.update(extra)
    return d


def three_replicas():
    # The ring of the protocol notes' verified vectors.
    b = RingBuilder(6, 3, 0)
    for i in range(8):
        zone = i // 2 + 1
        b.add_dev(dev(1, zone, '10.0.0.%d' % zone, 'sd' + 'ab'[i % 2]))
    b.rebalance(seed=1)
    return b


def fractional():
    b = RingBuilder(6, 2.5, 1)
    for i in range(6):
        zone = i % 3 + 1
        b.add_dev(dev(1, zone, '10.0.1.%d' % (i + 1), 'sdc',
                      replication_ip='192.168.1.%d' % (i + 1),
                      replication_port=6300 + i, meta='m%d' % i))
    b.rebalance(seed=7)
    return b


def two_regions():
    b = RingBuilder(8, 3, 1)
    for region in (1, 2):
        for zone in (1, 2, 3):
            for ip in (1, 2):
                for disk in ('sda', 'sdb'):
                    b.add_dev(dev(region, zone,
                                  '10.%d.%d.%d' % (region, zone, ip), disk,
                                  weight=100.0 if region == 1 else 50.0))
    # A device that owns no partitions: it must not count in the handoff
    # walk's region/zone/ip totals.
    b.add_dev(dev(3, 1, 'fe80::1', 'sdz', weight=0.0))
    b.rebalance(seed=3)
    return b


def with_hole():
    b = RingBuilder(7, 3, 1)
    for i in range(10):
        zone = i % 5 + 1
        b.add_dev(dev(1, zone, '10.0.2.%d' % zone, 'd%d' % i))
    b.rebalance(seed=11)
    b.remove_dev(3)
    b.pretend_min_part_hours_passed()
    b.rebalance(seed=12)
    return b


def wide_ids():
    # Device ids past 65534 need 4-byte ids, which only v2 can hold.
    b = RingBuilder(5, 3, 1)
    for n, i in enumerate((0, 1, 2, 70000, 70001, 70002)):
        zone = n % 3 + 1
        b.add_dev(dev(1, zone, '10.0.3.%d' % zone, 'w%d' % n, id=i))
    b.rebalance(seed=5)
    return b


RINGS = [
    ('three', three_replicas, (1, 2)),
    ('fractional', fractional, (1, 2)),
    ('regions', two_regions, (1, 2)),
    ('hole', with_hole, (1, 2)),
    ('wide', wide_ids, (2,)),
]


def names(count, seed):
    rnd = random.Random(seed)
    alphabet = 'abcXYZ019_-./ \u2603\u00e9\U0001f600'
    out = [['AUTH_test', 'c', 'o'], ['AUTH_test', 'c', None],
           ['AUTH_test', None, None],
           ['AUTH_test', '\u2603', 'obj/with/slash']]
    for _ in range(count):
        a = 'AUTH_' + ''.join(rnd.choice(alphabet)
                              for _ in range(rnd.randint(1, 12)))
        kind = rnd.randint(0, 2)
        c = (''.join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 20)))
             if kind >= 1 else None)
        o = (''.join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 40)))
             if kind == 2 else None)
        out.append([a, c, o])
    return out


def synthetic_dev_id(part, replica):
    # The same formula is in the Rust test that rebuilds this table.
    return ((part * 7919 + replica * 104729) >> 3) % 12


def synthetic():
    """A ring too big to commit (2**18 partitions, so the handoff walk
    steps by 4), built in memory from a formula, with a half last row (2.5
    replicas); the answers for some partitions."""
    part_power = 18
    parts = 2 ** part_power
    table = [array.array('H', (synthetic_dev_id(p, r) for p in range(parts)))
             for r in range(2)]
    table.append(array.array('H', (synthetic_dev_id(p, 2)
                                   for p in range(parts // 2))))
    devs = []
    for i in range(12):
        region, zone, ip = i // 6 + 1, i % 3 + 1, i % 2 + 1
        devs.append(dev(region, zone, '10.9.%d.%d' % (zone, ip), 's%d' % i,
                        id=i))
    path = os.path.join(tempfile.mkdtemp(), 'synthetic.ring.gz')
    RingData(table, devs, 32 - part_power).save(path)
    ring = Ring(path)
    os.unlink(path)
    os.rmdir(os.path.dirname(path))
    rnd = random.Random('synthetic')
    answers = []
    for part in [0, 1, parts // 2 - 1, parts // 2, parts - 1] + \
            [rnd.randrange(parts) for _ in range(40)]:
        answers.append({
            'part': part,
            'primaries': [n['id'] for n in ring.get_part_nodes(part)],
            'handoffs': [n['id'] for n in ring.get_more_nodes(part)],
        })
    return {'part_power': part_power, 'devs': devs,
            'replica_count': ring.replica_count, 'answers': answers}


def check(node, key, nodes):
    assert node[key] == [n['id'] for n in nodes].index(node['id'])
    return True


def main():
    expected = {'prefix': 'testprefix', 'suffix': 'testsuffix', 'rings': {}}
    for name, build, versions in RINGS:
        builder = build()
        ring_data = builder.get_ring()
        for version in versions:
            ring_data.save(os.path.join(HERE, '%s.v%d.ring.gz' % (name, version)),
                           format_version=version)
        ring = Ring(os.path.join(HERE, '%s.v%d.ring.gz' % (name, versions[0])))
        answers = []
        for a, c, o in names(100, name):
            part = ring.get_part(a, c, o)
            answers.append({
                'account': a, 'container': c, 'object': o, 'part': part,
                # index and handoff_index are the positions in these lists
                'primaries': [n['id'] for n in ring.get_part_nodes(part)
                              if check(n, 'index', ring.get_part_nodes(part))],
                'handoffs': [n['id'] for n in ring.get_more_nodes(part)],
            })
        expected['rings'][name] = {
            'versions': list(versions),
            'replica_count': ring.replica_count,
            'partition_count': ring.partition_count,
            'part_power': ring.part_power,
            'version': ring.version,
            'devs': [d for d in ring.devs[:16]],
            'dev_count': len(ring.devs),
            'answers': answers,
        }
    expected['synthetic'] = synthetic()
    with open(os.path.join(HERE, 'expected.json'), 'w') as f:
        json.dump(expected, f, sort_keys=True, separators=(',', ':'), ensure_ascii=True)
        f.write('\n')


if __name__ == '__main__':
    main()
