"""Python Swift's tempauth answering the cases of tests/tempauth_diff.rs.

Reads a JSON list of cases on stdin; writes a JSON list of results. Each
case is a filter conf, memcache contents to start from, and requests made
in order through one `filter_factory(conf)(FakeApp)` sharing one
FakeMemcache, as the Rust side does with ours. See tempauth_diff.rs for the
format; this script only reports what Swift did.
"""
import json
import sys
from time import time

from swift.common.memcached import MemcacheConnectionError
from swift.common.middleware import tempauth
from swift.common.swob import HTTPNotFound, Request, Response


class FakeMemcache(object):
    """swift.common.memcached.MemcacheRing as tempauth uses it: JSON
    values, errors as switches."""

    def __init__(self, store):
        self.store = dict(store)
        self.ttls = {}
        self.fail_get = False
        self.fail_set = False

    def get(self, key, raise_on_error=False):
        if self.fail_get:
            if raise_on_error:
                raise MemcacheConnectionError('down')
            return None
        return self.store.get(key)

    def set(self, key, value, serialize=True, time=0, min_compress_len=0,
            raise_on_error=False):
        if self.fail_set:
            if raise_on_error:
                raise MemcacheConnectionError('down')
            return
        self.store[key] = json.loads(json.dumps(value))
        self.ttls[key] = time

    def delete(self, key):
        self.store.pop(key, None)


class FakeApp(object):
    """Asks swift.authorize as the proxy does; records what it saw."""

    def __init__(self):
        self.acl = None
        self.sync_key = None
        self.seen = None

    def __call__(self, env, start_response):
        if env.get('swift.source') == 'TA':
            return HTTPNotFound()(env, start_response)
        req = Request(env)
        if self.acl is not None:
            req.acl = self.acl
        if self.sync_key is not None:
            req.environ['swift_sync_key'] = self.sync_key
        self.seen = {}
        if 'swift.authorize' in env:
            resp = env['swift.authorize'](req)
            if resp:
                return resp(env, start_response)
        self.seen = {
            'remote_user': env.get('REMOTE_USER'),
            'owner': bool(env.get('swift_owner')),
            'reseller_request': bool(env.get('reseller_request')),
            'acl_header': req.headers.get('x-account-access-control'),
            'sysmeta': req.headers.get(
                'x-account-sysmeta-core-access-control'),
        }
        return Response(status=204)(env, start_response)


HEADERS = ('www-authenticate', 'content-type', 'content-length',
           'x-storage-url', 'x-auth-token', 'x-storage-token',
           'x-auth-token-expires', 'allow')


def run_case(case):
    app = FakeApp()
    filt = tempauth.filter_factory(case['conf'])(app)
    mc = FakeMemcache(case.get('cache', {}))
    results = []
    for r in case['requests']:
        env = {'REQUEST_METHOD': r['method']}
        if not r.get('no_cache'):
            env['swift.cache'] = mc
        if r.get('remote_user') is not None:
            env['REMOTE_USER'] = r['remote_user']
        if r.get('override'):
            env['swift.authorize_override'] = True
        if r.get('other_auth'):
            env['swift.authorize'] = (
                lambda req: Response(status=409, body=b'other auth'))
        mc.fail_get = bool(r.get('fail_get'))
        mc.fail_set = bool(r.get('fail_set'))
        app.acl = r.get('acl')
        app.sync_key = r.get('sync_key')
        app.seen = None
        req = Request.blank(r['path'], environ=env,
                            headers=dict(r.get('headers', [])))
        resp = req.get_response(filt)
        results.append({
            'status': resp.status_int,
            'headers': {h: resp.headers[h] for h in HEADERS
                        if h in resp.headers},
            'body': resp.body.decode('utf-8', 'replace'),
            'app': app.seen,
        })
    now = time()
    cache = {}
    for k, v in mc.store.items():
        if '/token/' in k or '/user/' in k:
            if isinstance(v, list) and len(v) == 2:
                v = [round(v[0] - now), v[1]]
            ttl = mc.ttls.get(k)
            cache[k] = [v, None if ttl is None else round(ttl)]
    return {'requests': results, 'cache': cache, 'raw_cache': mc.store}


def main():
    cases = json.load(sys.stdin)
    json.dump([run_case(c) for c in cases], sys.stdout)


if __name__ == '__main__':
    main()
